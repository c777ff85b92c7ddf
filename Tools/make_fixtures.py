#!/usr/bin/env python3
"""Writes the checkpoint fixtures of Tests/CheckpointsTests/Fixtures with real PyTorch, h5py, numpy and safetensors.

Run:   /work/venv/bin/python Tools/make_fixtures.py        (any venv with the packages below works)

Made with (the script prints the versions it actually used and records them in Fixtures/VERSIONS.txt; it warns
when they differ from these):
    Python 3.11.7, torch 2.15.0, torchvision 0.29.2, numpy 2.4.6, h5py 3.16.0 (libhdf5 per VERSIONS.txt),
    safetensors 0.8.0

Deterministic: fixed seeds everywhere, fixed zip timestamps (numpy's savez is run under a pinned clock), HDF5
files without timestamps. Running it twice gives byte-identical files (the script checks nothing else; compare
with `git status` after a re-run).

Layout (everything small; the whole folder stays well under 2 MB):
    torch/        PyTorch zip (default torch.save) and legacy (_use_new_zipfile_serialization=False) files
    hdf5/         h5py files, including Keras legacy (.h5) and Keras 3 (.weights.h5) layouts made by hand
    numpy/        .npy and .npz (savez and savez_compressed)
    safetensors/  files written by the safetensors package
    bad/          malformed and hostile inputs, listed in bad/EXPECTED.json

Expected values: every valid fixture `X.ext` has `X.ext.expected.json`:
    {
      "format":   "pytorch-zip" | "pytorch-legacy" | "safetensors" | "hdf5" | "npy" | "npz",
      "ordered":  true when the tensor order below is well defined and must match exactly; false: compare as a set,
      "source":   how the file was written (for humans),
      "notes":    optional remarks (for humans),
      "tensors":  [ {"name": "state_dict.layer1.0.conv1.weight", "dtype": "float32", "shape": [4, 3, 3, 3],
                     "hex": "<C-contiguous little-endian bytes as lowercase hex>"} , ... ],
      "metadata": {"epoch": 3, "arch": "resnet", "flag": null, ...}
    }
  * dtype names are torch's: float64 float32 float16 bfloat16 int64 int32 int16 int8 uint8 bool.
  * "hex" holds the tensor's logical values as C-contiguous little-endian bytes (bool as 00/01). Tensors of more
    than HEX_LIMIT bytes carry "sha256" (of those bytes) and "head_hex" (their first 32 bytes) instead of "hex".
  * metadata values are JSON null / true / false / integers (any size: 2**70 is written as an integer literal) /
    floats (always written with a '.' or an exponent, so 3 and 3.0 stay distinguishable) / strings.
  * Names (what the readers implement): containers are flattened to dotted names from the root (dict keys,
    list/tuple indices: `optimizer.state.0.momentum_buffer`, `extra.1.1`); non-tensor leaves are metadata under
    the same dotted names; a whole pickled module yields exactly `model.state_dict()` names and no metadata;
    HDF5 datasets are named by path with '/' -> '.', attributes are metadata `<path>.<attr>` (root attributes
    just `<attr>`), except that Keras layouts get Keras names (see the Keras fixtures' "notes"); .npz member
    names lose `.npy` and '/' -> '.'; a single .npy holds one tensor named `array`.
  * Order: torch files in the order the pickle yields (dict insertion order, depth first); safetensors by data
    offset; HDF5 by h5py's default iteration (name order within each group, depth first); npz in member order.

Malformed inputs: bad/EXPECTED.json lists {"file", "class", "fragment", "also"?: [...]}: opening the file (and
loading every tensor) must fail with one CheckpointError line that names the file and contains `fragment` (and each
string of `also`), case-insensitively.
"""

import collections
import contextlib
import hashlib
import io
import json
import os
import pickle
import platform
import shutil
import struct
import sys
import time
import zipfile
import zlib

import h5py
import numpy as np
import safetensors
import safetensors.torch
import torch
import torch.nn as nn
import torchvision
from torchvision.models.resnet import BasicBlock

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "CheckpointsTests", "Fixtures")
ROOT = os.path.normpath(ROOT)
HEX_LIMIT = 4096
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
MADE_WITH = {"torch": "2.15.0", "torchvision": "0.29.2", "numpy": "2.4.6", "h5py": "3.16.0", "safetensors": "0.8.0"}

assert sys.byteorder == "little", "expected values are written as little-endian bytes of this machine"


# ----------------------------------------------------------------------------------------------------------------
# Expected-values helpers
# ----------------------------------------------------------------------------------------------------------------

def tensor_le_bytes(t):
    """C-contiguous little-endian bytes of a torch tensor's logical values."""
    t = t.detach().contiguous().clone().reshape(-1)
    return t.view(torch.uint8).numpy().tobytes()


def array_le_bytes(a):
    """C-contiguous little-endian bytes of a numpy array's logical values (bool as 00/01)."""
    a = np.asarray(a)
    if a.dtype.byteorder == ">" or (a.dtype.byteorder == "=" and sys.byteorder == "big"):
        a = a.astype(a.dtype.newbyteorder("<"))
    return np.ascontiguousarray(a).tobytes()


NUMPY_DTYPE_NAMES = {
    "f8": "float64", "f4": "float32", "f2": "float16", "i8": "int64", "i4": "int32", "i2": "int16", "i1": "int8",
    "u1": "uint8", "b1": "bool",
}


def numpy_dtype_name(dt):
    dt = np.dtype(dt)
    return NUMPY_DTYPE_NAMES[dt.kind + str(dt.itemsize)]


def tensor_record(name, dtype, shape, data):
    rec = {"name": name, "dtype": dtype, "shape": [int(d) for d in shape]}
    if len(data) <= HEX_LIMIT:
        rec["hex"] = data.hex()
    else:
        rec["sha256"] = hashlib.sha256(data).hexdigest()
        rec["head_hex"] = data[:32].hex()
    return rec


def torch_record(name, t):
    return tensor_record(name, str(t.dtype).replace("torch.", ""), list(t.shape), tensor_le_bytes(t))


def numpy_record(name, a):
    a = np.asarray(a)
    return tensor_record(name, numpy_dtype_name(a.dtype), list(a.shape), array_le_bytes(a))


def check_meta_value(v):
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        assert v == v and v not in (float("inf"), float("-inf")), "no NaN/inf metadata: JSON cannot hold them"
        return v
    raise TypeError(f"unsupported metadata value {v!r}")


def flatten(obj, prefix="", tensors=None, meta=None):
    """The readers' flattening rule, in Python: dotted names from the root, tensors and non-tensor leaves."""
    tensors = [] if tensors is None else tensors
    meta = {} if meta is None else meta
    join = (lambda k: f"{prefix}.{k}") if prefix else (lambda k: str(k))
    if isinstance(obj, torch.Tensor):
        tensors.append((prefix, obj))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            assert isinstance(k, (str, int)) and not isinstance(k, bool), f"key {k!r}"
            flatten(v, join(k), tensors, meta)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            flatten(v, join(i), tensors, meta)
    else:
        meta[prefix] = check_meta_value(obj)
    return tensors, meta


def write_expected(path, fmt, tensors, metadata, source, ordered=True, notes=None, extra=None):
    doc = {"format": fmt, "ordered": ordered, "source": source}
    if notes:
        doc["notes"] = notes
    if extra:
        doc.update(extra)
    doc["tensors"] = tensors
    doc["metadata"] = metadata
    names = [t["name"] for t in tensors]
    assert len(names) == len(set(names)), f"duplicate names in {path}"
    dump_expected(path + ".expected.json", doc)


def dump_expected(path, doc):
    """JSON with one tensor and one metadata entry per line (readable diffs, no bloat)."""
    def enc(v):
        return json.dumps(v, allow_nan=False, ensure_ascii=False)

    lines = ["{"]
    for i, (k, v) in enumerate(doc.items()):
        comma = "," if i < len(doc) - 1 else ""
        if k == "tensors":
            items = [f"  {enc(t)}" for t in v]
            lines.append(f" {enc(k)}: [" + ("\n" + ",\n".join(items) + "\n ]" if items else "]") + comma)
        elif k == "metadata":
            items = [f"  {enc(mk)}: {enc(mv)}" for mk, mv in v.items()]
            lines.append(f" {enc(k)}: {{" + ("\n" + ",\n".join(items) + "\n }" if items else "}") + comma)
        else:
            lines.append(f" {enc(k)}: {enc(v)}{comma}")
    lines.append("}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    assert json.load(open(path)) == doc


def out(*parts):
    p = os.path.join(ROOT, *parts)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    return p


# ----------------------------------------------------------------------------------------------------------------
# PyTorch
# ----------------------------------------------------------------------------------------------------------------

def dtypes_and_views_checkpoint():
    """Every dtype, views with offsets/strides, shared storages, scalars, empties, an nn.Parameter, metadata."""
    g = torch.Generator().manual_seed(1234)
    f32_special = torch.tensor([0.0, -0.0, float("inf"), float("-inf"), float("nan"), 1e-45, 3.4e38, -1.5],
                               dtype=torch.float32)
    base = torch.arange(20, dtype=torch.float32).reshape(4, 5) * 0.5 - 3.0   # storage for several views
    shared = torch.arange(12, dtype=torch.int32).reshape(3, 4) - 5           # two different views of one storage
    tied = torch.randn(3, 2, generator=g)                                      # the same tensor under two names
    d = collections.OrderedDict()
    d["float64"] = torch.randn(2, 3, generator=g, dtype=torch.float64)
    d["float32"] = torch.randn(3, 4, generator=g)
    d["float32_special"] = f32_special
    d["float16"] = torch.tensor([[0.0, -2.5, 65504.0], [6e-8, float("inf"), 0.333]], dtype=torch.float16)
    d["bfloat16"] = (torch.randn(2, 5, generator=g) * 100).to(torch.bfloat16)
    d["int64"] = torch.tensor([-(2 ** 63), 2 ** 63 - 1, 0, -1, 123456789012], dtype=torch.int64)
    d["int32"] = torch.tensor([[-(2 ** 31), 2 ** 31 - 1], [7, -7]], dtype=torch.int32)
    d["int16"] = torch.tensor([-32768, 32767, 300], dtype=torch.int16)
    d["int8"] = torch.tensor([-128, 127, 0, 5], dtype=torch.int8)
    d["uint8"] = torch.tensor([[0, 255], [128, 1]], dtype=torch.uint8)
    d["bool"] = torch.tensor([[True, False, True], [False, False, True]])
    d["views"] = collections.OrderedDict([
        ("base", base),
        ("slice", base[1:, 2:]),                      # storage offset 7, strides (5, 1)
        ("transpose", base.t()),                      # strides (1, 5)
        ("narrow", base.narrow(1, 1, 2)),             # offset 1, strides (5, 1)
        ("expand", torch.arange(3, dtype=torch.float64).reshape(3, 1).expand(3, 4)),   # strides (1, 0)
        ("step", base[::2, ::3]),                     # strides (10, 3)
        ("empty_tail", base.reshape(-1)[20:]),        # shape [0] at offset 20 == the storage's size
        ("bf16_t", d["bfloat16"].t()),                # a transposed bfloat16 view
        ("bool_slice", d["bool"][:, 1:]),             # a bool view with offset 1
    ])
    d["shared"] = collections.OrderedDict([("row", shared[1]), ("block", shared[1:, 2:])])
    d["tied_a"] = tied
    d["tied_b"] = tied
    d["scalar_f32"] = torch.tensor(3.5)
    d["scalar_i64"] = torch.tensor(-7, dtype=torch.int64)
    d["scalar_bool"] = torch.tensor(True)
    d["empty"] = torch.zeros(0)
    d["empty_3x0"] = torch.zeros(3, 0, dtype=torch.int64)
    d["param"] = nn.Parameter(torch.randn(2, 2, generator=g))
    d["frozen_param"] = nn.Parameter(torch.ones(3, dtype=torch.float16), requires_grad=False)
    d["meta"] = {"big": 2 ** 70, "neg": -123456789012, "pi": 3.141592653589793, "three": 3.0, "note": "naïve ✓",
                 "none": None, "yes": True, "no": False, "list": [1, "two", 3.25]}
    # sanity: the views really are views
    assert d["views"]["slice"].storage_offset() == 7 and d["views"]["transpose"].stride() == (1, 5)
    assert d["views"]["expand"].stride() == (1, 0) and d["views"]["empty_tail"].storage_offset() == 20
    assert d["shared"]["row"].untyped_storage().data_ptr() == d["shared"]["block"].untyped_storage().data_ptr()
    return d


class TinyBlock(nn.Module):
    """torchvision BasicBlock names, tiny widths."""

    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.layer1 = nn.Sequential(TinyBlock(4))
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = x + self.layer1[0].bn1(self.layer1[0].conv1(x))
        return self.fc(x.mean((2, 3)))


def training_checkpoint():
    torch.manual_seed(7)
    model = TinyNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 3, 6, 6)).sum().backward()
    opt.step()
    return {
        "epoch": 3,
        "arch": "resnet",
        "best_acc": 0.91,
        "state_dict": model.state_dict(),   # keeps its _metadata attribute (pickled with BUILD), not content
        "optimizer": opt.state_dict(),
        "extra": [1, (2.5, torch.ones(2))],
        "flag": None,
        "ok": True,
    }


class CustomHead(nn.Module):
    """A module class the reader cannot import (defined in this script, i.e. __main__)."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(3, 2)
        self.scale = nn.Parameter(torch.full((2,), 0.5))
        self.register_buffer("counts", torch.arange(4, dtype=torch.int64))
        self.note = "plain attribute"
        self.factor = 2.5


class CustomModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 2, 2)
        self.blocks = nn.ModuleList([nn.BatchNorm2d(2), CustomHead()])
        self.head = CustomHead()
        self.temperature = nn.Parameter(torch.tensor(1.25))


def tiny_torchvision_resnet():
    """torchvision ResNet-18 key layout (conv1, bn1, layer1..4 of two BasicBlocks, downsample, fc), tiny widths."""
    torch.manual_seed(18)

    class TinyResNet(nn.Module):
        def __init__(self, widths=(4, 8, 16, 24), blocks=(2, 2, 2, 2), num_classes=10):
            super().__init__()
            self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(widths[0])
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            inplanes = widths[0]
            for i, (w, n) in enumerate(zip(widths, blocks)):
                stride = 1 if i == 0 else 2
                layers = []
                for b in range(n):
                    down = None
                    if b == 0 and (stride != 1 or inplanes != w):
                        down = nn.Sequential(nn.Conv2d(inplanes, w, 1, stride, bias=False), nn.BatchNorm2d(w))
                    layers.append(BasicBlock(inplanes, w, stride if b == 0 else 1, down))
                    inplanes = w
                setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(inplanes, num_classes)

    m = TinyResNet()
    # Non-trivial batch-norm statistics, so a loader that ignores buffers is caught.
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.copy_(torch.randn_like(mod.running_mean) * 0.1)
                mod.running_var.copy_(torch.rand_like(mod.running_var) + 0.5)
                mod.weight.copy_(torch.rand_like(mod.weight) + 0.5)
                mod.bias.copy_(torch.randn_like(mod.bias) * 0.1)
                mod.num_batches_tracked.fill_(100)
    return m


@contextlib.contextmanager
def stable_legacy_keys():
    """Legacy torch.save names each storage `str(storage._cdata)`, a memory address, so two runs differ. While
    this is active, torch.serialization's `str` turns address-sized ints into address-looking keys numbered in
    first-seen order (same digit count, so torch's string sort keeps that order). Nothing else changes."""
    import builtins
    seen = {}

    class StrMeta(type):   # isinstance(x, str) keeps working inside torch.serialization
        def __instancecheck__(cls, obj):
            return isinstance(obj, builtins.str)

        def __subclasscheck__(cls, sub):
            return issubclass(sub, builtins.str)

        def __call__(cls, *args, **kwargs):
            if len(args) == 1 and not kwargs and type(args[0]) is int and args[0] > 1 << 32:
                if args[0] not in seen:
                    seen[args[0]] = 94000000000000 + 64 * len(seen)
                return builtins.str(seen[args[0]])
            return builtins.str(*args, **kwargs)

    class StableStr(metaclass=StrMeta):
        pass

    torch.serialization.str = StableStr
    try:
        yield
    finally:
        del torch.serialization.str


def save_torch(obj, path, legacy, protocol, to_buffer=False):
    kw = {"pickle_protocol": protocol}
    if legacy:
        kw["_use_new_zipfile_serialization"] = False
    with stable_legacy_keys():
        if to_buffer:  # the zip's top folder is then "archive" instead of the file's stem
            buf = io.BytesIO()
            torch.save(obj, buf, **kw)
            with open(path, "wb") as f:
                f.write(buf.getvalue())
        else:
            torch.save(obj, path, **kw)


def torch_bytes(obj, legacy):
    buf = io.BytesIO()
    with stable_legacy_keys():
        torch.save(obj, buf, _use_new_zipfile_serialization=not legacy)
    return buf.getvalue()


def torch_fixture(obj, name, legacy, protocol, notes=None, to_buffer=False, expected_from=None):
    path = out("torch", name)
    save_torch(obj, path, legacy, protocol, to_buffer)
    if expected_from is None:
        tensors, meta = flatten(obj)
    else:
        tensors, meta = expected_from
    call = "torch.save(obj, {}, pickle_protocol={}{})".format(
        "io.BytesIO()" if to_buffer else "path", protocol, ", _use_new_zipfile_serialization=False" if legacy else "")
    write_expected(path, "pytorch-legacy" if legacy else "pytorch-zip", [torch_record(n, t) for n, t in tensors],
                   meta, call, notes=notes)
    # Round-trip through real torch.load as a check of the fixture itself.
    back = torch.load(path, weights_only=False)
    if expected_from is None:
        bt, bm = flatten(back)
        assert [n for n, _ in bt] == [n for n, _ in tensors] and bm == meta
        for (n, a), (_, b) in zip(tensors, bt):
            assert tensor_le_bytes(a) == tensor_le_bytes(b), n
    return path


def zip_members(path):
    with zipfile.ZipFile(path) as z:
        return [(i.filename, z.read(i.filename)) for i in z.infolist()]


def write_zip(path, members, compress=None):
    """members: list of (name, bytes); compress: {name: zipfile.ZIP_*} for members that are not stored."""
    compress = compress or {}
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members:
            info = zipfile.ZipInfo(name, ZIP_EPOCH)
            info.compress_type = compress.get(name, zipfile.ZIP_STORED)
            z.writestr(info, data)


def storage_dtypes(pkl_bytes):
    """key -> torch dtype of each storage referenced by a zip checkpoint's data.pkl."""
    found = {}

    class Scan(pickle.Unpickler):
        def persistent_load(self, pid):
            _, storage_type, key, _, numel = pid
            dtype = storage_type.dtype if hasattr(storage_type, "dtype") else storage_type
            found[key] = dtype
            return torch.storage.TypedStorage(numel, dtype=dtype)

    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # TypedStorage is deprecated; torch.load still uses it too
        Scan(io.BytesIO(pkl_bytes)).load()
    return found


def make_big_endian(src, dst):
    """A copy of the zip checkpoint `src` with byteorder 'big' and every storage record byte-swapped."""
    members = zip_members(src)
    pkl = next(d for n, d in members if n.endswith("/data.pkl"))
    dtypes = storage_dtypes(pkl)
    new = []
    for name, data in members:
        if name.endswith("/byteorder"):
            assert data == b"little"
            data = b"big"
        elif "/data/" in name and not name.endswith("/serialization_id"):
            key = name.rsplit("/data/", 1)[1]
            size = torch.tensor([], dtype=dtypes[key]).element_size()
            if size > 1:
                data = np.frombuffer(data, dtype=f"<u{size}").byteswap().tobytes()
        new.append((name, data))
    write_zip(dst, new)


def check_same_as(path, reference, map_location=None):
    """torch.load gives the same names, metadata and values for `path` as for `reference`."""
    a, am = flatten(torch.load(path, weights_only=False, map_location=map_location))   # our own, trusted files
    b, bm = flatten(torch.load(reference, weights_only=False))
    assert [n for n, _ in a] == [n for n, _ in b] and am == bm, path
    for (n, x), (_, y) in zip(a, b):
        assert x.dtype == y.dtype and x.shape == y.shape and tensor_le_bytes(x) == tensor_le_bytes(y), (path, n)


def copy_expected(src, dst, source):
    with open(src + ".expected.json") as f:
        doc = json.load(f, object_pairs_hook=collections.OrderedDict)
    doc["source"] = source
    doc.pop("notes", None)
    dump_expected(dst + ".expected.json", doc)


def make_torch_fixtures():
    made = []
    d = dtypes_and_views_checkpoint()
    for p in (2, 4, 5):
        made.append(torch_fixture(d, f"dtypes_views_zip_p{p}.pth", legacy=False, protocol=p))
        made.append(torch_fixture(d, f"dtypes_views_legacy_p{p}.pth", legacy=True, protocol=p))

    ck = training_checkpoint()
    made.append(torch_fixture(ck, "training_zip.pth", legacy=False, protocol=2, to_buffer=True,
                              notes="zip top folder is 'archive' (saved to a buffer)"))
    made.append(torch_fixture(ck, "training_zip_p5.pt", legacy=False, protocol=5))
    made.append(torch_fixture(ck, "training_legacy.pth", legacy=True, protocol=2))

    # Whole pickled modules: the expected names are model.state_dict()'s, and there is no metadata.
    torch.manual_seed(3)
    seq = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Linear(4, 2))
    with torch.no_grad():
        seq[1].running_mean.uniform_(-1, 1)
        seq[1].num_batches_tracked.fill_(5)
    seq_expected = (list(seq.state_dict().items()), {})
    note = "a whole nn.Module pickled with torch.save(model); names are model.state_dict()'s, no metadata"
    made.append(torch_fixture(seq, "module_sequential_zip.pth", False, 2, note, expected_from=seq_expected))
    made.append(torch_fixture(seq, "module_sequential_legacy.pth", True, 2,
                              note + "; legacy files also carry ('module', class, source_file, source) persistent ids",
                              expected_from=seq_expected))
    torch.manual_seed(4)
    custom = CustomModel()
    made.append(torch_fixture(custom, "module_custom_zip.pth", False, 2,
                              "classes __main__.CustomModel / __main__.CustomHead exist only in the writing script; "
                              "names are model.state_dict()'s, no metadata (plain attributes are not state)",
                              expected_from=(list(custom.state_dict().items()), {})))

    resnet = tiny_torchvision_resnet()
    sd = resnet.state_dict()
    assert hasattr(sd, "_metadata")
    made.append(torch_fixture(sd, "demo_resnet_legacy.pth", legacy=True, protocol=2,
                              notes="torchvision ResNet-18 key layout (BasicBlock [2,2,2,2]) with widths (4,8,16,24), "
                                    "10 classes; used by the README demo"))

    # A list at the root, an int leaf, a dict inside the list.
    root_list = [torch.arange(3, dtype=torch.int16), {"a": torch.full((2,), -1.5)}, 5, "five"]
    made.append(torch_fixture(root_list, "list_root_zip.pth", legacy=False, protocol=2))

    # Checkpoints saved from a GPU: location 'cuda:0' in every storage's persistent id (torch.load needs
    # map_location; our reader never looks at devices).
    def cuda_variant(src_name, dst_name, legacy):
        src, dst = out("torch", src_name), out("torch", dst_name)
        cpu, cuda = b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0"
        if legacy:
            data = open(src, "rb").read()
            assert data.count(cpu) == 1
            open(dst, "wb").write(data.replace(cpu, cuda))
        else:
            members = []
            for name, data in zip_members(src):
                if name.endswith("/data.pkl"):
                    assert data.count(cpu) == 1
                    data = data.replace(cpu, cuda)
                members.append((name.replace(src_name[:-4] + "/", dst_name[:-4] + "/"), data))
            write_zip(dst, members)
        check_same_as(dst, src, map_location="cpu")
        copy_expected(src, dst, f"{src_name} with the storage location 'cpu' replaced by 'cuda:0' in the pickle "
                                f"(a checkpoint saved from a GPU; torch.load(map_location='cpu') gives the same values)")
        made.append(dst)

    cuda_variant("dtypes_views_zip_p2.pth", "cuda_location_zip.pth", legacy=False)
    cuda_variant("training_legacy.pth", "cuda_location_legacy.pth", legacy=True)

    # A zip without the byteorder record (files from torch < 1.10 lack it; little-endian is implied).
    src, dst = out("torch", "training_zip.pth"), out("torch", "no_byteorder_zip.pth")
    write_zip(dst, [(n, d) for n, d in zip_members(src) if not n.endswith("/byteorder")])
    check_same_as(dst, src)
    copy_expected(src, dst, "training_zip.pth without its byteorder record (as written by torch < 1.10)")
    made.append(dst)

    # A zip repacked with deflate (every member compressed), as an archiver would leave it.
    src, dst = out("torch", "dtypes_views_zip_p4.pth"), out("torch", "repacked_deflate_zip.pth")
    members = zip_members(src)
    write_zip(dst, members, {n: zipfile.ZIP_DEFLATED for n, _ in members})
    check_same_as(dst, src)
    copy_expected(src, dst, "dtypes_views_zip_p4.pth repacked with every member deflated")
    made.append(dst)

    # Big-endian: the little-endian zip with byteorder 'big' and swapped storage records; same logical values.
    src = out("torch", "dtypes_views_zip_p2.pth")
    dst = out("torch", "dtypes_views_bigendian_zip.pth")
    make_big_endian(src, dst)
    check_same_as(dst, src)
    copy_expected(src, dst, "dtypes_views_zip_p2.pth with the byteorder record set to 'big' and every storage "
                            "record byte-swapped per element (torch.load reads it back to the same values)")
    made.append(dst)
    return made


# ----------------------------------------------------------------------------------------------------------------
# HDF5
# ----------------------------------------------------------------------------------------------------------------

def h5_attributes(path):
    """Attributes as metadata, by the readers' rule: `<path>.<attr>` (`<attr>` at the root), '/' -> '.', byte
    strings decoded as UTF-8, arrays flattened to one entry per element (`<path>.<attr>.<i>`)."""
    meta = {}

    def add(name, v):
        if isinstance(v, np.ndarray) and v.ndim > 0:
            for i, x in enumerate(v.reshape(-1)):
                add(f"{name}.{i}", x)
        elif isinstance(v, (bytes, np.bytes_)):
            meta[name] = bytes(v).decode("utf-8")
        elif isinstance(v, str):
            meta[name] = v
        elif isinstance(v, (np.generic, np.ndarray)):
            meta[name] = check_meta_value(np.asarray(v).item())
        else:
            raise TypeError(f"attribute {name} = {v!r}")

    with h5py.File(path, "r") as f:
        for k, v in f.attrs.items():
            add(k, v)

        def visit(name, obj):
            for k, v in obj.attrs.items():
                add(f"{name.replace('/', '.')}.{k}", v)

        f.visititems(visit)
    return meta


def h5_expected(path):
    """Dataset records in h5py iteration order and attribute metadata, by the plain HDF5 naming rule."""
    tensors = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: tensors.append(numpy_record(name.replace("/", "."), obj[()]))
                     if isinstance(obj, h5py.Dataset) else None)
    return tensors, h5_attributes(path)


def make_hdf5_fixtures():
    made = []
    rng = np.random.default_rng(5)
    path = out("hdf5", "nested_groups.h5")
    with h5py.File(path, "w", track_order=False) as f:
        f.attrs["epoch"] = np.int64(3)
        f.attrs["lr"] = np.float64(0.01)
        f.attrs["name"] = "demo-net"                       # variable-length UTF-8 string
        f.attrs["fixed"] = np.bytes_(b"fixed-bytes")       # fixed-length ASCII string
        conv = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
        d = f.create_dataset("layer1/0/conv1/weight", data=conv, chunks=(2, 3, 3, 3), compression="gzip",
                             compression_opts=6)
        d.attrs["layout"] = "OIHW"
        f.create_dataset("layer1/0/conv2/weight", data=rng.standard_normal((4, 4, 1, 1)).astype(np.float32),
                         chunks=(1, 4, 1, 1), compression="gzip", shuffle=True, fletcher32=True)
        f["layer1"].attrs["kind"] = "block"
        f["layer1"].attrs["blocks"] = np.int32(1)
        f.create_dataset("layer1/0/bn1/running_mean", data=rng.standard_normal(4))          # float64
        f.create_dataset("layer1/0/bn1/num_batches_tracked", data=np.int64(42))             # scalar dataset
        f.create_dataset("half/values", data=np.array([[0.0, -2.5, 65504.0], [6e-8, np.inf, 0.333]], np.float16),
                         chunks=(1, 3), compression="gzip")
        f.create_dataset("ints/i8", data=np.array([-128, 127, 0], np.int8))
        f.create_dataset("ints/i16", data=np.array([-32768, 32767], np.int16))
        f.create_dataset("ints/i32", data=np.arange(-3, 3, dtype=np.int32).reshape(2, 3))
        f.create_dataset("ints/i64", data=np.array([-(2 ** 63), 2 ** 63 - 1], np.int64))
        f.create_dataset("ints/u8", data=np.array([[0, 255], [1, 128]], np.uint8))
        f.create_dataset("mask", data=np.array([True, False, True, True]))                  # HDF5 enum (h5py bool)
        f.create_dataset("big_endian", data=np.arange(6, dtype=">f4").reshape(3, 2) - 1.5)
        f.create_dataset("empty", data=np.zeros((0, 3), np.float32))
        f.create_dataset("fc/weight", data=rng.standard_normal((2, 4)).astype(np.float32), chunks=True,
                         compression="gzip", compression_opts=9)
    tensors, meta = h5_expected(path)
    write_expected(path, "hdf5", tensors, meta, "h5py: nested groups, chunked+gzip (+shuffle, fletcher32), float16, "
                   "float64, ints, uint8, bool (h5py enum), big-endian float, scalar and empty datasets, attributes")
    made.append(path)

    # Creation order tracked (h5py track_order=True): iteration follows creation order, not names.
    path = out("hdf5", "track_order.h5")
    with h5py.File(path, "w", track_order=True) as f:
        f.create_dataset("zeta", data=np.arange(3, dtype=np.float32))
        f.create_dataset("alpha", data=np.arange(3, dtype=np.float32) + 10)
        f.create_group("mid", track_order=True)
        f.create_dataset("mid/b", data=np.arange(2, dtype=np.int32))
        f.create_dataset("mid/a", data=np.arange(2, dtype=np.int32) - 5)
        f.create_dataset("plain/b", data=np.ones(1, np.float64))      # implicit group: name order inside
        f.create_dataset("plain/a", data=np.zeros(1, np.float64))
        f.create_dataset("beta", data=np.array([True, False]))
        f.attrs["written_by"] = "track_order"
    with h5py.File(path, "r") as f:
        order = []

        def walk(g, prefix):
            for k in g.keys():                      # h5py honours the tracked creation order here
                if isinstance(g[k], h5py.Group):
                    walk(g[k], prefix + k + ".")
                else:
                    order.append((prefix + k, g[k][()]))

        walk(f, "")
    assert [n for n, _ in order] == ["zeta", "alpha", "mid.b", "mid.a", "plain.a", "plain.b", "beta"], order
    write_expected(path, "hdf5", [numpy_record(n, a) for n, a in order], h5_attributes(path),
                   "h5py.File(track_order=True): datasets in creation order (a group created implicitly "
                   "does not track it: name order inside)",
                   notes="groups that track creation order are iterated in creation order (h5py does the same)")
    made.append(path)

    # Keras 2 legacy weights layout (model.save_weights('x.h5')), written by hand with the attribute types Keras
    # uses: byte strings, arrays of byte strings, an empty weight_names for a layer without weights.
    kernel_d = rng.standard_normal((4, 3)).astype(np.float32)
    bias_d = rng.standard_normal(3).astype(np.float32)
    kernel_c = rng.standard_normal((3, 3, 1, 2)).astype(np.float32)    # HWIO
    bias_c = rng.standard_normal(2).astype(np.float32)

    def keras_layers(g):
        g.attrs["layer_names"] = np.array([b"dense", b"flatten", b"conv2d"])
        g.attrs["backend"] = b"tensorflow"
        g.attrs["keras_version"] = b"2.15.0"
        dg = g.create_group("dense")
        dg.attrs["weight_names"] = np.array([b"dense/kernel:0", b"dense/bias:0"])
        dg.create_dataset("dense/kernel:0", data=kernel_d)
        dg.create_dataset("dense/bias:0", data=bias_d)
        fg = g.create_group("flatten")
        fg.attrs["weight_names"] = np.array([], dtype=np.float64)      # what Keras 2 writes for "no weights"
        cg = g.create_group("conv2d")
        cg.attrs["weight_names"] = np.array([b"conv2d/kernel:0", b"conv2d/bias:0"])
        cg.create_dataset("conv2d/kernel:0", data=kernel_c)
        cg.create_dataset("conv2d/bias:0", data=bias_c)

    keras_tensors = [numpy_record("dense.kernel", kernel_d), numpy_record("dense.bias", bias_d),
                     numpy_record("conv2d.kernel", kernel_c), numpy_record("conv2d.bias", bias_c)]
    keras_notes = ("Keras legacy layout: tensors are named <layer>.<weight> from layer_names / weight_names "
                   "(the raw dataset paths would be dense.dense.kernel:0 etc.), in layer_names then weight_names "
                   "order; attributes are metadata as in any HDF5 file (arrays flattened by index) plus "
                   "keras_layout naming the recognised layout")
    path = out("hdf5", "keras_legacy.h5")
    with h5py.File(path, "w") as f:
        keras_layers(f)
    write_expected(path, "hdf5", keras_tensors, {**h5_attributes(path), "keras_layout": "legacy-h5"},
                   "h5py by hand: Keras 2 save_weights layout", notes=keras_notes,
                   extra={"raw_dataset_paths": ["dense.dense.kernel:0", "dense.dense.bias:0",
                                                "conv2d.conv2d.kernel:0", "conv2d.conv2d.bias:0"]})
    made.append(path)

    path = out("hdf5", "keras_legacy_full_model.h5")
    config = json.dumps({"class_name": "Sequential", "config": {"name": "sequential", "layers": []}})
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.15.0"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = config.encode()
        keras_layers(f.create_group("model_weights"))
    write_expected(path, "hdf5", keras_tensors, {**h5_attributes(path), "keras_layout": "legacy-h5"},
                   "h5py by hand: Keras 2 model.save('x.h5') layout (weights under model_weights)",
                   notes=keras_notes + "; the model_weights group is not part of the tensor names",
                   extra={"raw_dataset_paths": ["model_weights.dense.dense.kernel:0", "..."]})
    made.append(path)

    # Keras 3 .weights.h5: layers/<name>/vars/<i>; a top-level empty vars group; a layer without weights.
    path = out("hdf5", "keras3.weights.h5")
    k3 = {
        "conv2d": [kernel_c, bias_c],
        "dense": [kernel_d, bias_d],
    }
    with h5py.File(path, "w") as f:
        f.create_group("vars")
        for lname in ["dense", "flatten", "conv2d"]:
            vg = f.create_group(f"layers/{lname}/vars")
            for i, a in enumerate(k3.get(lname, [])):
                vg.create_dataset(str(i), data=a)
    tensors = [numpy_record(f"{ln}.{i}", a) for ln in sorted(k3) for i, a in enumerate(k3[ln])]
    write_expected(path, "hdf5", tensors, {"keras_layout": "keras3-weights-h5"},
                   "h5py by hand: Keras 3 model.save_weights('x.weights.h5') layout",
                   notes="Keras 3 layout: layers/<layer>/vars/<i> is named <layer>.<i> (raw paths would be "
                         "layers.dense.vars.0); layers in group-name order, vars in index order",
                   extra={"raw_dataset_paths": ["layers.conv2d.vars.0", "layers.conv2d.vars.1",
                                                "layers.dense.vars.0", "layers.dense.vars.1"]})
    made.append(path)
    return made


# ----------------------------------------------------------------------------------------------------------------
# numpy
# ----------------------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def pinned_clock(t=315532800.0 + 86400 * 365 * 30):
    """np.savez stamps zip members with time.localtime(time.time()); pin it so the output is reproducible."""
    real_time, real_localtime = time.time, time.localtime
    time.time = lambda: t
    time.localtime = lambda secs=None: time.gmtime(t if secs is None else secs)
    try:
        yield
    finally:
        time.time, time.localtime = real_time, real_localtime


def make_numpy_fixtures():
    made = []
    rng = np.random.default_rng(6)
    arrays = {
        "float32_c.npy": rng.standard_normal((2, 3)).astype(np.float32),
        "float64_fortran.npy": np.asfortranarray(rng.standard_normal((3, 4))),
        "int32_bigendian.npy": (np.arange(6, dtype=">i4").reshape(2, 3) - 3) * 100000,
        "bool.npy": np.array([[True, False], [False, True], [True, True]]),
        "scalar_0d.npy": np.array(2.75, dtype=np.float64),
        "empty.npy": np.zeros((0, 4), np.float32),
        "float16.npy": np.array([1.0, -0.0, 65504.0, 6e-8], np.float16),
        "uint8.npy": np.arange(250, 256, dtype=np.uint8).reshape(2, 3),
    }
    assert arrays["float64_fortran.npy"].flags.f_contiguous and not arrays["float64_fortran.npy"].flags.c_contiguous
    for fname, a in arrays.items():
        path = out("numpy", fname)
        np.save(path, a)
        with open(path, "rb") as f:
            header = f.read(128)
        write_expected(path, "npy", [numpy_record("array", a)], {}, f"np.save of dtype {a.dtype.str}, "
                       f"{'fortran' if a.flags.f_contiguous and a.ndim > 1 else 'C'} order",
                       notes="a single .npy holds one tensor named 'array' (names come from content, not file names)")
        assert (b"'fortran_order': True" in header) == (fname == "float64_fortran.npy")
        made.append(path)

    # A JAX/flax ViT-like npz (the layout of ViT-B_16.npz), tiny.
    h, heads, hd, mlp = 8, 2, 4, 16
    vit = collections.OrderedDict()
    vit["Transformer/encoder_norm/bias"] = rng.standard_normal(h).astype(np.float32)
    vit["Transformer/encoder_norm/scale"] = rng.standard_normal(h).astype(np.float32)
    vit["Transformer/encoderblock_0/LayerNorm_0/bias"] = rng.standard_normal(h).astype(np.float32)
    vit["Transformer/encoderblock_0/LayerNorm_0/scale"] = rng.standard_normal(h).astype(np.float32)
    vit["Transformer/encoderblock_0/MlpBlock_3/Dense_0/kernel"] = rng.standard_normal((h, mlp)).astype(np.float32)
    vit["Transformer/encoderblock_0/MlpBlock_3/Dense_0/bias"] = rng.standard_normal(mlp).astype(np.float32)
    vit["Transformer/encoderblock_0/MultiHeadDotProductAttention_1/query/kernel"] = \
        rng.standard_normal((h, heads, hd)).astype(np.float32)
    vit["Transformer/encoderblock_0/MultiHeadDotProductAttention_1/out/kernel"] = \
        rng.standard_normal((heads, hd, h)).astype(np.float32)
    vit["Transformer/posembed_input/pos_embedding"] = rng.standard_normal((1, 5, h)).astype(np.float32)
    vit["cls"] = np.zeros((1, 1, h), np.float32)
    vit["embedding/kernel"] = rng.standard_normal((4, 4, 3, h)).astype(np.float32)       # HWIO
    vit["embedding/bias"] = rng.standard_normal(h).astype(np.float32)
    vit["head/kernel"] = rng.standard_normal((h, 10)).astype(np.float32)
    vit["head/bias"] = np.zeros(10, np.float32)
    mixed = collections.OrderedDict([
        ("f64", rng.standard_normal((2, 2))),
        ("f16", np.array([0.5, -1.0], np.float16)),
        ("i64", np.array([-(2 ** 63), 5], np.int64)),
        ("i16_be", np.array([1, -2, 300], ">i2")),
        ("i8", np.array([-1, 2], np.int8)),
        ("u8", np.array([7], np.uint8)),
        ("mask", np.array([True, False])),
        ("fortran", np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3))),
        ("scalar", np.array(-4, np.int32)),
        ("empty", np.zeros((2, 0), np.float64)),
    ])
    for fname, arrs, saver in [("vit_jax.npz", vit, np.savez), ("vit_jax_compressed.npz", vit, np.savez_compressed),
                               ("mixed.npz", mixed, np.savez)]:
        path = out("numpy", fname)
        with pinned_clock():
            saver(path, **arrs)
        with np.load(path) as z:
            assert list(z.keys()) == list(arrs.keys())
        write_expected(path, "npz", [numpy_record(k.replace("/", "."), a) for k, a in arrs.items()], {},
                       f"np.{saver.__name__} (member names lose .npy, '/' -> '.')")
        made.append(path)
    return made


# ----------------------------------------------------------------------------------------------------------------
# safetensors
# ----------------------------------------------------------------------------------------------------------------

def safetensors_order(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return sorted(header, key=lambda k: header[k]["data_offsets"][0])


def sort_safetensors_metadata(path):
    """safetensors writes __metadata__ from a hash map (random order per run); sort it in place. The header keeps
    its length and every data offset, so the file stays what save_file wrote apart from that order."""
    with open(path, "r+b") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        raw = f.read(n)
        header = json.loads(raw, object_pairs_hook=collections.OrderedDict)
        header["__metadata__"] = collections.OrderedDict(sorted(header["__metadata__"].items()))
        new = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
        new += b" " * (n - len(new))
        assert len(new) == n and json.loads(new) == json.loads(raw)
        f.seek(8)
        f.write(new)


def make_safetensors_fixtures():
    made = []
    g = torch.Generator().manual_seed(9)
    tensors = {
        "model.embed.weight": torch.randn(4, 3, generator=g),
        "model.f64": torch.randn(2, 2, generator=g, dtype=torch.float64),
        "model.f16": torch.tensor([1.0, -0.0, 65504.0, float("-inf")], dtype=torch.float16),
        "model.bf16": (torch.randn(3, 2, generator=g) * 10).to(torch.bfloat16),
        "model.i64": torch.tensor([-(2 ** 63), 2 ** 63 - 1], dtype=torch.int64),
        "model.i32": torch.tensor([[1, -2], [3, -4]], dtype=torch.int32),
        "model.i16": torch.tensor([-300, 300], dtype=torch.int16),
        "model.i8": torch.tensor([-128, 127], dtype=torch.int8),
        "model.u8": torch.tensor([0, 200, 255], dtype=torch.uint8),
        "model.mask": torch.tensor([True, False, True]),
        "model.scalar": torch.tensor(0.25),
        "model.empty": torch.zeros(3, 0),
    }
    meta = {"format": "pt", "note": "made by make_fixtures.py", "epoch": "3"}
    path = out("safetensors", "all_dtypes.safetensors")
    safetensors.torch.save_file(tensors, path, metadata=meta)
    sort_safetensors_metadata(path)
    order = safetensors_order(path)
    write_expected(path, "safetensors", [torch_record(n, tensors[n]) for n in order], meta,
                   "safetensors.torch.save_file(tensors, path, metadata=...)",
                   notes="tensors in data-offset order; __metadata__ entries are metadata (string values)")
    made.append(path)

    # Written by hand: header keys in a different order than the data, which the spec allows.
    path = out("safetensors", "handmade_order.safetensors")
    z, a = np.arange(4, dtype="<f4"), np.array([[1, -1]], dtype="<i8")
    header = {"z_first_in_header": {"dtype": "F32", "shape": [4], "data_offsets": [16, 32]},
              "a_first_in_data": {"dtype": "I64", "shape": [1, 2], "data_offsets": [0, 16]}}
    hb = json.dumps(header).encode()
    hb += b" " * (-len(hb) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb + a.tobytes() + z.tobytes())
    back = safetensors.torch.load_file(path)
    assert back["z_first_in_header"].tolist() == [0, 1, 2, 3]
    write_expected(path, "safetensors", [numpy_record("a_first_in_data", a), numpy_record("z_first_in_header", z)],
                   {}, "hand-written header whose key order differs from the data order",
                   notes="tensors in data-offset order, not header order")
    made.append(path)

    path = out("safetensors", "no_metadata.safetensors")
    small = {"b": torch.arange(3, dtype=torch.float32), "a": torch.ones(2, 2, dtype=torch.int64)}
    safetensors.torch.save_file(small, path)
    write_expected(path, "safetensors", [torch_record(n, small[n]) for n in safetensors_order(path)], {},
                   "safetensors.torch.save_file without metadata")
    made.append(path)
    return made


# ----------------------------------------------------------------------------------------------------------------
# Malformed and hostile inputs
# ----------------------------------------------------------------------------------------------------------------

class FakeStorage:
    """Stands for a storage record in a hand-made data.pkl: pickled as torch's persistent id tuple."""

    def __init__(self, key, storage_type, numel):
        self.key, self.storage_type, self.numel = key, storage_type, numel


class FakeTensor:
    """Pickles exactly like a tensor (torch._utils._rebuild_tensor_v2), with any size/stride/offset we like."""

    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


def hand_pickle(obj, protocol=2):
    buf = io.BytesIO()

    class P(pickle.Pickler):
        def persistent_id(self, o):
            if isinstance(o, FakeStorage):
                return ("storage", o.storage_type, o.key, "cpu", o.numel)
            return None

    P(buf, protocol=protocol).dump(obj)
    return buf.getvalue()


def torch_zip_members(pkl, storages, archive="archive"):
    """The member list of a zip checkpoint with the given data.pkl and {key: bytes} storage records."""
    m = [(f"{archive}/data.pkl", pkl), (f"{archive}/.format_version", b"1"), (f"{archive}/.storage_alignment", b"64"),
         (f"{archive}/byteorder", b"little")]
    m += [(f"{archive}/data/{k}", v) for k, v in storages.items()]
    m += [(f"{archive}/version", b"3\n")]
    return m


def hand_zip_checkpoint(path, obj, storages, compress=None, archive="archive"):
    pkl = obj if isinstance(obj, bytes) else hand_pickle(obj)
    members = torch_zip_members(pkl, storages, archive)
    write_zip(path, members, {f"{archive}/{k}": v for k, v in (compress or {}).items()})


def legacy_bytes(object_pickle, keys_pickle, storages, protocol=2):
    """A legacy torch.save stream: magic, protocol, sys_info, object pickle, keys pickle, storage records."""
    from torch.serialization import MAGIC_NUMBER, PROTOCOL_VERSION
    sys_info = {"protocol_version": PROTOCOL_VERSION, "little_endian": True,
                "type_sizes": {"short": 2, "int": 4, "long": 4}}
    b = pickle.dumps(MAGIC_NUMBER, protocol=protocol) + pickle.dumps(PROTOCOL_VERSION, protocol=protocol)
    b += pickle.dumps(sys_info, protocol=protocol) + object_pickle + keys_pickle
    for count, data in storages:
        b += struct.pack("<q", count) + data
    return b


def make_bad_fixtures():
    bad = []
    rng = np.random.default_rng(666)

    def add(fname, cls, fragment, also=None, data=None):
        path = out("bad", fname)
        if data is not None:
            with open(path, "wb") as f:
                f.write(data)
        entry = {"file": fname, "class": cls, "fragment": fragment}
        if also:
            entry["also"] = also
        bad.append(entry)
        return path

    # --- empty and random
    add("empty.pth", "empty file", "file is empty", data=b"")
    noise = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    assert noise[0] not in (0x80, 0x50, 0x89, 0x93) and noise[8] != ord("{")
    add("random.bin", "random bytes", "unrecognised format", data=noise)

    # --- truncated files
    small = collections.OrderedDict([("w", torch.arange(64, dtype=torch.float32).reshape(8, 8)), ("b", torch.ones(8))])
    zbytes = torch_bytes(small, legacy=False)
    add("truncated_zip.pth", "truncated zip checkpoint (cut in half)", "not a readable zip archive",
        data=zbytes[:len(zbytes) // 2])
    lbytes = torch_bytes(small, legacy=True)
    add("truncated_legacy.pth", "truncated legacy checkpoint (cut in half)", "truncated pickle", data=lbytes[:len(lbytes) // 2])

    # --- hand-made zip checkpoints (layout checked against torch.load first)
    fs = FakeStorage("0", torch.FloatStorage, 12)
    twelve = np.arange(12, dtype="<f4").tobytes()
    ok = out("bad", "_sanity.pth")
    hand_zip_checkpoint(ok, {"w": FakeTensor(fs, 2, (2, 5), (5, 1))}, {"0": twelve})
    assert torch.load(ok, weights_only=True)["w"].tolist() == [[2, 3, 4, 5, 6], [7, 8, 9, 10, 11]]
    os.remove(ok)

    hand_zip_checkpoint(add("storage_overrun.pth", "size x stride beyond the storage", "exceeds storage",
                            also=["'w'"]),
                        {"w": FakeTensor(fs, 0, (10, 10), (10, 1))}, {"0": twelve})
    hand_zip_checkpoint(add("stride_overrun.pth", "a stride reaching past the storage", "exceeds storage",
                            also=["'w'"]),
                        {"w": FakeTensor(fs, 0, (3, 4), (100, 1))}, {"0": twelve})
    hand_zip_checkpoint(add("offset_overrun.pth", "storage offset past the storage", "exceeds storage",
                            also=["'w'"]),
                        {"w": FakeTensor(fs, 1000, (2,), (1,))}, {"0": twelve})
    hand_zip_checkpoint(add("negative_shape.pth", "negative dimension", "negative dimension", also=["'w'"]),
                        {"w": FakeTensor(fs, 0, (-1, 4), (4, 1))}, {"0": twelve})
    hand_zip_checkpoint(add("overflow_shape.pth", "2^62 x 2^62 elements", "overflow", also=["'w'"]),
                        {"w": FakeTensor(fs, 0, (2 ** 62, 2 ** 62), (2 ** 62, 1))}, {"0": twelve})
    hand_zip_checkpoint(add("storage_record_short.pth", "storage record shorter than its declared element count",
                            "record holds only", also=["archive/data/0"]),
                        {"w": FakeTensor(FakeStorage("0", torch.FloatStorage, 100), 0, (10, 10), (10, 1))},
                        {"0": twelve})
    # Missing storage record: a real torch.save zip with archive/data/0 removed.
    members = [(n, d) for n, d in zip_members_bytes(zbytes) if not n.endswith("/data/0")]
    write_zip(add("missing_storage.pth", "storage record deleted from the zip", "has no record",
                   also=["archive/data/0", "'w'"]), members)

    # --- legacy storage records
    one = collections.OrderedDict([("w", torch.arange(10, dtype=torch.float32))])
    lb = bytearray(torch_bytes(one, legacy=True))
    pos = len(lb) - 40 - 8
    assert struct.unpack_from("<q", lb, pos)[0] == 10
    struct.pack_into("<q", lb, pos, 1010)
    add("legacy_storage_larger_than_record.pth", "legacy storage declares 1010 elements, holds 10",
        "declares 1010 elements", data=bytes(lb))
    struct.pack_into("<q", lb, pos, 2 ** 62)
    add("legacy_storage_huge_count.pth", "legacy storage declares 2^62 elements",
        "declares 4611686018427387904 elements", data=bytes(lb))

    # --- pickle machine abuse
    add("bad_memo_legacy.pth", "BINGET 200 on an empty memo (legacy-looking stream)", "memo index 200",
        data=b"\x80\x02h\xc8.")
    hand_zip_checkpoint(add("bad_memo_zip.pth", "BINGET 200 on an empty memo (data.pkl)", "memo index 200"),
                        b"\x80\x02h\xc8.", {})
    hand_zip_checkpoint(add("stack_underflow_stop.pth", "a lone STOP on an empty stack", "stack underflow"), b"\x80\x02.", {})
    add("stack_underflow_tuple2.pth", "TUPLE2 on an empty stack (legacy-looking stream)", "stack underflow",
        data=b"\x80\x02\x86.")
    deep = b"\x80\x02" + b"]" * 200000 + b"a" * 199999 + b"."
    hand_zip_checkpoint(add("deep_nesting_lists.pth", "200 000 nested lists (EMPTY_LIST/APPEND), deflated data.pkl",
                            "nested deeper"), deep, {}, compress={"data.pkl": zipfile.ZIP_DEFLATED})
    deep_marks = b"\x80\x02" + b"(" * 200000 + b"t" * 200000 + b"."
    hand_zip_checkpoint(add("deep_nesting_marks.pth", "200 000 nested MARK/TUPLE, deflated data.pkl", "nested deeper"),
                        deep_marks, {}, compress={"data.pkl": zipfile.ZIP_DEFLATED})
    cyc = b"\x80\x02]q\x00h\x00a."   # L = []; L.append(L): infinitely deep for a naive flattener
    assert (lambda l: l[0] is l)(pickle.loads(cyc))
    hand_zip_checkpoint(add("self_referencing_list.pth", "a list that contains itself", "itself"), cyc, {})

    # --- zip bombs: storage records of zeros compressed ~1000:1 (deflate) and far more (bzip2)
    def bomb(fname, gib_numel, method, label, fragment="zip bomb"):
        path = add(fname, label, fragment, also=["archive/data/0"])
        pkl = hand_pickle({"w": FakeTensor(FakeStorage("0", torch.FloatStorage, gib_numel), 0, (gib_numel,), (1,))})
        with zipfile.ZipFile(path, "w") as z:
            for name, data in torch_zip_members(pkl, {}):
                info = zipfile.ZipInfo(name, ZIP_EPOCH)
                z.writestr(info, data)
            info = zipfile.ZipInfo("archive/data/0", ZIP_EPOCH)
            info.compress_type = method
            chunk = bytes(1 << 24)
            with z.open(info, "w", force_zip64=True) as w:
                for _ in range(gib_numel * 4 // len(chunk)):
                    w.write(chunk)
        return path

    bomb("zip_bomb_deflate.pth", 2 ** 27, zipfile.ZIP_DEFLATED,
         "deflated storage record of 512 MiB zeros (~1000:1), tensor of 2^27 float32")
    bomb("zip_bomb_bzip2.pth", 2 ** 29, zipfile.ZIP_BZIP2,
         "bzip2 storage record of 2 GiB zeros, tensor of 2^29 float32", "compression method 12 is not supported")

    # --- code execution payloads (the reader must never call them; nothing tensor-like comes out)
    system_payload = b"\x80\x02cos\nsystem\nq\x00X\n\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03."
    hand_zip_checkpoint(add("code_exec_os_system_zip.pth", "data.pkl calls os.system('echo pwned')", "os.system"),
                        system_payload, {})

    class Popen:
        def __reduce__(self):
            import subprocess
            return (subprocess.check_output, (["echo", "pwned"],))

    p4 = pickle.dumps({"model": Popen()}, protocol=4)
    assert b"\x93" in p4 and b"check_output" in p4    # STACK_GLOBAL
    hand_zip_checkpoint(add("code_exec_subprocess_p4_zip.pth",
                            "protocol-4 data.pkl calls subprocess.check_output via STACK_GLOBAL",
                            "subprocess.check_output"), p4, {})

    class System:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    legacy_payload = pickle.dumps(System(), protocol=2)
    assert b"posix\nsystem" in legacy_payload    # pickle names os.system by its real module
    add("code_exec_legacy.pth", "legacy stream whose object pickle calls posix.system (os.system)",
        "posix.system", data=legacy_bytes(legacy_payload, pickle.dumps([], protocol=2), []))
    add("code_exec_builtins_eval_legacy.pth", "legacy stream whose object pickle calls builtins.eval",
        "builtins.eval", data=legacy_bytes(b"\x80\x02cbuiltins\neval\nX\x0e\x00\x00\x00print('pwned')\x85R.",
                                           pickle.dumps([], protocol=2), []))

    # --- unsupported tensor kinds
    # (A tensor of an unsupported dtype or kind is no longer a malformed file: see make_realfile_fixtures.py.)

    # --- safetensors lies
    def st(header, data):
        h = json.dumps(header).encode()
        return struct.pack("<Q", len(h)) + h + data

    add("st_offsets_beyond_file.safetensors", "data_offsets beyond the end of the file", "run past the data area",
        also=["'w'"], data=st({"w": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}}, bytes(16)))
    add("st_header_2_62.safetensors", "header length 2^62", "header length 4611686018427387904",
        data=struct.pack("<Q", 2 ** 62) + b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}' + bytes(4))
    add("st_overlap.safetensors", "two tensors whose byte ranges overlap", "overlap",
        data=st({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                 "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}, bytes(24)))
    add("st_size_mismatch.safetensors", "F32 [4] stored in 8 bytes", "needs 16", also=["'w'"],
        data=st({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}, bytes(8)))
    add("st_bad_json.safetensors", "header is not valid JSON", "invalid json",
        data=struct.pack("<Q", 14) + b'{"w": [1, 2, ' + bytes(8))

    # --- corrupt HDF5
    sig = b"\x89HDF\r\n\x1a\n"
    add("hdf5_garbage.h5", "HDF5 signature followed by garbage", "cannot open hdf5 file",
        data=sig + rng.integers(0, 256, 2048, dtype=np.uint8).tobytes())
    tmp = out("bad", "_tmp.h5")
    with h5py.File(tmp, "w") as f:
        f.create_dataset("w", data=np.arange(4000, dtype=np.float32), chunks=(500,), compression="gzip")
    with open(tmp, "rb") as f:
        hb = f.read()
    os.remove(tmp)
    add("hdf5_truncated.h5", "h5py file cut in half", "truncated", data=hb[:len(hb) // 2])

    # --- corrupt numpy
    def npy(header, data=b""):
        h = header.encode("latin1")
        h += b" " * ((64 - (10 + len(h) + 1) % 64) % 64) + b"\n"
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + data

    add("npy_bad_header.npy", "npy header that is not a Python dict literal", "not a python dict literal",
        data=npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), ", bytes(24)))
    add("npy_truncated.npy", "npy header claims (100,) float32, file holds 40 bytes", "data is truncated",
        data=npy("{'descr': '<f4', 'fortran_order': False, 'shape': (100,), }", bytes(40)))
    add("npy_complex.npy", "complex256 (long double) array (unsupported dtype)", "complex",
        data=npy("{'descr': '<c32', 'fortran_order': False, 'shape': (2,), }", bytes(64)))

    with open(out("bad", "EXPECTED.json"), "w") as f:
        json.dump({"notes": "each file must fail to open (or to load a tensor) with one CheckpointError line that "
                            "names the file and contains `fragment` and each of `also` (case-insensitive)",
                   "cases": bad}, f, indent=1)
        f.write("\n")
    return [out("bad", e["file"]) for e in bad]


def zip_members_bytes(data):
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [(i.filename, z.read(i.filename)) for i in z.infolist()]


# ----------------------------------------------------------------------------------------------------------------

def main():
    versions = collections.OrderedDict([
        ("python", platform.python_version()),
        ("torch", torch.__version__),
        ("torchvision", torchvision.__version__),
        ("numpy", np.__version__),
        ("h5py", h5py.__version__),
        ("libhdf5", h5py.version.hdf5_version),
        ("safetensors", safetensors.__version__),
    ])
    for k, v in versions.items():
        print(f"{k} {v}")
        if k in MADE_WITH and v.split("+")[0] != MADE_WITH[k]:
            print(f"  warning: the committed fixtures were made with {k} {MADE_WITH[k]}", file=sys.stderr)

    torch.manual_seed(0)
    np.random.seed(0)
    for sub in ("torch", "hdf5", "numpy", "safetensors", "bad"):
        shutil.rmtree(os.path.join(ROOT, sub), ignore_errors=True)
    made = make_torch_fixtures() + make_hdf5_fixtures() + make_numpy_fixtures() + make_safetensors_fixtures()
    bad = make_bad_fixtures()

    with open(os.path.join(ROOT, "VERSIONS.txt"), "w") as f:
        f.write("Fixtures written by Tools/make_fixtures.py with:\n")
        for k, v in versions.items():
            f.write(f"{k} {v}\n")

    total = 0
    for dirpath, _, files in os.walk(ROOT):
        for fn in files:
            total += os.path.getsize(os.path.join(dirpath, fn))
    print(f"{len(made)} valid fixtures, {len(bad)} malformed inputs, {total / 1024:.0f} KiB in {ROOT}")


if __name__ == "__main__":
    main()
