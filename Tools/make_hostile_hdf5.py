#!/usr/bin/env python3
"""Writes the hostile HDF5 and polyglot inputs of Tests/CheckpointsTests/Fixtures/hostile/ (issue 12, classes 1, 3, 5).

Run:   /work/venv/bin/python Tools/make_hostile_hdf5.py

Made with Python 3.11.7, h5py 3.16.0 (bundling libhdf5 2.0.0), numpy 2.4.6, torch 2.15.0, safetensors 0.8.0; the
versions actually used are written to hostile/VERSIONS.txt. Every file is a few KB. Fixed data and no timestamps
where h5py lets us drop them, but two kinds of file differ from run to run: the legacy .pth polyglots (torch names
storages by memory address, which moves the padding) and the virtual datasets (h5py keeps their times); the table is
rewritten to match, so a re-run changes a few files and rows consistently.

hostile/HOSTILE.json lists one row per file:
    {"file": ..., "class": ..., "error": "fragment"}            opening the file and loading every tensor must fail
                                                                 with one line naming the file and holding the
                                                                 fragment (and each of "also", case-insensitively)
    {"file": ..., "class": ..., "format": "...", "tensors": {name: sha256 of the tensor's bytes}}
                                                                 the file must read as that format with exactly
                                                                 those tensors (the safe result)
    "hdf5_error": "fragment"   (polyglots) HDF5Reader.read on the file itself must refuse it with that fragment
    "needs_fifo": path         the test creates this FIFO first (external storage pointing at it must not open it)
"""

import hashlib
import io
import json
import os
import struct
import sys
import zipfile
import zlib

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "Tests", "CheckpointsTests", "Fixtures", "hostile")
FIFO = "/tmp/weights-hostile-fifo"

rows = []


def out(name):
    return os.path.join(OUT, name)


def sha(b):
    return hashlib.sha256(b).hexdigest()


def h5(name, build, userblock=0, **kw):
    # track_times off: byte-identical on re-runs.
    with h5py.File(out(name), "w", userblock_size=userblock, **kw) as f:
        build(f)


def refuse(name, cls, fragment, also=(), **extra):
    rows.append(dict(file=name, **{"class": cls}, error=fragment, also=list(also), **extra))


def safe(name, cls, fmt, tensors, **extra):
    rows.append(dict(file=name, **{"class": cls}, format=fmt, tensors=tensors, **extra))


def ds(f, name, data, **kw):
    return f.create_dataset(name, data=data, track_times=False, **kw)


# ---- class 1: data outside the input file --------------------------------------------------------------------

def external(target, nbytes):
    def build(f):
        ds(f, "ok", np.arange(4, dtype="<f4"))
        f.create_dataset("w", shape=(nbytes,), dtype="u1", external=[(target, 0, nbytes)], track_times=False)
    return build


h5("ext_storage_passwd.h5", external("/etc/passwd", 16))
refuse("ext_storage_passwd.h5", "external storage", "external storage", ["/etc/passwd", "'/w'"])
h5("ext_storage_fifo.h5", external(FIFO, 64))
refuse("ext_storage_fifo.h5", "external storage (FIFO)", "external storage", [FIFO], needs_fifo=FIFO)
h5("ext_storage_devzero.h5", external("/dev/zero", 1 << 24))
refuse("ext_storage_devzero.h5", "external storage (/dev/zero, 16 MiB)", "external storage", ["/dev/zero"])
h5("ext_storage_relative.h5", external("vds_source.h5", 64))
refuse("ext_storage_relative.h5", "external storage (relative name)", "external storage", ["vds_source.h5"])


def source(f):
    ds(f, "data", np.arange(16, dtype="<f4"))


h5("vds_source.h5", source)
safe("vds_source.h5", "plain file (the VDS target)", "hdf5", {"data": sha(np.arange(16, dtype="<f4").tobytes())})


def vds(fname, dname):
    def build(f):
        layout = h5py.VirtualLayout(shape=(16,), dtype="<f4")
        layout[:] = h5py.VirtualSource(fname, dname, shape=(16,))
        f.create_virtual_dataset("v", layout, fillvalue=0)
    return build


h5("vds.h5", vds("vds_source.h5", "data"), libver=("v110", "v110"))
refuse("vds.h5", "virtual dataset", "virtual dataset", ["vds_source.h5", "'/v'"])
# A VDS whose source is itself ('.' means the same file in HDF5's VDS mapping).
h5("vds_self.h5", vds(".", "v"), libver=("v110", "v110"))
refuse("vds_self.h5", "self-referencing virtual dataset", "virtual dataset", ["'/v'"])


def extlink(f):
    ds(f, "ok", np.arange(4, dtype="<f4"))
    f["linked"] = h5py.ExternalLink("vds_source.h5", "/data")


h5("ext_link.h5", extlink)
refuse("ext_link.h5", "external link", "external link", ["vds_source.h5", "'/linked'"])


def extlink_abs(f):
    g = f.create_group("g")
    g["passwd"] = h5py.ExternalLink("/etc/passwd", "/")


h5("ext_link_absolute.h5", extlink_abs)
refuse("ext_link_absolute.h5", "external link (absolute)", "external link", ["/etc/passwd"])


def softlink(f):
    ds(f, "data", np.arange(4, dtype="<f4"))
    f["alias"] = h5py.SoftLink("/data")


h5("soft_link.h5", softlink)
safe("soft_link.h5", "soft link inside the file (not followed, noted)", "hdf5",
     {"data": sha(np.arange(4, dtype="<f4").tobytes())})

# Multi-file drivers: the reader opens files with the POSIX driver only, so the family member and the split file's
# metadata half are refused by libhdf5 itself and never pull in their sibling files.
with h5py.File(out("family_%d.h5"), "w", driver="family", memb_size=4096) as f:
    ds(f, "w", np.arange(2000, dtype="<f4"))
for i in range(1, 10):
    if os.path.exists(out(f"family_{i}.h5")):
        os.remove(out(f"family_{i}.h5"))
refuse("family_0.h5", "family driver (first member only)", "cannot open HDF5 file")
with h5py.File(out("split"), "w", driver="split") as f:
    ds(f, "w", np.arange(20, dtype="<f4"))
refuse("split-m.h5", "split driver (metadata file; its raw data file beside it)", "multi driver")
refuse("split-r.h5", "split driver (raw data file)", "unrecognised format")

# ---- class 5: chunks that do not decode to a whole chunk ---------------------------------------------------------

CHUNK = np.arange(64, dtype="<f4")


def chunked(raw, mask, **kw):
    def build(f):
        d = f.create_dataset("w", shape=(64,), dtype="<f4", chunks=(64,), track_times=False, **kw)
        d.id.write_direct_chunk((0,), raw, filter_mask=mask)
    return build


h5("chunk_short_filter_skipped.h5", chunked(CHUNK.tobytes()[:64], 1, compression="gzip"))
refuse("chunk_short_filter_skipped.h5", "short chunk, gzip skipped", "chunk", ["'/w'", "64 bytes", "256"])
h5("chunk_short_gzip.h5", chunked(zlib.compress(CHUNK.tobytes()[:64]), 0, compression="gzip"))
refuse("chunk_short_gzip.h5", "gzip chunk inflating to a quarter chunk", "chunk", ["'/w'", "256"])
h5("chunk_long_gzip.h5", chunked(zlib.compress(CHUNK.tobytes() * 2), 0, compression="gzip"))
refuse("chunk_long_gzip.h5", "gzip chunk inflating to two chunks", "chunk", ["'/w'"])
h5("chunk_short_shuffle_gzip.h5", chunked(zlib.compress(CHUNK.tobytes()[:128]), 0, compression="gzip", shuffle=True))
refuse("chunk_short_shuffle_gzip.h5", "shuffle+gzip chunk inflating to half a chunk", "chunk", ["'/w'"])

# Legitimate: gzip skipped on an incompressible chunk (libhdf5 does this itself for random data), full size.
rng = np.random.default_rng(12)
noise = rng.integers(0, 256, size=256, dtype=np.uint8).view("<f4")
h5("chunk_skipped_full.h5", chunked(noise.tobytes(), 1, compression="gzip"))
safe("chunk_skipped_full.h5", "whole chunk stored raw with gzip skipped", "hdf5", {"w": sha(noise.tobytes())})


def gz(f):
    ds(f, "a", np.arange(1000, dtype="<f4").reshape(10, 100), chunks=(3, 40), compression="gzip", shuffle=True)
    ds(f, "b", np.arange(7, dtype="<i8"), chunks=(2,), compression="gzip", fletcher32=True)


def sparse(f):
    d = f.create_dataset("w", shape=(100,), dtype="<f4", chunks=(10,), compression="gzip", fillvalue=3,
                         track_times=False)
    d[20:30] = np.arange(10, dtype="<f4")


h5("chunked_sparse_ok.h5", sparse)
expected = np.full(100, 3, dtype="<f4")
expected[20:30] = np.arange(10)
safe("chunked_sparse_ok.h5", "gzip dataset with unallocated chunks (fill value 3)", "hdf5", {"w": sha(expected.tobytes())})

h5("chunked_gzip_ok.h5", gz)
safe("chunked_gzip_ok.h5", "gzip/shuffle/fletcher32 with partial edge chunks", "hdf5",
     {"a": sha(np.arange(1000, dtype="<f4").tobytes()), "b": sha(np.arange(7, dtype="<i8").tobytes())})

# ---- class 3: polyglots -------------------------------------------------------------------------------------------


def hdf5_bytes(userblock):
    bio = io.BytesIO()
    with h5py.File(bio, "w", userblock_size=userblock) as f:
        ds(f, "evil", np.full(8, 7, dtype="<f4"))
    b = bio.getvalue()
    assert b[userblock:userblock + 8] == b"\x89HDF\r\n\x1a\n", "no superblock at the user block's end"
    return b


def pad_to(prefix_len, ub):
    assert prefix_len <= ub, (prefix_len, ub)
    return b"\0" * (ub - prefix_len)


def safetensors_polyglot(ub):
    body = hdf5_bytes(ub)[ub:]
    # One uint8 tensor covering everything after the header: the HDF5 part lies inside its data.
    for hlen in range(64, ub, 8):
        header = json.dumps({"blob": {"dtype": "U8", "shape": [ub - 8 - hlen + len(body)],
                                      "data_offsets": [0, ub - 8 - hlen + len(body)]}}, separators=(",", ":")).encode()
        if len(header) <= hlen:
            header += b" " * (hlen - len(header))
            data = b"\0" * (ub - 8 - hlen) + body
            return struct.pack("<Q", hlen) + header + data, data
    raise SystemExit("safetensors header does not fit")


def npy_polyglot(ub):
    body = hdf5_bytes(ub)[ub:]
    n = 0
    for _ in range(4):
        arr = np.frombuffer(b"\0" * n + body, dtype="u1")
        buf = io.BytesIO()
        np.lib.format.write_array(buf, arr, version=(1, 0))
        head = len(buf.getvalue()) - len(arr)
        n = ub - head
    assert buf.getvalue()[ub:ub + 4] == b"\x89HDF"
    return buf.getvalue(), arr.tobytes()


def legacy_polyglot(ub):
    import torch
    body = hdf5_bytes(ub)[ub:]
    n = 0
    for _ in range(6):
        payload = b"\0" * n + body
        t = torch.frombuffer(bytearray(payload), dtype=torch.uint8)
        buf = io.BytesIO()
        torch.save({"blob": t}, buf, _use_new_zipfile_serialization=False)
        b = buf.getvalue()
        head = len(b) - len(payload)
        if head + n == ub:
            return b, payload
        n = ub - head
    raise SystemExit("legacy layout did not settle")


def npz_polyglot(ub):
    body = hdf5_bytes(ub)[ub:]
    n = 0
    for _ in range(6):
        member = npy_raw(b"\0" * n + body)
        zb = io.BytesIO()
        with zipfile.ZipFile(zb, "w", zipfile.ZIP_STORED) as z:
            zi = zipfile.ZipInfo("blob.npy", date_time=(1980, 1, 1, 0, 0, 0))
            z.writestr(zi, member)
        b = zb.getvalue()
        at = b.find(b"\x89HDF")
        if at == ub:
            return b, member
        n += ub - at
    raise SystemExit("zip layout did not settle")


def npy_raw(data):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.frombuffer(data, dtype="u1"), version=(1, 0))
    return buf.getvalue()


for ub in (512, 1024):
    b, data = safetensors_polyglot(ub)
    open(out(f"polyglot_safetensors_hdf5_at_{ub}.safetensors"), "wb").write(b)
    safe(f"polyglot_safetensors_hdf5_at_{ub}.safetensors", "safetensors + HDF5 superblock", "safetensors",
         {"blob": sha(data)}, hdf5_error="polyglot")
    b, data = npy_polyglot(ub)
    open(out(f"polyglot_npy_hdf5_at_{ub}.npy"), "wb").write(b)
    safe(f"polyglot_npy_hdf5_at_{ub}.npy", ".npy + HDF5 superblock", "npy", {"array": sha(data)}, hdf5_error="polyglot")
    b, data = legacy_polyglot(ub)
    open(out(f"polyglot_legacy_hdf5_at_{ub}.pth"), "wb").write(b)
    safe(f"polyglot_legacy_hdf5_at_{ub}.pth", "legacy torch.save + HDF5 superblock", "pytorch-legacy",
         {"blob": sha(data)}, hdf5_error="polyglot")
    b, member = npz_polyglot(ub)
    open(out(f"polyglot_npz_hdf5_at_{ub}.npz"), "wb").write(b)
    arr = np.load(io.BytesIO(member))
    safe(f"polyglot_npz_hdf5_at_{ub}.npz", ".npz (zip) + HDF5 superblock", "npz", {"blob": sha(arr.tobytes())},
         hdf5_error="polyglot")

# A header that claims safetensors but does not parse, in front of an HDF5 superblock: neither reading wins.
b, _ = safetensors_polyglot(512)
broken = b[:9] + b"!" + b[10:]
open(out("polyglot_broken_safetensors_hdf5_at_512.safetensors"), "wb").write(broken)
refuse("polyglot_broken_safetensors_hdf5_at_512.safetensors", "broken safetensors header + HDF5 superblock",
       "polyglot", ["safetensors", "512"])
# A user block of zeros (what h5py writes) is fine: read as HDF5.
open(out("userblock_zeros_at_512.h5"), "wb").write(hdf5_bytes(512))
safe("userblock_zeros_at_512.h5", "HDF5 with an empty 512-byte user block", "hdf5",
     {"evil": sha(np.full(8, 7, dtype="<f4").tobytes())})

rows.sort(key=lambda r: r["file"])
with open(out("HOSTILE.json"), "w") as f:
    json.dump({"cases": rows}, f, indent=1)
    f.write("\n")
import torch  # noqa: E402  (versions)
with open(out("VERSIONS.txt"), "w") as f:
    f.write(f"Written by Tools/make_hostile_hdf5.py with python {sys.version.split()[0]}, h5py {h5py.__version__} "
            f"(libhdf5 {h5py.version.hdf5_version}), numpy {np.__version__}, torch {torch.__version__}\n")
total = sum(os.path.getsize(out(r["file"])) for r in rows)
print(f"{len(rows)} cases, {total} bytes in {OUT}")
