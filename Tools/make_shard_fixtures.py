#!/usr/bin/env python3
"""Writes Tests/CheckpointsTests/Fixtures/shards/: one small state dict saved by huggingface_hub as a sharded
Hugging Face checkpoint, in both kinds, plus the unsharded original:

  original.safetensors         the whole state dict (safetensors.torch.save_file, metadata {"format": "pt"})
  original.pth                 the same dict, torch.save (zip format)
  st/                          save_torch_state_dict(..., max_shard_size="6KB", safe_serialization=True):
                               model-0000i-of-0000N.safetensors + model.safetensors.index.json
  bin/                         the same with safe_serialization=False: pytorch_model-0000i-of-0000N.bin +
                               pytorch_model.bin.index.json (PyTorch zip shards)
  legacy/                      the same split, each shard written by torch.save(_use_new_zipfile_serialization=False)
                               (legacy .bin shards) with an index in huggingface_hub's layout
  split.json                   how huggingface_hub's split_torch_state_dict_into_shards places the tensors of
                               the original under a few limits (the Swift writer must place them the same way)

The dict has float32, float16, bfloat16, int64, uint8 and bool tensors, a scalar, an empty tensor and one tensor
larger than the shard limit (HF gives it a shard of its own, numbered before the shard still being filled).
The read-back check loads both sharded directories with transformers' sharded loader
(transformers.modeling_utils.load_sharded_checkpoint needs a model, so the check reads every shard the index
lists with safetensors / torch.load and compares with the original).

Run: /work/venv/bin/python Tools/make_shard_fixtures.py   (versions are written to shards/VERSIONS.txt)
"""
import json
import os
import shutil
import sys

import torch
import safetensors
import huggingface_hub
from huggingface_hub import save_torch_state_dict, split_torch_state_dict_into_shards
from safetensors.torch import save_file, load_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "CheckpointsTests", "Fixtures", "shards")


def state_dict():
    g = torch.Generator().manual_seed(11)
    sd = {}
    sd["embed.weight"] = torch.randn(64, 16, generator=g)                      # 4096 B
    sd["blocks.0.norm.weight"] = torch.randn(16, generator=g).half()             # 32 B
    sd["blocks.0.norm.bias"] = torch.randn(16, generator=g).to(torch.bfloat16)    # 32 B
    sd["blocks.0.attn.qkv.weight"] = torch.randn(48, 16, generator=g)            # 3072 B
    sd["blocks.0.attn.proj.weight"] = torch.randn(16, 16, generator=g).half()    # 512 B
    sd["blocks.0.mlp.fc1.weight"] = torch.randn(160, 16, generator=g)            # 10240 B: over the 6KB limit
    sd["blocks.0.mlp.fc2.weight"] = torch.randn(16, 64, generator=g)             # 4096 B
    sd["blocks.0.step"] = torch.tensor(7, dtype=torch.int64)                     # scalar
    sd["blocks.0.mask"] = torch.rand(8, 8, generator=g) > 0.5                    # bool
    sd["blocks.0.ids"] = torch.arange(32, dtype=torch.uint8)
    sd["blocks.0.empty"] = torch.zeros(0, 4)
    sd["head.weight"] = torch.randn(10, 16, generator=g)
    sd["head.bias"] = torch.arange(10, dtype=torch.int64)
    return sd


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    sd = state_dict()
    save_file(sd, os.path.join(OUT, "original.safetensors"), metadata={"format": "pt"})
    torch.save(sd, os.path.join(OUT, "original.pth"))
    os.makedirs(os.path.join(OUT, "st"))
    os.makedirs(os.path.join(OUT, "bin"))
    save_torch_state_dict(sd, os.path.join(OUT, "st"), max_shard_size="6KB", safe_serialization=True)
    save_torch_state_dict(sd, os.path.join(OUT, "bin"), max_shard_size="6KB", safe_serialization=False)

    # Legacy (pre-1.6, non-zip) .bin shards: huggingface_hub's split, torch's legacy writer, the same index layout.
    os.makedirs(os.path.join(OUT, "legacy"))
    split = split_torch_state_dict_into_shards(sd, max_shard_size="6KB", filename_pattern="pytorch_model{suffix}.bin")
    for filename, names in split.filename_to_tensors.items():
        torch.save({k: sd[k] for k in names}, os.path.join(OUT, "legacy", filename), _use_new_zipfile_serialization=False)
    with open(os.path.join(OUT, "legacy", "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": split.metadata, "weight_map": split.tensor_to_filename}, f, indent=2)

    # Placement reference for the writer.
    splits = {}
    for limit in ["6KB", "4KiB", "1KB", "100KB"]:
        s = split_torch_state_dict_into_shards(sd, max_shard_size=limit if "i" not in limit else 4096)
        splits[limit] = {"filename_to_tensors": s.filename_to_tensors, "total_size": s.metadata["total_size"]}
    with open(os.path.join(OUT, "split.json"), "w") as f:
        json.dump({"order": list(sd.keys()), "splits": splits}, f, indent=1)

    # Read-back: every shard the index lists, by the libraries themselves.
    for kind, index in [("st", "model.safetensors.index.json"), ("bin", "pytorch_model.bin.index.json"),
                        ("legacy", "pytorch_model.bin.index.json")]:
        with open(os.path.join(OUT, kind, index)) as f:
            idx = json.load(f)
        got = {}
        for shard in sorted(set(idx["weight_map"].values())):
            p = os.path.join(OUT, kind, shard)
            got.update(load_file(p) if kind == "st" else torch.load(p, weights_only=True))
        assert got.keys() == sd.keys(), (kind, got.keys() ^ sd.keys())
        for k in sd:
            assert got[k].dtype == sd[k].dtype and torch.equal(got[k], sd[k]), (kind, k)
        print(kind, "shards:", sorted(set(idx["weight_map"].values())), "total_size:", idx["metadata"]["total_size"])

    with open(os.path.join(OUT, "VERSIONS.txt"), "w") as f:
        f.write("Fixtures written by Tools/make_shard_fixtures.py with:\n")
        f.write(f"python {sys.version.split()[0]}\ntorch {torch.__version__}\nsafetensors {safetensors.__version__}\n"
                f"huggingface_hub {huggingface_hub.__version__}\n")


if __name__ == "__main__":
    main()
