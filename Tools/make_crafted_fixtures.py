#!/usr/bin/env python3
"""Writes Tests/CheckpointsTests/Fixtures/crafted/: small crafted inputs for the classes of issue 12 that the zip,
pickle, .npy, safetensors and mapping layers must refuse (ambiguous zips, CRC errors, pickle work bombs, header
ambiguities and amplification, shape overflow in transforms), and EXPECTED.json, the table the tests read:

  file      the input
  class     what it is
  fragment  text the single error line must contain (plus every string in `also`)
  args      extra `weights convert` arguments for the CLI run (e.g. --verify-crc)
  library   false when Checkpoint.open + load alone does not fail (the mapping does, through the CLI)

`safe` lists inputs that must convert with exit 0 (bounded work, not an error).

Standard library only (struct, zlib, json): every byte is written here, nothing is produced by torch or numpy, so
the files stay a few KB and each field that a case breaks is explicit. Run: python3 Tools/make_crafted_fixtures.py
(written with CPython 3.12; the output does not depend on the version).
"""
import json
import os
import struct
import zlib

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "CheckpointsTests", "Fixtures", "crafted")


# ------------------------------------------------------------------------------------------------ zip writer

def deflate(data):
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def zip_bytes(members, comment=b"", prepend=b"", zip64=None, eocd_comment_length=None, extra_tail=b"", gap=b""):
    """A zip archive. Each member is a dict: name (str or bytes), data; optional method (0/8), flags, and
    overrides that break one field: crc, local_name, local_method, local_crc, local_csize, local_usize, cd_extra,
    local_extra, descriptor (bytes written after the data), csize, local_offset (central directory's value),
    inner (bytes inserted inside the data region, for overlaps)."""
    out = bytearray()
    central = bytearray()
    for m in members:
        name = m["name"].encode() if isinstance(m["name"], str) else m["name"]
        raw = m["data"]
        method = m.get("method", 0)
        stored = deflate(raw) if method == 8 and "compressed" not in m else m.get("compressed", raw)
        crc = m.get("crc", zlib.crc32(raw))
        flags = m.get("flags", 0x0800 if any(b >= 0x80 for b in name) else 0)
        csize, usize = m.get("csize", len(stored)), len(raw)
        offset = len(out)
        desc = flags & 0x0008
        lname = m.get("local_name", name)
        lcrc = m.get("local_crc", 0 if desc else crc)
        lcs = m.get("local_csize", 0 if desc else len(stored))
        lus = m.get("local_usize", 0 if desc else usize)
        lextra = m.get("local_extra", b"")
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, m.get("local_method", method), 0, 0x21,
                           lcrc, lcs, lus, len(lname), len(lextra)) + lname + lextra
        out += stored
        if desc:
            out += m.get("descriptor", struct.pack("<IIII", 0x08074B50, crc, len(stored), usize))
        cextra = m.get("cd_extra", b"")
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, flags, method, 0, 0x21, crc, csize, usize,
                               len(name), len(cextra), 0, 0, 0, 0, m.get("local_offset", offset)) + name + cextra
    cd_offset = len(out)
    out += central + gap
    n = len(members)
    if zip64 is not None:
        record = len(out)
        counts = zip64.get("entries", n)
        out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, counts, counts, len(central), cd_offset)
        out += struct.pack("<IIQI", 0x07064B50, 0, record, 1)
    clen = len(comment) if eocd_comment_length is None else eocd_comment_length
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(central), cd_offset, clen) + comment
    return bytes(prepend) + bytes(out) + extra_tail


def eocd_record(entries, cd_size, cd_offset, comment_length=0):
    return struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, entries, entries, cd_size, cd_offset, comment_length)


# ------------------------------------------------------------------------------------------------ .npy writer

def npy(descr="<f4", shape=(2,), data=None, header=None):
    if header is None:
        dims = "(" + "".join(f"{d}, " for d in shape).rstrip(" ") + ")" if len(shape) != 1 else f"({shape[0]},)"
        header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, dims)
    h = header.encode("latin1")
    pad = 64 - (10 + len(h) + 1) % 64
    h += b" " * (pad % 64) + b"\n"
    if data is None:
        n = 1
        for d in shape:
            n *= d
        data = struct.pack("<%df" % n, *[float(i) for i in range(n)])
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + data


def npz(arrays, **kw):
    return zip_bytes([{"name": k + ".npy", "data": v} for k, v in arrays], **kw)


# ------------------------------------------------------------------------------------------------ pickle assembler

def s(text):
    b = text.encode() if isinstance(text, str) else text
    return b"X" + struct.pack("<I", len(b)) + b


def i(v):
    if 0 <= v < 256:
        return b"K" + bytes([v])
    if 0 <= v < 65536:
        return b"M" + struct.pack("<H", v)
    if -2**31 <= v < 2**31:
        return b"J" + struct.pack("<i", v)
    n = (v.bit_length() + 8) // 8
    return b"\x8a" + bytes([n]) + v.to_bytes(n, "little", signed=True)


def tup(*items):
    return b"(" + b"".join(items) + b"t"


GLOBAL_REBUILD = b"ctorch._utils\n_rebuild_tensor_v2\n"
ORDERED_DICT = b"ccollections\nOrderedDict\n"


def tensor(key, numel, offset, size, stride, storage=b"ctorch\nFloatStorage\n"):
    pid = tup(s("storage"), storage, s(key), s("cpu"), i(numel)) + b"Q"
    args = tup(pid, i(offset), tup(*map(i, size)), tup(*map(i, stride)), b"\x89", ORDERED_DICT + b")R")
    return GLOBAL_REBUILD + args + b"R"


def state_dict(entries):
    """{name: value-bytes} as one SETITEMS."""
    return b"\x80\x02}(" + b"".join(s(k) + v for k, v in entries) + b"u."


def torch_zip(pkl, storages, compress_pickle=False, **member_overrides):
    ms = [{"name": "archive/data.pkl", "data": pkl, "method": 8 if compress_pickle else 0},
          {"name": "archive/byteorder", "data": b"little"}]
    ms += [{"name": f"archive/data/{k}", "data": v} for k, v in storages.items()]
    ms += [{"name": "archive/version", "data": b"3\n"}]
    for m in ms:
        m.update(member_overrides.get(m["name"], {}))
    return zip_bytes(ms)


def floats(n):
    return struct.pack("<%df" % n, *[float(x) for x in range(n)])


# ------------------------------------------------------------------------------------------------ cases

cases = []
safe = []
files = {}


def add(name, data, cls, fragment, also=(), args=(), library=True):
    files[name] = data
    row = {"file": name, "class": cls, "fragment": fragment}
    if also:
        row["also"] = list(also)
    if args:
        row["args"] = list(args)
    if not library:
        row["library"] = False
    cases.append(row)


A = npy()
B = npy(shape=(3,))

# Class 2: one file, two readings.
real = npz([("a", A)])
cd_end = len(real) - 22
cd_offset = struct.unpack("<I", real[-6:-2])[0]
fake_cd_member = zip_bytes([{"name": "b.npy", "data": B}])
# A second, complete EOCD hidden in the comment (its own comment length makes it end at the file's end too).
second = eocd_record(1, cd_end - cd_offset, cd_offset, 0)
add("zip_two_eocd.npz", real[:-2] + struct.pack("<H", len(second)) + second,
    "second end-of-central-directory record hidden in the archive comment", "two end-of-central-directory records")
add("zip_eocd_comment_length.npz", npz([("a", A)], extra_tail=b"trailing!!"),
    "EOCD comment length disagrees with the bytes after it (trailing data)", "declares a 0-byte comment")
add("zip_local_name.npz", zip_bytes([{"name": "a.npy", "data": A, "local_name": b"b.npy"}]),
    "local header names a different member than the central directory", "local header names 'b.npy'", also=["a.npy"])
add("zip_local_size.npz", zip_bytes([{"name": "a.npy", "data": A, "local_usize": len(A) - 8}]),
    "local header size disagrees with the central directory", "local header says crc")
add("zip_local_method.npz", zip_bytes([{"name": "a.npy", "data": A, "local_method": 8}]),
    "local header compression method disagrees with the central directory", "local header says compression method 8")
upath = b"\x01" + struct.pack("<I", zlib.crc32(b"a.npy")) + b"b.npy"
add("zip_unicode_path.npz", zip_bytes([{"name": "a.npy", "data": A, "cd_extra": struct.pack("<HH", 0x7075, len(upath)) + upath}]),
    "unicode-path extra field (0x7075) names another member", "unicode-path extra field names 'b.npy'")
# Member b's local header and data lie inside member a's data.
inner_b = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0x21, zlib.crc32(B), len(B), len(B), 5, 0) + b"b.npy" + B
outer = A + inner_b
overlap = zip_bytes([{"name": "a.npy", "data": outer}, {"name": "b.npy", "data": B, "local_offset": 30 + 5 + len(A)}])
add("zip_overlap.npz", overlap, "two members share bytes (one member's data holds another's header and data)", "overlap")
add("zip_past_directory.npz", zip_bytes([{"name": "a.npy", "data": A, "method": 8, "csize": len(deflate(A)) + 40,
                                             "local_csize": len(deflate(A)) + 40}]),
    "member's declared data runs into the central directory", "reaches past the start of the central directory")
add("zip_descriptor.npz", zip_bytes([{"name": "a.npy", "data": A, "flags": 0x0008,
                                       "descriptor": struct.pack("<IIII", 0x08074B50, 0x12345678, len(A), len(A))}]),
    "data descriptor disagrees with the central directory", "data descriptor")
add("zip64_count.npz", npz([("a", A)], zip64={"entries": 2}),
    "zip64 end record's entry count disagrees with the 32-bit record", "zip64 record says entry count")
add("zip_duplicate_name.npz", zip_bytes([{"name": "a.npy", "data": A}, {"name": "a.npy", "data": B}]),
    "two members with the same name (readers keep the first or the last)", "two members have the same name")
add("zip_gap_before_eocd.npz", npz([("a", A)], gap=b"\0" * 46),
    "bytes between the central directory and its end record (room for a second directory)", "does not end at byte")
add("zip_name_not_ascii.npz", zip_bytes([{"name": "\u00e9.npy".encode("latin1"), "data": A, "flags": 0}]),
    "non-ASCII member name without the UTF-8 flag (CP437 vs UTF-8 readers disagree)", "not ASCII")
add("zip_name_nul.npz", zip_bytes([{"name": b"a.npy\x00b.npy", "data": A}]),
    "member name with a NUL byte (C readers cut it short)", "NUL byte")
add("zip_encrypted.npz", zip_bytes([{"name": "a.npy", "data": A, "flags": 0x0001}]), "encrypted member", "encrypted")

# Class 9: CRC-32.
bad_a = A[:-4] + b"\x00\x00\x80\x7f"
add("crc_stored.npz", zip_bytes([{"name": "a.npy", "data": bad_a, "crc": zlib.crc32(A)}]),
    "stored .npz member whose data does not match its CRC-32", "bad CRC-32", also=["a.npy"])
add("crc_deflated.npz", zip_bytes([{"name": "a.npy", "data": bad_a, "method": 8, "crc": zlib.crc32(A)}]),
    "deflated .npz member whose inflated data does not match its CRC-32", "bad CRC-32", also=["a.npy"])
good_pkl = state_dict([("w", tensor("0", 4, 0, (4,), (1,)))])
add("crc_pickle.pth", torch_zip(good_pkl, {"0": floats(4)}, **{"archive/data.pkl": {"crc": zlib.crc32(good_pkl) ^ 1}}),
    "torch zip whose data.pkl fails its CRC-32", "bad CRC-32", also=["archive/data.pkl"])
add("crc_storage.pth", torch_zip(good_pkl, {"0": floats(4)}, **{"archive/data/0": {"crc": 0}}),
    "torch zip whose float32 storage (zero-copy path) fails its CRC-32; convert checks it with --verify-crc",
    "bad CRC-32", also=["archive/data/0"], args=["--verify-crc"])
add("deflate_short.npz", zip_bytes([{"name": "a.npy", "data": A, "method": 8, "compressed": deflate(A[:-8])}]),
    "deflate stream that holds fewer bytes than the member declares", "deflate stream")

# Class 6: work the pickle machine is made to do (copies, BUILD merges, long keys reused in names).
big_list = b"(" + i(7) + b"q\x01" + b"h\x01" * 199_999 + b"lq\x02"          # [7] * 200 000, memo 2
copies = b"".join(b"cbuiltins\nlist\nh\x02\x85R0" for _ in range(20))      # list(l), popped, 20 times
add("pickle_list_copies.pth", torch_zip(b"\x80\x02" + big_list + copies + b"0" + state_dict([])[2:], {}, compress_pickle=True),
    "list(l) of a 200 000-item list called 20 times (4 M copied items from a ~2 KB deflated pickle)", "copies more than")
big_dict = b"}q\x03(" + b"".join(i(k) + i(0) for k in range(10_000)) + b"u"
dcopies = b"".join(ORDERED_DICT + b"h\x03\x85R0" for _ in range(120))
add("pickle_dict_copies.pth", torch_zip(b"\x80\x02" + big_dict + dcopies + b"0" + state_dict([])[2:], {}, compress_pickle=True),
    "OrderedDict(d) of a 10 000-entry dict called 120 times", "copies more than")
merges = b"cfoo\nBar\n)\x81" + b"".join(b"h\x03b" for _ in range(120))     # Bar.__new__(), then BUILD(d) 120 times
add("pickle_build_merges.pth", torch_zip(b"\x80\x02" + big_dict + b"0" + merges + b"0" + state_dict([])[2:], {}, compress_pickle=True),
    "BUILD merging a 10 000-entry state into one object 120 times", "copies more than")
key = "k" * (1 << 20)
nested = b"\x80\x02" + s(key) + b"q\x010" + b"}" + b"h\x01}" * 300 + b"h\x01N" + b"s" * 301 + b"."
add("pickle_long_key_names.pth", torch_zip(nested, {}, compress_pickle=True),
    "a memoised 1 MiB key reused by 300 nested dicts (names of up to 300 MiB)", "flattened names exceed")

# Class 8: CPU — one 1 MiB key set 2000 times (hashing it each time).
hashing = b"\x80\x02" + s(key) + b"q\x010}(" + b"h\x01N" * 2000 + b"u."
add("pickle_hash_key.pth", torch_zip(hashing, {}, compress_pickle=True),
    "a memoised 1 MiB dict key set 2000 times in one SETITEMS (2 GiB hashed)", "hashes more than")
encode = b"\x80\x02" + s(key) + b"q\x010" + b"".join(b"c_codecs\nencode\nh\x01X\x06\x00\x00\x00latin1\x86R0" for _ in range(400)) + b"}."
add("pickle_encode_copies.pth", torch_zip(encode, {}, compress_pickle=True),
    "_codecs.encode on a memoised 1 MiB string called 400 times", "build more than")

# Class 19: amplification.
stride0 = state_dict([(f"w{k}", tensor("0", 1, 0, (1 << 27,), (0,))) for k in range(2000)])
add("pickle_stride0_output.pth", torch_zip(stride0, {"0": floats(1)}, compress_pickle=True),
    "2000 stride-0 views of a 4-byte storage, 512 MiB each (1000 GiB of output)", "bytes of output", also=["--max-output-bytes"])


def npy_header(text):
    return npy(header=text)


add("npy_dup_descr.npy", npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'descr': '<i4', }"),
    ".npy header giving descr twice (numpy takes the last)", "duplicate key 'descr'")
add("npy_dup_shape.npy", npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'shape': (1,), }"),
    ".npy header giving shape twice", "duplicate key 'shape'")
add("npy_dup_fortran.npy", npy(shape=(2, 1), header="{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1), 'fortran_order': True, }"),
    ".npy header giving fortran_order twice", "duplicate key 'fortran_order'")
add("npy_extra_key.npy", npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'order': 'C', }"),
    ".npy header with a key numpy does not accept", "unexpected key 'order'")
add("npy_escape.npy", npy_header("{'descr': '\\x3cf4', 'fortran_order': False, 'shape': (2,), }"),
    ".npy header string with an escape (Python would decode '\\x3c' as '<')", "escape sequence")
add("npy_header_size.npy", b"\x93NUMPY\x02\x00" + struct.pack("<I", 200 << 20) + b"{'descr': '<f4', ",
    ".npy v2 header declaring 200 MiB", "exceeds the 65536-byte limit")
add("npy_rank.npy", npy(shape=(1,) * 65, data=floats(1)), ".npy shape of rank 65", "rank limit")
add("npz_dup_descr.npz", npz([("a", npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'descr': '<i4', }"))]),
    ".npz member whose header gives descr twice", "duplicate key 'descr'", also=["a.npy"])


def safetensors(header_json, data=b""):
    h = header_json.encode()
    return struct.pack("<Q", len(h)) + h + data


add("safetensors_rank.safetensors",
    safetensors('{"w":{"dtype":"F32","shape":[' + ",".join(["1"] * 100) + '],"data_offsets":[0,4]}}', floats(1)),
    "safetensors shape of rank 100 (a rank-10M shape costs ~700 MB to parse)", "more than 64 items")
add("safetensors_dup_key.safetensors",
    safetensors('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', floats(2)),
    "safetensors header naming one tensor twice", "duplicate key 'w'")

# Class 7: shape arithmetic in a mapping transform (HF ViT: q, k, v concatenated into qkv).
big = [0, 1 << 32, 1 << 32]
hdr = {"embeddings.cls_token": [1, 1, 4], "embeddings.position_embeddings": [1, 2, 4]}
for n in ("query", "key", "value"):
    hdr[f"encoder.layer.0.attention.attention.{n}.weight"] = big
entries, off = [], 0
for k, shp in hdr.items():
    n = 1
    for d in shp:
        n *= d
    entries.append('"%s":{"dtype":"F32","shape":[%s],"data_offsets":[%d,%d]}' % (k, ",".join(map(str, shp)), off, off + 4 * n))
    off += 4 * n
add("vit_hf_overflow.safetensors", safetensors("{" + ",".join(entries) + "}", floats(off // 4)),
    "ViT-like safetensors whose q/k/v weights have shape [0, 2^32, 2^32] (concat in vit.hf-transformers.yaml)",
    "overflow", also=["vit.hf-transformers.yaml:"], library=False)

# Safe: a deflated storage viewed by 5000 tensors is inflated once (bounded work, exit 0).
views = state_dict([(f"v{k}", tensor("0", 4096, k % 4096, (1,), (1,))) for k in range(5000)])
files["many_views_deflated.pth"] = torch_zip(views, {"0": floats(4096)}, compress_pickle=True,
                                              **{"archive/data/0": {"method": 8}})
safe.append({"file": "many_views_deflated.pth", "class": "a deflated 16 KiB storage viewed by 5000 one-element tensors", "tensors": 5000})

os.makedirs(OUT, exist_ok=True)
for name, data in files.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
with open(os.path.join(OUT, "EXPECTED.json"), "w") as f:
    json.dump({"generator": "Tools/make_crafted_fixtures.py", "cases": cases, "safe": safe}, f, indent=1)
    f.write("\n")
print(f"{len(files)} files, {sum(len(d) for d in files.values())} bytes -> {os.path.normpath(OUT)}")
