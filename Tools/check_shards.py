#!/usr/bin/env python3
"""Checks a sharded safetensors folder written by `weights convert IN -o DIR --max-shard-size SIZE` with Python's
own readers, against the source state dict:

  1. every shard read by `safetensors` (safe_open): `__metadata__["format"] == "pt"`, the tensors bit for bit equal
     to the source's (names, dtypes, shapes, bytes);
  2. the folder loaded by transformers' sharded loader (`transformers.trainer_utils.load_sharded_checkpoint`, strict)
     into a module whose buffers have the source's names, dtypes and shapes: every value equal;
  3. the index byte for byte what transformers writes (`json.dumps(index, indent=2, sort_keys=True) + "\\n"`) with
     metadata.total_size = the tensor bytes;
  4. the placement (which tensors in which file, in which order) what huggingface_hub's
     `split_torch_state_dict_into_shards(source, max_shard_size=SIZE)` gives.

A single shard is `DIR/model.safetensors` with no index (what huggingface_hub writes then): checks 1 and 4.

Usage: /work/venv/bin/python Tools/check_shards.py SOURCE DIR SIZE
  SOURCE: a torch.save file (flat state dict), a .safetensors file, or a sharded folder / index
Written with torch 2.15, safetensors 0.8.0, huggingface_hub 2.4.0, transformers 5.25.0.
"""
import json
import os
import sys

import torch
from huggingface_hub import split_torch_state_dict_into_shards
from safetensors import safe_open
from safetensors.torch import load_file


def file_order(path):
    """A safetensors file's tensor names in data-offset order (its own order; load_file returns them sorted)."""
    import struct
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return sorted(header, key=lambda k: tuple(header[k]["data_offsets"]))


def ordered(sd, names):
    return {k: sd[k] for k in names}


def load_source(path):
    """The source state dict in the order `weights` reads it: pickle order for torch.save files; for safetensors,
    each file's data-offset order; for a sharded set, the shard files by name, then each shard's own order."""
    if os.path.isdir(path):
        names = [n for n in os.listdir(path) if n.endswith(".index.json")]
        assert len(names) == 1, names
        path = os.path.join(path, names[0])
    if path.endswith(".index.json"):
        with open(path) as f:
            index = json.load(f)
        folder = os.path.dirname(path)
        sd = {}
        for shard in sorted(set(index["weight_map"].values()), key=lambda n: n.encode()):
            p = os.path.join(folder, shard)
            sd.update(ordered(load_file(p), file_order(p)) if p.endswith(".safetensors") else torch.load(p, weights_only=True))
        return sd
    if path.endswith(".safetensors"):
        return ordered(load_file(path), file_order(path))
    return torch.load(path, weights_only=True, map_location="cpu")


def same(a, b):
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    bits = lambda t: t.reshape(-1).contiguous().view(torch.uint8) if t.numel() else t.reshape(-1)
    return torch.equal(bits(a), bits(b))


def module_like(sd):
    root = torch.nn.Module()
    for name, t in sd.items():
        *path, leaf = name.split(".")
        m = root
        for p in path:
            if not hasattr(m, p):
                m.add_module(p, torch.nn.Module())
            m = getattr(m, p)
        m.register_buffer(leaf, torch.zeros(t.shape, dtype=t.dtype))
    return root


def parse_size(text):
    t = text.strip().upper()
    for unit, m in [("KIB", 1 << 10), ("MIB", 1 << 20), ("GIB", 1 << 30), ("TIB", 1 << 40)]:
        if t.endswith(unit):
            return int(float(t[:-3]) * m)
    return text  # huggingface_hub parses the decimal units itself


def main():
    source_path, folder, size = sys.argv[1], sys.argv[2], sys.argv[3]
    source = load_source(source_path)
    failures = []
    index_path = os.path.join(folder, "model.safetensors.index.json")
    sharded = os.path.exists(index_path)
    if sharded:
        with open(index_path, "rb") as f:
            raw = f.read()
        index = json.loads(raw)
        files = sorted(set(index["weight_map"].values()))
    else:
        assert os.listdir(folder) == ["model.safetensors"], os.listdir(folder)
        files = ["model.safetensors"]

    # 1. safetensors, shard by shard.
    got, placement = {}, {}
    for name in files:
        with safe_open(os.path.join(folder, name), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != "pt":
                failures.append(f"{name}: __metadata__ format is {meta.get('format')!r}, not 'pt'")
            placement[name] = list(f.keys())
        got.update(load_file(os.path.join(folder, name)))
    if set(got) != set(source):
        failures.append(f"names differ: only in output {sorted(set(got) - set(source))[:5]}, only in source {sorted(set(source) - set(got))[:5]}")
    for k in source:
        if k in got and not same(got[k], source[k]):
            failures.append(f"{k}: {got[k].dtype} {tuple(got[k].shape)} differs from the source's {source[k].dtype} {tuple(source[k].shape)}")
    print(f"safetensors: {len(files)} file(s), {len(got)} tensors, {'equal' if not failures else 'DIFFERENT'}")

    if sharded:
        # 2. transformers' sharded loading.
        from transformers.trainer_utils import load_sharded_checkpoint
        model = module_like(source)
        load_sharded_checkpoint(model, folder, strict=True)
        loaded = model.state_dict()
        bad = [k for k in source if not same(loaded[k], source[k])]
        failures += [f"transformers: {k} differs" for k in bad]
        print(f"transformers load_sharded_checkpoint: {len(loaded)} tensors, {'equal' if not bad else 'DIFFERENT'}")

        # 3. the index, byte for byte.
        total = sum(t.numel() * t.element_size() for t in source.values())
        want = json.dumps({"metadata": {"total_size": total}, "weight_map": index["weight_map"]}, indent=2, sort_keys=True) + "\n"
        if raw != want.encode():
            failures.append("index is not byte for byte json.dumps(index, indent=2, sort_keys=True) + newline")
        if index["metadata"]["total_size"] != total:
            failures.append(f"total_size {index['metadata']['total_size']} != tensor bytes {total}")
        print(f"index: total_size {index['metadata']['total_size']} (tensor bytes {total}), layout {'as transformers writes it' if raw == want.encode() else 'DIFFERENT'}")

    # 4. placement as huggingface_hub's split of the source in the order weights read it (file → tensors, as sets:
    #    safe_open lists a file's keys sorted).
    split = split_torch_state_dict_into_shards(source, max_shard_size=parse_size(size))
    want_placement = {f: sorted(ts) for f, ts in split.filename_to_tensors.items()}
    if {f: sorted(ts) for f, ts in placement.items()} != want_placement:
        failures.append(f"placement differs from huggingface_hub's split: {want_placement} vs {placement}")
    print(f"placement: {'as huggingface_hub splits it' if not failures or want_placement == {f: sorted(t) for f, t in placement.items()} else 'DIFFERENT'} ({len(want_placement)} shard(s) under {size})")

    for f in failures:
        print("FAIL:", f)
    print("OK" if not failures else f"{len(failures)} failure(s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
