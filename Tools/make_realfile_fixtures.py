#!/usr/bin/env python3
"""Writes Tests/CheckpointsTests/Fixtures/realfiles: checkpoints with every dtype torch, safetensors, numpy and HDF5
define (issue 10), written by the real libraries, with `.expected.json` files in the format make_fixtures.py
documents (read back through the owning library: torch.load, safetensors, numpy.load, h5py).

Run:   /work/venv/bin/python Tools/make_realfile_fixtures.py

Made with: Python 3.11.7, torch 2.15.0, numpy 2.4.6, h5py 3.16.0, safetensors 0.8.0 (the versions used are
recorded in realfiles/VERSIONS.txt). Deterministic (fixed values, no timestamps in what the tests compare).

dtype names in the expected files are torch's (complex64, uint16, float8_e4m3fn, …); safetensors' packed sub-byte
types use float4_e2m1fn / float6_e2m3fn / float6_e3m2fn, and their "hex" is the packed bytes as stored.
"""

import collections
import json
import os
import platform
import shutil
import struct
import sys

import numpy as np
import safetensors
import safetensors.torch
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402  (helpers: expected-file writer, byte helpers)

ROOT = os.path.join(mf.ROOT, "realfiles")
mf.NUMPY_DTYPE_NAMES.update({"u2": "uint16", "u4": "uint32", "u8": "uint64", "c8": "complex64", "c16": "complex128"})


def out(name):
    os.makedirs(ROOT, exist_ok=True)
    return os.path.join(ROOT, name)


def f8(values, dtype):
    return torch.tensor(values, dtype=torch.float32).to(dtype)


def every_dtype_dict():
    """The dtypes the classic fixtures do not cover, with edge values (NaN, inf, max, subnormals, negative zero)."""
    d = collections.OrderedDict()
    d["complex64"] = torch.tensor([[1 + 2j, -3.5j], [float("inf") + 0j, complex(0.0, -0.0)]], dtype=torch.complex64)
    d["complex128"] = torch.tensor([1e300 - 1e-300j, -0.25 + 7j, complex(float("nan"), 1.0)], dtype=torch.complex128)
    d["uint16"] = torch.tensor([0, 1, 65535, 40000], dtype=torch.int32).to(torch.uint16)
    d["uint32"] = torch.tensor([0, 4294967295, 3000000000], dtype=torch.int64).to(torch.uint32)
    d["uint64"] = torch.tensor([0, 1, 2 ** 63 - 1], dtype=torch.int64).to(torch.uint64)
    d["uint64_high"] = torch.tensor([-1, -(2 ** 63)], dtype=torch.int64).view(torch.uint64)   # 2^64-1, 2^63
    d["float8_e4m3fn"] = f8([0.0, -0.0, 1.0, -1.5, 448.0, 2 ** -9, float("nan"), 0.3], torch.float8_e4m3fn)
    d["float8_e5m2"] = f8([0.0, -2.0, 57344.0, 2 ** -16, float("inf"), float("-inf"), float("nan"), 0.3], torch.float8_e5m2)
    d["float8_e4m3fnuz"] = f8([0.0, 1.0, -240.0, 2 ** -10, float("nan"), 0.3], torch.float8_e4m3fnuz)
    d["float8_e5m2fnuz"] = f8([0.0, 1.0, -57344.0, 2 ** -17, float("nan"), 0.3], torch.float8_e5m2fnuz)
    d["float8_e8m0fnu"] = f8([1.0, 2.0 ** -127, 2.0 ** 127, 0.5, float("nan")], torch.float8_e8m0fnu)
    d["bool"] = torch.tensor([True, False, True])
    d["float32"] = torch.tensor([[0.5, -1.0], [3.0, 1e-3]])
    # Views of the new dtypes: a transposed complex tensor, a strided uint16 slice, a float8 slice with an offset.
    d["views"] = collections.OrderedDict([
        ("complex_t", d["complex64"].t()),
        ("uint16_step", d["uint16"][::2]),
        ("e4m3_tail", d["float8_e4m3fn"][3:]),
    ])
    return d


def make_torch():
    made = []
    d = every_dtype_dict()
    made.append(mf.torch_fixture(d, "every_dtype_zip.pth", legacy=False, protocol=2,
                                 notes="complex, unsigned and float8 tensors (torch >= 2.x: UntypedStorage plus a dtype)"))
    # The legacy format writes the complex storages by class name (ComplexFloatStorage, ComplexDoubleStorage).
    legacy = collections.OrderedDict([("complex64", d["complex64"]), ("complex128", d["complex128"]),
                                      ("complex_t", d["complex64"].t()), ("float32", d["float32"])])
    made.append(mf.torch_fixture(legacy, "complex_legacy.pth", legacy=True, protocol=2,
                                 notes="complex storages of the legacy format"))
    for p in made:
        os.replace(p, out(os.path.basename(p)))
        os.replace(p + ".expected.json", out(os.path.basename(p)) + ".expected.json")
    return [out(os.path.basename(p)) for p in made]


def make_unsupported_kinds():
    """Tensors this reader cannot represent, beside ordinary ones: each is listed by name ("unsupported" in the
    expected file: name and a fragment of its description), the others read as usual."""
    import warnings
    warnings.filterwarnings("ignore")
    d = collections.OrderedDict()
    d["w"] = torch.tensor([1.0, 2.0])
    d["z"] = torch.zeros(2, dtype=torch.complex32)
    d["q4"] = torch.quantize_per_tensor(torch.tensor([0.5, 1.0, 1.5, 2.0]), 0.5, 0, torch.quint4x2)
    d["sp"] = torch.tensor([[0, 1.5], [0, 0]]).to_sparse()
    d["nested"] = torch.nested.nested_tensor([torch.ones(2), torch.ones(3)])
    d["f4x2"] = torch.tensor([[0x21]], dtype=torch.uint8).view(torch.float4_e2m1fn_x2)
    d["b"] = torch.tensor([3], dtype=torch.int64)
    path = out("unsupported_kinds_zip.pth")
    mf.save_torch(d, path, legacy=False, protocol=2)
    back = torch.load(path, weights_only=False)
    assert list(back) == list(d)
    unsupported = [{"name": "z", "what": "complex32"}, {"name": "q4", "what": "QUInt4x2Storage"},
                   {"name": "sp", "what": "sparse"},
                   {"name": "nested", "what": "nested"}, {"name": "f4x2", "what": "float4_e2m1fn_x2"}]
    mf.write_expected(path, "pytorch-zip", [mf.torch_record("w", back["w"]), mf.torch_record("b", back["b"])], {},
                      "torch.save(obj, path, pickle_protocol=2)",
                      notes="packed quantized (quint4x2), sparse, nested, complex32 and float4_e2m1fn_x2 tensors are listed as unsupported "
                            "by name; the other tensors read as usual",
                      extra={"unsupported": unsupported})
    return [path]


def quantized_records(name, q):
    """What the reader gives for a quantized tensor (README "Quantized tensors"), from torch's own accessors."""
    recs = [mf.torch_record(name, q.int_repr())]
    if q.qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric):
        recs.append(mf.torch_record(name + ".q_scale", torch.tensor(q.q_scale(), dtype=torch.float64)))
        recs.append(mf.torch_record(name + ".q_zero_point", torch.tensor(q.q_zero_point(), dtype=torch.int64)))
    else:
        recs.append(mf.torch_record(name + ".q_scale", q.q_per_channel_scales()))
        recs.append(mf.torch_record(name + ".q_zero_point", q.q_per_channel_zero_points()))
        recs.append(mf.torch_record(name + ".q_axis", torch.tensor(q.q_per_channel_axis(), dtype=torch.int64)))
    return recs


def make_quantized():
    """Torch quantized tensors (issue 10): their integer data and quantizer parameters, checked against int_repr(),
    q_scale(), q_zero_point(), q_per_channel_scales(), q_per_channel_zero_points(), q_per_channel_axis()."""
    made = []
    x = torch.tensor([[0.5, -1.25, 3.0], [2.0, 0.0, -0.75]])
    d = collections.OrderedDict()
    d["qint8"] = torch.quantize_per_tensor(x, 0.05, 3, torch.qint8)
    d["quint8"] = torch.quantize_per_tensor(x, 0.1, 128, torch.quint8)
    d["qint32"] = torch.quantize_per_tensor(x, 1e-4, -7, torch.qint32)
    d["per_channel_axis0"] = torch.quantize_per_channel(x, torch.tensor([0.02, 0.03], dtype=torch.float64),
                                                        torch.tensor([1, -2]), 0, torch.qint8)
    d["per_channel_axis1"] = torch.quantize_per_channel(x, torch.tensor([0.1, 0.2, 0.05], dtype=torch.float64),
                                                        torch.tensor([0, 10, 250]), 1, torch.quint8)
    d["float_qparams"] = torch.quantize_per_channel(x, torch.tensor([0.1, 0.2], dtype=torch.float64),
                                                    torch.tensor([0.5, -1.0]), 0, torch.quint8)
    d["transposed"] = torch.quantize_per_tensor(x, 0.05, 3, torch.qint8).t()
    d["plain"] = torch.tensor([1.0, 2.0])
    assert d["float_qparams"].qscheme() == torch.per_channel_affine_float_qparams
    # A dynamically quantized model's state_dict (torch.ao.quantization): a packed Linear's (weight, bias).
    g = torch.Generator().manual_seed(5)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    qnet = torch.ao.quantization.quantize_dynamic(net, {torch.nn.Linear}, dtype=torch.qint8)
    cases = [("quantized_zip.pth", d, False), ("quantized_legacy.pth", d, True), ("quantized_dynamic_linear.pth", qnet.state_dict(), False)]
    for fname, obj, legacy in cases:
        path = out(fname)
        mf.save_torch(obj, path, legacy=legacy, protocol=2)
        back = torch.load(path, weights_only=False)
        records, meta = [], collections.OrderedDict()

        def walk(v, name):
            if isinstance(v, torch.Tensor) and v.is_quantized:
                records.extend(quantized_records(name, v))
            elif isinstance(v, torch.Tensor):
                records.append(mf.torch_record(name, v))
            elif isinstance(v, dict):
                for k, x in v.items():
                    walk(x, f"{name}.{k}" if name else k)
            elif isinstance(v, (list, tuple)):
                for i, x in enumerate(v):
                    walk(x, f"{name}.{i}")
            elif isinstance(v, torch.dtype):
                meta[name] = "torch." + str(v).replace("torch.", "")
            else:
                meta[name] = mf.check_meta_value(v)
        walk(back, "")
        mf.write_expected(path, "pytorch-legacy" if legacy else "pytorch-zip", records, meta,
                          f"torch.save(obj, path, pickle_protocol=2{', _use_new_zipfile_serialization=False' if legacy else ''})",
                          notes="quantized tensors: the integer data (int_repr()) under the name, <name>.q_scale and "
                                "<name>.q_zero_point (0-d per tensor; q_per_channel_scales() / _zero_points() per channel) "
                                "and <name>.q_axis (per channel), as torch.load gives them")
        made.append(path)
    return made


class TinyNet(torch.nn.Module):
    """A small net with a parameterless op, a buffer and a non-persistent buffer (left out of state_dict())."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(11)
        self.conv = torch.nn.Conv2d(2, 3, 3, bias=False)
        self.bn = torch.nn.BatchNorm2d(3)
        self.head = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4, 2))
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))
            self.bn.running_mean.copy_(torch.randn(3, generator=g))
        self.register_buffer("scale", torch.tensor([0.5, 2.0]))
        self.register_buffer("scratch", torch.zeros(2), persistent=False)

    def forward(self, x):
        return self.head(torch.relu(self.bn(self.conv(x)))) * self.scale


def torchscript_attributes(path, loaded):
    """The non-tensor attributes of each scripted module in data.pkl, dotted like the tensors, each valued as the
    loaded ScriptModule gives it (None stays None; lists/tuples are flattened by index)."""
    import pickle
    import zipfile

    class Obj:
        def __setstate__(self, state):
            self.state = state

    class Reader(pickle.Unpickler):
        def find_class(self, module, name):
            if module.startswith("__torch__"):
                return type(name, (Obj,), {})
            if module == "collections" and name == "OrderedDict":
                return collections.OrderedDict
            return lambda *a, **k: None  # tensor rebuilds: values not needed here

        def persistent_load(self, pid):
            return None

    with zipfile.ZipFile(path) as z:
        pkl = [n for n in z.namelist() if n.endswith("/data.pkl")][0]
        root = Reader(__import__("io").BytesIO(z.read(pkl))).load()
    meta = collections.OrderedDict()

    def walk(obj, mod, prefix):
        for k, v in obj.state.items():
            name = f"{prefix}.{k}" if prefix else k
            if isinstance(v, Obj):
                walk(v, getattr(mod, k), name)
                continue
            real = getattr(mod, k)
            if isinstance(real, torch.Tensor):
                continue
            tensors, m = mf.flatten(real, name)
            assert not tensors
            meta.update(m)
    walk(root, loaded, "")
    return meta


def make_modules():
    """torch.save of a torch.fx GraphModule (symbolic_trace) and torch.jit.save of a scripted module: the tensors come
    out under model.state_dict() names, the generated code is neither run nor kept as metadata."""
    made = []
    model = TinyNet().eval()
    traced = torch.fx.symbolic_trace(model)
    path = out("fx_graph_module.pth")
    mf.save_torch(traced, path, legacy=False, protocol=2)
    back = torch.load(path, weights_only=False)
    sd = back.state_dict()
    assert list(sd) == list(traced.state_dict())
    mf.write_expected(path, "pytorch-zip", [mf.torch_record(n, t) for n, t in sd.items()], {},
                      "torch.save(torch.fx.symbolic_trace(model), path)",
                      notes="names as torch.load(path).state_dict() gives them; the GraphModule's code is not metadata")
    made.append(path)

    scripted = torch.jit.script(model)
    path = out("torchscript.pt")
    torch.jit.save(scripted, path)
    back = torch.jit.load(path)
    sd = back.state_dict()
    mf.write_expected(path, "pytorch-zip", [mf.torch_record(n, t) for n, t in sd.items()], torchscript_attributes(path, back),
                      "torch.jit.save(torch.jit.script(model), path)",
                      notes="a TorchScript archive read as data (code/ is never run): tensors as torch.jit.load(path)."
                            "state_dict() gives them; the modules' other attributes are metadata, valued as torch.jit.load gives them")
    made.append(path)
    return made


def make_numpy_in_pickles():
    """numpy arrays inside torch.save (protocol 2: _reconstruct + _codecs.encode; protocol 5: _frombuffer)."""
    made = []
    arrays = collections.OrderedDict([
        ("f32", np.arange(6, dtype=np.float32).reshape(2, 3) / 4),
        ("i64_be", np.array([1, -2, 2 ** 40], ">i8")),
        ("u16", np.array([0, 65535], np.uint16)),
        ("c64", np.array([1 + 2j, -1j], np.complex64)),
        ("fortran", np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3))),
        ("scalar_arr", np.array(2.5, np.float32)),
        ("nested", {"b": [np.array([True, False]), np.zeros((0, 2), np.int8)]}),
    ])
    obj = collections.OrderedDict([("tensor", torch.tensor([1.0, -1.0])), ("np", arrays), ("epoch", 3)])
    for protocol in (2, 5):
        path = out(f"numpy_in_torch_p{protocol}.pth")
        mf.save_torch(obj, path, legacy=False, protocol=protocol)
        back = torch.load(path, weights_only=False)
        records, meta = [], collections.OrderedDict()

        def walk(v, name):
            if isinstance(v, torch.Tensor):
                records.append(mf.torch_record(name, v))
            elif isinstance(v, np.ndarray):
                records.append(mf.numpy_record(name, v))
            elif isinstance(v, dict):
                for k, x in v.items():
                    walk(x, f"{name}.{k}" if name else k)
            elif isinstance(v, (list, tuple)):
                for i, x in enumerate(v):
                    walk(x, f"{name}.{i}")
            else:
                meta[name] = v
        walk(back, "")
        mf.write_expected(path, "pytorch-zip", records, meta, f"torch.save(obj, path, pickle_protocol={protocol})",
                          notes="numpy arrays inside a torch pickle, values as torch.load gives them (C order, little-endian)")
        made.append(path)
    return made


class Foreign:
    """A class outside numpy: an object array holding it must be refused, naming it."""


def make_npy_object_arrays():
    """np.save(..., allow_pickle=True) of object arrays: a dict of arrays (a 0-d object array) and a ragged list."""
    made = []
    cases = collections.OrderedDict([
        ("npy_object_dict.npy", np.array({"w": np.arange(4, dtype=np.float32), "meta": {"b": np.array([1, 2], np.int16)},
                                           "epoch": 7, "name": "net"}, dtype=object)),
        ("npy_object_ragged.npy", np.array([np.ones(2, np.float16), np.zeros((1, 3), ">f8"), None], dtype=object)),
    ])
    for fname, a in cases.items():
        path = out(fname)
        np.save(path, a, allow_pickle=True)
        back = np.load(path, allow_pickle=True)
        records, meta = [], collections.OrderedDict()

        def walk(v, name):
            if isinstance(v, np.ndarray) and v.dtype != object:
                records.append(mf.numpy_record(name, v))
            elif isinstance(v, np.ndarray):
                items = v.reshape(-1)
                if v.ndim == 0:
                    walk(items[0], name)
                else:
                    for i, x in enumerate(items):
                        walk(x, f"{name}.{i}")
            elif isinstance(v, dict):
                for k, x in v.items():
                    walk(x, f"{name}.{k}")
            else:
                meta[name] = mf.check_meta_value(v)
        walk(back, "array")
        mf.write_expected(path, "npy", records, meta, "np.save(path, object_array, allow_pickle=True)",
                          notes="an object array read as data: numpy arrays inside come out as tensors under dotted names "
                                "(element i as array.i; a 0-d array as its one element), values as np.load gives them")
        made.append(path)
    # Pickles from NumPy before 1.0 rebuild arrays with numpy.core._internal._reconstruct (numpy keeps that name for
    # them): the same object array written with protocol 2, its _reconstruct globals renamed; numpy still loads it.
    path = out("npy_object_numpy0.npy")
    import io
    buf = io.BytesIO()
    a = np.array([np.arange(3, dtype=np.float32), {"w": np.array([1, -1], np.int16)}], dtype=object)
    np.lib.format.write_array_header_1_0(buf, np.lib.format.header_data_from_array_1_0(a))
    __import__("pickle").dump(a, buf, protocol=2)
    data = buf.getvalue()
    for spelling in (b"numpy._core.multiarray\n_reconstruct", b"numpy.core.multiarray\n_reconstruct"):
        data = data.replace(spelling, b"numpy.core._internal\n_reconstruct")
    assert b"numpy.core._internal\n_reconstruct" in data
    with open(path, "wb") as f:
        f.write(data)
    back = np.load(path, allow_pickle=True)
    mf.write_expected(path, "npy", [mf.numpy_record("array.0", back[0]), mf.numpy_record("array.1.w", back[1]["w"])], {},
                      "an .npy header (np.lib.format) + pickle.dump(object_array, f, protocol=2), then the _reconstruct "
                      "globals renamed to numpy.core._internal._reconstruct (pre-1.0 NumPy's spelling); np.load reads it",
                      notes="values as np.load gives them")
    made.append(path)
    # Refused: a global outside numpy in the object array (written by numpy; no expected values, a test names it).
    np.save(out("npy_object_foreign.npy"), np.array([Foreign()], dtype=object), allow_pickle=True)
    return made


def make_npz_object_arrays():
    """np.savez / np.savez_compressed of a dict holding object arrays (what allow_pickle=True loads): members named
    by their key, an object array's numpy arrays under dotted names below it, plain values as metadata."""
    made = []
    members = collections.OrderedDict([
        ("w", np.arange(4, dtype=np.float32).reshape(2, 2)),
        ("state", np.array({"mean": np.array([0.5, -0.5], np.float64), "count": 12,
                            "nested": {"ids": np.array([3, 1, 2], ">i4")}}, dtype=object)),
        ("ragged", np.array([np.ones(3, np.uint16), np.zeros((2, 1), np.bool_), "tag"], dtype=object)),
    ])
    for fname, save in [("npz_object_arrays.npz", np.savez), ("npz_object_arrays_compressed.npz", np.savez_compressed)]:
        path = out(fname)
        with mf.pinned_clock():
            save(path, **members)
        back = np.load(path, allow_pickle=True)
        records, meta = [], collections.OrderedDict()

        def walk(v, name):
            if isinstance(v, np.ndarray) and v.dtype != object:
                records.append(mf.numpy_record(name, v))
            elif isinstance(v, np.ndarray):
                items = v.reshape(-1)
                if v.ndim == 0:
                    walk(items[0], name)
                else:
                    for i, x in enumerate(items):
                        walk(x, f"{name}.{i}")
            elif isinstance(v, dict):
                for k, x in v.items():
                    walk(x, f"{name}.{k}")
            else:
                meta[name] = mf.check_meta_value(v)
        for key in back.files:
            walk(back[key], key)
        mf.write_expected(path, "npz", records, meta, f"np.{save.__name__}(path, **arrays) with object arrays; np.load(path, allow_pickle=True)",
                          notes="object arrays inside an .npz read as data: member k's numpy arrays under k.<key> / k.<i>, "
                                "a 0-d object array as its one element, plain values as metadata")
        made.append(path)
    # Refused: an object array holding a class outside numpy (written by numpy; a test names the global).
    with mf.pinned_clock():
        np.savez(out("npz_object_foreign.npz"), ok=np.ones(2, np.float32), bad=np.array([Foreign()], dtype=object))
    return made


def make_safetensors():
    made = []
    d = every_dtype_dict()
    tensors = collections.OrderedDict((k, v.contiguous()) for k, v in d.items() if k not in ("views", "complex128"))
    tensors["float4_e2m1fn"] = torch.tensor([[0x21, 0x43, 0xF0]], dtype=torch.uint8).view(torch.float4_e2m1fn_x2)
    path = out("every_dtype.safetensors")
    safetensors.torch.save_file(tensors, path, metadata={"format": "pt"})
    mf.sort_safetensors_metadata(path)
    made.append(path)

    # safetensors' Python API cannot write F6 tensors; the file is written by hand and read by safetensors.
    header = collections.OrderedDict([
        ("f6_e2m3", {"dtype": "F6_E2M3", "shape": [2, 2], "data_offsets": [0, 3]}),
        ("f6_e3m2", {"dtype": "F6_E3M2", "shape": [8], "data_offsets": [3, 9]}),
        ("f4", {"dtype": "F4", "shape": [6], "data_offsets": [9, 12]}),
        ("e8m0", {"dtype": "F8_E8M0", "shape": [2], "data_offsets": [12, 14]}),
    ])
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    data = bytes([0x41, 0x10, 0xFC, 1, 2, 3, 4, 5, 6, 0x12, 0x34, 0x56, 127, 0x80])
    path = out("packed_subbyte.safetensors")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb + data)
    made.append(path)

    names = {"F4": "float4_e2m1fn", "F6_E2M3": "float6_e2m3fn", "F6_E3M2": "float6_e3m2fn", "F8_E8M0": "float8_e8m0fnu",
             "C64": "complex64", "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2", "F8_E4M3FNUZ": "float8_e4m3fnuz",
             "F8_E5M2FNUZ": "float8_e5m2fnuz", "U16": "uint16", "U32": "uint32", "U64": "uint64", "BOOL": "bool",
             "F32": "float32"}
    for path in made:
        raw = open(path, "rb").read()
        order = mf.safetensors_order(path)
        # What the safetensors library itself reads (its Rust deserializer: dtype code, shape, bytes).
        got = dict(safetensors.deserialize(raw))
        records = [mf.tensor_record(n, names[got[n]["dtype"]], got[n]["shape"], bytes(got[n]["data"])) for n in order]
        with safetensors.safe_open(path, "numpy") as f:
            meta = f.metadata() or {}
        mf.write_expected(path, "safetensors", records, meta,
                          "safetensors.torch.save_file" if "every" in path else "written by hand, read by safetensors.deserialize",
                          notes="expected bytes are what safetensors.deserialize returns; F4/F6 are packed, carried verbatim")
    return made


def make_numpy():
    made = []
    arrays = collections.OrderedDict([
        ("complex64.npy", np.array([[1 + 2j, -3.5j], [np.inf, -0.0]], np.complex64)),
        ("complex128_bigendian.npy", np.array([1e300 - 1e-300j, -0.25 + 7j], ">c16")),
        ("uint16.npy", np.array([0, 1, 65535], np.uint16)),
        ("uint32_bigendian.npy", np.array([0, 4294967295, 3000000000], ">u4")),
        ("uint64.npy", np.array([0, 2 ** 64 - 1, 2 ** 63], np.uint64)),
    ])
    for fname, a in arrays.items():
        path = out(fname)
        np.save(path, a)
        back = np.load(path)
        assert back.dtype == a.dtype and np.array_equal(back.view(np.uint8), a.view(np.uint8))
        mf.write_expected(path, "npy", [mf.numpy_record("array", back)], {}, f"np.save of dtype {a.dtype.str}",
                          notes="a single .npy holds one tensor named 'array'")
        made.append(path)
    return made


def make_hdf5():
    """h5py's own complex (compound {r, i}) and unsigned datasets, and a float8 dataset as `weights` writes it."""
    import h5py
    path = out("every_dtype_h5py.h5")
    arrays = collections.OrderedDict([
        ("c128", np.array([1e300 - 1e-300j, -0.25 + 7j], np.complex128)),
        ("c64", np.array([[1 + 2j, -3.5j], [np.inf, -0.0]], np.complex64)),
        ("u16", np.array([0, 1, 65535], np.uint16)),
        ("u32", np.array([0, 4294967295], ">u4")),
        ("u64", np.array([0, 2 ** 64 - 1, 2 ** 63], np.uint64)),
    ])
    e4m3 = f8([0.0, 1.0, -1.5, 448.0, float("nan")], torch.float8_e4m3fn).view(torch.uint8).numpy()
    with h5py.File(path, "w", libver=("earliest", "v110"), track_order=False) as f:
        for k, a in arrays.items():
            f.create_dataset(k, data=a, track_times=False)
        d = f.create_dataset("w8", data=e4m3, track_times=False)
        d.attrs["dtype"] = "float8_e4m3fn"
    records = []
    with h5py.File(path, "r") as f:
        for k in sorted(f.keys()):   # h5py's default iteration: name order
            a = f[k][()]
            if k == "w8":
                assert f[k].attrs["dtype"] == "float8_e4m3fn"
                records.append(mf.tensor_record(k, "float8_e4m3fn", a.shape, a.tobytes()))
            else:
                records.append(mf.numpy_record(k, a))
    mf.write_expected(path, "hdf5", records, {}, "h5py create_dataset of complex, unsigned and float8-as-bytes arrays",
                      notes="h5py stores complex as a compound {r, i}; float8 is uint8 bytes plus the attribute dtype")
    return [path]


def main():
    versions = collections.OrderedDict([
        ("python", platform.python_version()), ("torch", torch.__version__), ("numpy", np.__version__),
        ("safetensors", safetensors.__version__), ("h5py", __import__("h5py").__version__),
    ])
    shutil.rmtree(ROOT, ignore_errors=True)
    made = make_torch() + make_unsupported_kinds() + make_quantized() + make_modules() + make_numpy_in_pickles() + make_npy_object_arrays() + make_npz_object_arrays() + make_safetensors() + make_numpy() + make_hdf5()
    with open(out("VERSIONS.txt"), "w") as f:
        f.write("Fixtures written by Tools/make_realfile_fixtures.py with:\n")
        for k, v in versions.items():
            f.write(f"{k} {v}\n")
    total = sum(os.path.getsize(os.path.join(ROOT, n)) for n in os.listdir(ROOT))
    print(f"{len(made)} fixtures, {total / 1024:.0f} KiB in {ROOT}")




FLOAT8 = ["float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu"]


def make_float8_tables():
    """Tests/TensorCoreTests/Fixtures/float8.json: torch's value of every byte of each float8 format, and torch's
    rounding of float32 inputs (every value, the midpoints between neighbours, overflow, random values)."""
    rng = np.random.default_rng(10)
    doc = collections.OrderedDict()
    for name in FLOAT8:
        dt = getattr(torch, name)
        decoded = torch.arange(256, dtype=torch.int32).to(torch.uint8).view(dt).float()
        vals = sorted(set(v for v in decoded.tolist() if v == v))
        mids = [(a + b) / 2 for a, b in zip(vals, vals[1:])]
        extra = [vals[-1] * 1.01, vals[-1] * 2, -vals[-1] * 2, float("inf"), float("-inf"), 1e-30, -1e-30]
        inputs = torch.tensor(vals + mids + extra + list(rng.standard_normal(64) * 10), dtype=torch.float32)
        doc[name] = {
            "decode": decoded.numpy().astype("<f4").tobytes().hex(),
            "encode_in": inputs.numpy().astype("<f4").tobytes().hex(),
            "encode_out": inputs.to(dt).view(torch.uint8).numpy().tobytes().hex(),
        }
    path = os.path.join(os.path.dirname(mf.ROOT), "..", "TensorCoreTests", "Fixtures", "float8.json")
    with open(os.path.normpath(path), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
    make_float8_tables()
