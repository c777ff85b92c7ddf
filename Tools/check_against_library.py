#!/usr/bin/env python3
"""Checks `weights` on any checkpoint against the library that owns its format (issue 10's "Done when"): every tensor
`weights` reads must equal, bit for bit, what torch.load / torch.jit.load, numpy.load, h5py, safetensors or Keras's
archive gives for it, and survive `weights convert` to safetensors and back unchanged.

Usage:  KERAS_BACKEND=torch check_against_library.py [--weights PATH] FILE [FILE ...]

For each FILE: `weights inspect --json` names the format, the tensors and those it lists as not readable; the owning
library reads the file and the expected values are built from it with the reader's naming rules (dotted names from
the root; a module by its state_dict(); a quantized tensor as int_repr() plus .q_scale / .q_zero_point / .q_axis;
numpy arrays in pickles and object arrays by their dotted path; HDF5 and .keras datasets by the path `inspect` shows
as their location, read by h5py, for .keras from the archive's model.weights.h5 member). Then
`weights convert FILE -o A.safetensors --skip-unsupported --mapping none` and the same from A to B.safetensors, and
both outputs are checked with check_safetensors.py (Python's safetensors, and torch where it has the dtype).
Prints one line per file, the tensors `weights` lists as not readable, and every problem; exits 1 on any problem.
"""

import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check_safetensors  # noqa: E402
import make_fixtures as mf  # noqa: E402

mf.NUMPY_DTYPE_NAMES.update({"u2": "uint16", "u4": "uint32", "u8": "uint64", "c8": "complex64", "c16": "complex128"})


def torch_expected(path, fmt):
    import torch
    names = zipfile.ZipFile(path).namelist() if zipfile.is_zipfile(path) else []
    if any(n.endswith("/constants.pkl") or n == "constants.pkl" for n in names):
        obj = torch.jit.load(path, map_location="cpu").state_dict()
    else:
        obj = torch.load(path, weights_only=False, map_location="cpu")
    records = []

    def walk(v, name):
        if isinstance(v, torch.Tensor) and v.is_quantized:
            records.append(mf.torch_record(name, v.int_repr()))
            if v.qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric):
                records.append(mf.torch_record(name + ".q_scale", torch.tensor(v.q_scale(), dtype=torch.float64)))
                records.append(mf.torch_record(name + ".q_zero_point", torch.tensor(v.q_zero_point(), dtype=torch.int64)))
            else:
                records.append(mf.torch_record(name + ".q_scale", v.q_per_channel_scales()))
                records.append(mf.torch_record(name + ".q_zero_point", v.q_per_channel_zero_points()))
                records.append(mf.torch_record(name + ".q_axis", torch.tensor(v.q_per_channel_axis(), dtype=torch.int64)))
        elif isinstance(v, torch.Tensor):
            if v.layout == torch.strided and not v.is_nested and v.dtype in TORCH_READ:
                records.append(mf.torch_record(name, v.detach()))
        elif isinstance(v, torch.nn.Module):
            walk(v.state_dict(), name)
        elif isinstance(v, np.ndarray):
            numpy_walk(v, name, records)
        elif isinstance(v, dict):
            for k, x in v.items():
                walk(x, f"{name}.{k}" if name else str(k))
        elif isinstance(v, (list, tuple)):
            for i, x in enumerate(v):
                walk(x, f"{name}.{i}" if name else str(i))
    walk(obj, "" if isinstance(obj, (dict, list, tuple, torch.nn.Module)) else "tensor")
    return records


def numpy_walk(v, name, records):
    if isinstance(v, np.ndarray) and v.dtype != object:
        records.append(mf.numpy_record(name, v))
    elif isinstance(v, np.ndarray):
        items = v.reshape(-1)
        if v.ndim == 0:
            numpy_walk(items[0], name, records)
        else:
            for i, x in enumerate(items):
                numpy_walk(x, f"{name}.{i}", records)
    elif isinstance(v, dict):
        for k, x in v.items():
            numpy_walk(x, f"{name}.{k}", records)
    elif isinstance(v, (list, tuple)):
        for i, x in enumerate(v):
            numpy_walk(x, f"{name}.{i}", records)


def numpy_expected(path, fmt):
    records = []
    loaded = np.load(path, allow_pickle=True)
    if fmt == "npz":
        for key in loaded.files:   # member paths are dotted like every other name ('a/b.npy' -> a.b)
            numpy_walk(loaded[key], key.replace("/", "."), records)
    else:
        numpy_walk(loaded, "array", records)
    return records


def safetensors_expected(path, fmt):
    import safetensors
    inv = {k: v for k, v in check_safetensors.ST_DTYPES.items()}
    with open(path, "rb") as f:
        return [mf.tensor_record(n, inv.get(s["dtype"], s["dtype"]), s["shape"], bytes(s["data"]))
                for n, s in safetensors.deserialize(f.read())]


def h5_expected(path, fmt, inspected):
    import h5py
    src = io.BytesIO(zipfile.ZipFile(path).read("model.weights.h5")) if fmt == "keras" else path
    records = []
    with h5py.File(src, "r") as f:
        for t in inspected["tensors"]:
            loc = t["location"].split(" (")[0]
            if fmt == "keras":
                loc = loc.split(":", 1)[1]
            d = f[loc]
            a = d[()]
            dtype = t["dtype"]
            attr = d.attrs.get("dtype")
            attr = attr.decode() if isinstance(attr, bytes) else attr
            if attr == "bfloat16":    # stored as float32 holding bfloat16 values: the upper halves
                raw = np.ascontiguousarray(a.astype("<f4")).view("<u2")[..., 1::2] if a.ndim else np.array(a, "<f4").view("<u2")[1:]
                records.append(mf.tensor_record(t["name"], "bfloat16", list(a.shape), raw.tobytes()))
            elif attr and str(attr).startswith("float8"):
                records.append(mf.tensor_record(t["name"], attr, list(a.shape), np.ascontiguousarray(a).tobytes()))
            else:
                records.append(mf.numpy_record(t["name"], a))
    return records


def main(argv):
    weights = os.path.join(os.path.dirname(HERE), ".build", "debug", "weights")
    if argv[:1] == ["--weights"]:
        weights, argv = argv[1], argv[2:]
    if not argv:
        print(__doc__.strip().splitlines()[3], file=sys.stderr)
        return 64
    failed = False
    for path in argv:
        r = subprocess.run([weights, "inspect", "--json", path], capture_output=True, text=True)
        if r.returncode != 0:
            print(f"{path}: weights refuses it: {r.stderr.strip()}")
            failed = True
            continue
        inspected = json.loads(r.stdout)
        fmt = inspected["format"]
        unreadable = [u["name"] for u in inspected.get("unsupported", [])]
        try:
            if fmt.startswith("pytorch"):
                records = torch_expected(path, fmt)
            elif fmt in ("npy", "npz"):
                records = numpy_expected(path, fmt)
            elif fmt == "safetensors":
                records = safetensors_expected(path, fmt)
            else:
                records = h5_expected(path, fmt, inspected)
        except Exception as e:  # noqa: BLE001 - the owning library refuses it: report, go on
            print(f"library refuses: {path} ({fmt}): {type(e).__name__}: {str(e).splitlines()[0][:200]}")
            continue
        # Tensors weights lists as not readable (and the quantizer entries of a quantized one) are reported, not checked.
        records = [t for t in records if t["name"] not in unreadable
                   and not any(t["name"].startswith(u + ".q_") for u in unreadable)]
        got = [t["name"] for t in inspected["tensors"]]
        problems = []
        if sorted(got) != sorted(t["name"] for t in records):
            problems.append(f"names differ: only weights {sorted(set(got) - {t['name'] for t in records})[:10]}, "
                            f"only the library {sorted({t['name'] for t in records} - set(got))[:10]}")
        with tempfile.TemporaryDirectory() as tmp:
            expected = os.path.join(tmp, "expected.json")
            mf.dump_expected(expected, {"format": fmt, "tensors": records, "metadata": {}})
            a, b = os.path.join(tmp, "a.safetensors"), os.path.join(tmp, "b.safetensors")
            for src, dst in [(path, a), (a, b)]:
                c = subprocess.run([weights, "convert", src, "-o", dst, "--skip-unsupported", "--mapping", "none"],
                                   capture_output=True, text=True)
                if c.returncode != 0:
                    problems.append(f"convert {os.path.basename(src)}: {c.stderr.strip()}")
                    break
                problems += [p.replace(tmp + "/", "") for p in check_safetensors.check(dst, expected)
                             if "source_format" not in p]
        failed |= bool(problems)
        status = "ok" if not problems else "FAIL"
        note = f"; not readable (listed by weights): {unreadable}" if unreadable else ""
        print(f"{status}: {path} ({fmt}): {len(records)} tensors bit for bit vs the owning library, "
              f"safetensors and back{note}")
        for p in problems:
            print(f"    {p}")
    return 1 if failed else 0


TORCH_READ = set()
try:
    import torch as _t
    TORCH_READ = {_t.float64, _t.float32, _t.float16, _t.bfloat16, _t.int64, _t.int32, _t.int16, _t.int8, _t.uint8,
                  _t.bool, _t.complex64, _t.complex128, _t.uint16, _t.uint32, _t.uint64, _t.float8_e4m3fn,
                  _t.float8_e5m2, _t.float8_e4m3fnuz, _t.float8_e5m2fnuz, _t.float8_e8m0fnu}
except ImportError:
    pass

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
