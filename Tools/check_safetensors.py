#!/usr/bin/env python3
"""Checks safetensors files written by `weights` against expected values, with Python's own safetensors package.

Usage:  check_safetensors.py OUT.safetensors EXPECTED.json [OUT2 EXPECTED2 ...]

EXPECTED.json is a fixture's expected-values file (format documented in Tools/make_fixtures.py). For each pair:
the file must load with `safetensors.deserialize` (and with `safetensors.torch.load_file` when torch is installed),
hold exactly the expected tensor names with the same dtypes, shapes and bytes, and carry a `__metadata__` of
string values whose `source_format` is the fixture's format (when the writer was given one). Prints one line per
problem and exits 1 if there were any, else prints a summary and exits 0.
"""

import hashlib
import json
import sys

import safetensors

try:
    import safetensors.torch
    import torch
except ImportError:  # the byte-level check below does not need torch
    torch = None

ST_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
             "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool",
             "U16": "uint16", "U32": "uint32", "U64": "uint64", "C64": "complex64",
             "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2", "F8_E4M3FNUZ": "float8_e4m3fnuz",
             "F8_E5M2FNUZ": "float8_e5m2fnuz", "F8_E8M0": "float8_e8m0fnu",
             "F4": "float4_e2m1fn", "F6_E2M3": "float6_e2m3fn", "F6_E3M2": "float6_e3m2fn"}
# dtypes safetensors has no code for: `weights` leaves such tensors out (--skip-unsupported), so they are not expected.
NO_SAFETENSORS_FORM = {"complex128"}
# safetensors codes torch has no dtype for: the torch cross-check is skipped for files holding them.
NOT_IN_TORCH = {"F6_E2M3", "F6_E3M2"}


def matches(data, spec):
    if "hex" in spec:
        return data.hex() == spec["hex"]
    return hashlib.sha256(data).hexdigest() == spec["sha256"]


def check(out_path, expected_path):
    problems = []
    with open(expected_path) as f:
        expected = json.load(f)
    want = {t["name"]: t for t in expected["tensors"] if t["dtype"] not in NO_SAFETENSORS_FORM}
    with open(out_path, "rb") as f:
        blob = f.read()
    try:
        got = {name: spec for name, spec in safetensors.deserialize(blob)}
    except Exception as e:  # noqa: BLE001 - report whatever safetensors says
        return [f"{out_path}: safetensors cannot read it: {e}"]
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    if missing:
        problems.append(f"missing tensors: {missing[:20]}")
    if extra:
        problems.append(f"unexpected tensors: {extra[:20]}")
    for name in sorted(set(want) & set(got)):
        w, g = want[name], got[name]
        dtype = ST_DTYPES.get(g["dtype"], g["dtype"])
        if dtype != w["dtype"]:
            problems.append(f"{name}: dtype {dtype}, expected {w['dtype']}")
        if list(g["shape"]) != w["shape"]:
            problems.append(f"{name}: shape {list(g['shape'])}, expected {w['shape']}")
        if not matches(bytes(g["data"]), w):
            problems.append(f"{name}: bytes differ")
    with safetensors.safe_open(out_path, framework="numpy") as f:
        meta = f.metadata() or {}
    for k, v in meta.items():
        if not isinstance(k, str) or not isinstance(v, str):
            problems.append(f"__metadata__ entry {k!r}: {v!r} is not str -> str")
    if "source_format" in meta and meta["source_format"] != expected["format"]:
        problems.append(f"__metadata__ source_format is {meta['source_format']!r}, expected {expected['format']!r}")
    if torch is not None and not any(spec["dtype"] in NOT_IN_TORCH for spec in got.values()):
        try:
            loaded = safetensors.torch.load_file(out_path)
        except Exception as e:  # noqa: BLE001
            problems.append(f"safetensors.torch.load_file fails: {e}")
        else:
            for name, t in loaded.items():
                if name in want and not matches(t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes(), want[name]):
                    problems.append(f"{name}: torch sees different bytes")
    return [f"{out_path}: {p}" for p in problems]


def main(argv):
    if len(argv) < 2 or len(argv) % 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 64
    problems = []
    pairs = list(zip(argv[0::2], argv[1::2]))
    for out_path, expected_path in pairs:
        problems += check(out_path, expected_path)
    for p in problems:
        print(p)
    if problems:
        return 1
    print(f"ok: {len(pairs)} file(s) agree with their expected values "
          f"(safetensors {safetensors.__version__}{', torch ' + torch.__version__ if torch else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
