#!/usr/bin/env python3
"""Writes the seed corpus of each fuzz mode from the test fixtures (Python 3 standard library only).

    python3 Tools/Fuzz/seeds.py [OUT_DIR]      # default: Tools/Fuzz/seeds (git-ignored)

OUT_DIR/<mode>/ gets one file per seed, in the encoding that CheckpointFuzz's FUZZ_MODE=<mode> expects
(see Sources/CheckpointFuzz/Inputs.swift). The fixtures stay the single source; nothing here is committed.
"""
import hashlib
import io
import os
import pickletools
import shutil
import struct
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(ROOT, "Tests", "CheckpointsTests", "Fixtures")
OUT = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(HERE, "seeds")
MODES = ["raw", "pickle", "legacy", "zip", "safetensors", "npy", "hdf5", "zipdir", "keras", "index", "dcp"]
# Larger files slow every execution that mutates them; the fixtures that matter are far smaller.
MAX_SEED = 256 << 10
# Valid but slow under ASan (400 000 nesting levels: 3-4 s per run in the debug fuzz build), so their mutants
# would turn into spurious timeouts. The normal suite covers them.
SKIP = {"bad_deep_nesting_lists.pth", "bad_deep_nesting_marks.pth"}


def fixture_files():
    for dirpath, _, names in sorted(os.walk(FIXTURES)):
        for name in sorted(names):
            if name.endswith(".json") or name.endswith(".txt"):
                continue
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                yield os.path.relpath(path, FIXTURES).replace(os.sep, "_"), f.read()


def put(mode, name, data):
    if len(data) > MAX_SEED:
        return
    d = os.path.join(OUT, mode)
    digest = hashlib.sha1(data).hexdigest()[:10]
    with open(os.path.join(d, f"{name}-{digest}"), "wb") as f:
        f.write(data)


def zip_members(data):
    try:
        return [(i.filename, z.read(i)) for z in [zipfile.ZipFile(io.BytesIO(data))] for i in z.infolist()]
    except Exception:
        return None


def pickle_end(data, start):
    """Offset just after the STOP of the pickle at `start`, or None."""
    f = io.BytesIO(data)
    f.seek(start)
    try:
        for op, _, _ in pickletools.genops(f):
            if op.name == "STOP":
                return f.tell()
    except Exception:
        return None
    return None


def npy_parts(data):
    """(header text, array data) of a .npy stream, or None."""
    if data[:6] != b"\x93NUMPY" or len(data) < 10:
        return None
    if data[6] == 1:
        n, start = struct.unpack_from("<H", data, 8)[0], 10
    elif len(data) >= 12:
        n, start = struct.unpack_from("<I", data, 8)[0], 12
    else:
        return None
    return data[start:start + n], data[start + n:]


def index_seeds():
    """index: the sharded fixtures' indexes (the harness's shard folder holds shards/st and shards/bin as they are and
    shards/legacy prefixed 'legacy-'), and a few hand-written ones naming the folder's hostile neighbours."""
    root = os.path.join(FIXTURES, "shards")
    for sub, prefix in [("st", ""), ("bin", ""), ("legacy", "legacy-")]:
        for name in sorted(os.listdir(os.path.join(root, sub))):
            if name.endswith(".index.json"):
                with open(os.path.join(root, sub, name), "rb") as f:
                    data = f.read()
                if prefix:
                    data = data.replace(b'"pytorch_model-', b'"legacy-pytorch_model-')
                put("index", sub + "_" + name, data)
    first = "model-00001-of-00004.safetensors"
    for shard in ["sub/" + first, "link-in.safetensors", "link-out.safetensors", "link-up.safetensors", "fifo.safetensors",
                  "dir.safetensors", "zero.safetensors", "./" + first, "sub/../" + first, "/etc/hostname"]:
        data = ('{"metadata": {"total_size": 64}, "weight_map": {"embed.weight": "%s"}}' % shard).encode()
        put("index", "hostile_" + shard.replace("/", "_"), data)


def dcp_seeds():
    """dcp: one selector byte (the fixture's position among the sorted dcp/ folders) and its .metadata."""
    root = os.path.join(FIXTURES, "dcp")
    names = sorted(n for n in os.listdir(root) if not n.startswith(".") and os.path.isfile(os.path.join(root, n, ".metadata")))
    for i, name in enumerate(names):
        with open(os.path.join(root, name, ".metadata"), "rb") as f:
            put("dcp", "dcp_" + name, bytes([i]) + f.read())


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    for m in MODES:
        os.makedirs(os.path.join(OUT, m))
    for name, data in fixture_files():
        if name in SKIP:
            continue
        put("raw", name, data)
        if data[:8] == b"\x89HDF\r\n\x1a\n" or b"\x89HDF\r\n\x1a\n" in data[512:4096:1] and name.endswith(".h5"):
            # hdf5: the harness forces the signature at byte 0 (a user-block file keeps its superblock further on).
            put("hdf5", name, data)
            if data[:8] == b"\x89HDF\r\n\x1a\n":
                # keras: the same file as the weights member of the harness's fixed archive.
                put("keras", name, data)
        if data[:2] == b"PK" and len(data) <= 262144:
            # zipdir: the archive as it is (the crafted ambiguous ones too), for the directory parser.
            put("zipdir", name, data)
        if name.startswith("crafted_pickle_"):
            # Work bombs by design (~1 M budgeted dict inserts): bounded, but over libFuzzer's 10 s under ASan on a
            # shared machine, so they would stall the structured modes; zipdir and raw still get them.
            continue
        members = zip_members(data)
        for n, d in members or []:
            if n == "model.weights.h5":
                put("keras", name, d)
        if members is not None:
            # zip: every member, names and data truncated to what the encoding holds.
            enc = b"".join(bytes([len(n.encode()[:255])]) + n.encode()[:255] + struct.pack("<H", len(d[:0xFFFF])) + d[:0xFFFF]
                           for n, d in members)
            put("zip", name, enc)
            for n, d in members:
                if n.endswith("data.pkl"):
                    put("pickle", name, d)
                if n.endswith(".npy") and npy_parts(d):
                    h, body = npy_parts(d)
                    put("npy", name + "_" + n.replace("/", "_"), h + b"\0" + body)
            continue
        if data[:1] == b"\x80" or data[:1] == b"L":
            # legacy: drop the magic, protocol and sys_info pickles (the harness prepends its own).
            pos = 0
            for _ in range(3):
                pos = pickle_end(data, pos) if pos is not None else None
            if pos is not None:
                put("legacy", name, data[pos:])
                # The object pickle alone also feeds the pickle mode (other opcodes than torch's zip writer uses;
                # its legacy persistent ids are refused there, after the machine has run).
                end = pickle_end(data, pos)
                if end is not None:
                    put("pickle", name, data[pos:end])
            elif len(data) < 64:
                put("pickle", name, data)
            continue
        parts = npy_parts(data)
        if parts:
            put("npy", name, parts[0] + b"\0" + parts[1])
            continue
        if len(data) >= 8:
            n = struct.unpack_from("<Q", data, 0)[0]
            if n <= len(data) - 8 and data[8:9] == b"{":
                put("safetensors", name, data[8:8 + n] + b"\0" + data[8 + n:])
    index_seeds()
    dcp_seeds()
    for m in MODES:
        print(f"{m}: {len(os.listdir(os.path.join(OUT, m)))} seeds")


if __name__ == "__main__":
    main()
