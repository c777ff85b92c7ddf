#!/usr/bin/env python3
"""Checks HDF5 files written by `weights convert --to h5` with h5py, against a fixture's expected values.

Usage:  check_h5.py OUT.h5 EXPECTED.json [OUT2 EXPECTED2 ...]

EXPECTED.json is a fixture's expected-values file (format documented in Tools/make_fixtures.py). Every dataset is
named by its path with '/' -> '.' (a name that could not become groups is stored flat and read as is). The writer's
documented encodings are undone here the way an h5py user would: float16 and bool (h5py's enum) read natively;
bfloat16, stored as float32 with the attribute dtype="bfloat16", is rounded back by taking the upper 16 bits (exact,
since the float32 holds a bfloat16 value); float8, stored as its bytes (uint8) with the attribute dtype="float8_…",
is those bytes; complex is h5py's compound {r, i}; uint16/32/64 are unsigned. Names, dtypes, shapes and bytes must equal the expected values. Prints
one line per problem and exits 1 if there were any.
"""
import hashlib
import json
import sys

import h5py
import numpy as np


FLOAT8 = {"float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu"}
# Packed sub-byte floats have no HDF5 form: `weights` leaves them out (--skip-unsupported), so they are not expected.
NO_HDF5_FORM = {"float4_e2m1fn", "float6_e2m3fn", "float6_e3m2fn"}


def datasets(f):
    out = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            out[name.replace("/", ".")] = obj
    f.visititems(visit)
    return out


def as_expected(ds):
    data = ds[()]
    arr = np.asarray(data)
    tag = ds.attrs.get("dtype")
    if isinstance(tag, bytes):
        tag = tag.decode()
    if tag in FLOAT8:  # float8: its bytes as uint8 plus the dtype attribute
        return tag, list(arr.shape), np.ascontiguousarray(arr).tobytes()
    if tag == "bfloat16":
        bits = np.ascontiguousarray(arr.astype("<f4")).view("<u4") >> 16
        return "bfloat16", list(arr.shape), bits.astype("<u2").tobytes()
    if arr.dtype == np.bool_:
        return "bool", list(arr.shape), arr.astype(np.uint8).tobytes()
    name = {"f8": "float64", "f4": "float32", "f2": "float16", "i8": "int64", "i4": "int32", "i2": "int16",
            "i1": "int8", "u1": "uint8", "u2": "uint16", "u4": "uint32", "u8": "uint64",
            "c8": "complex64", "c16": "complex128"}[arr.dtype.kind + str(arr.dtype.itemsize)]
    return name, list(arr.shape), np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("<"))).tobytes()


def check(out_path, expected_path):
    with open(expected_path) as f:
        want = {t["name"]: t for t in json.load(f)["tensors"] if t["dtype"] not in NO_HDF5_FORM}
    problems = []
    with h5py.File(out_path, "r") as f:
        got = datasets(f)
        for name in sorted(set(want) - set(got)):
            problems.append(f"missing dataset for {name}")
        for name in sorted(set(got) - set(want)):
            problems.append(f"unexpected dataset {name}")
        for name in sorted(set(want) & set(got)):
            w = want[name]
            dtype, shape, data = as_expected(got[name])
            if dtype != w["dtype"]:
                problems.append(f"{name}: dtype {dtype}, expected {w['dtype']}")
            if shape != w["shape"]:
                problems.append(f"{name}: shape {shape}, expected {w['shape']}")
            ok = data.hex() == w["hex"] if "hex" in w else hashlib.sha256(data).hexdigest() == w["sha256"]
            if not ok:
                problems.append(f"{name}: bytes differ")
    return [f"{out_path}: {p}" for p in problems]


def main(args):
    if len(args) % 2 or not args:
        sys.exit(__doc__)
    problems = []
    for i in range(0, len(args), 2):
        problems += check(args[i], args[i + 1])
    for p in problems:
        print(p)
    if problems:
        sys.exit(1)
    print(f"h5py agrees on {len(args) // 2} file(s)")


if __name__ == "__main__":
    main(sys.argv[1:])
