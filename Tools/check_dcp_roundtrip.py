#!/usr/bin/env python3
"""Checks a Distributed Checkpoint written by `weights convert IN -o DIR --to dcp --ranks N` with torch itself:

1. `torch.distributed.checkpoint.load` on WORLD gloo ranks (spawned; default 2) into DTensors sharded by rows
   (`Shard(0)`) over the ranks — a resharding load when WORLD differs from the ranks the checkpoint was written
   with — and every rank's `full_tensor()` equal, bit for bit, to the reference;
2. `format_utils.dcp_to_torch_save` + `torch.load`: every reference tensor equal, and the non-tensor items printed.

Usage: /work/venv/bin/python Tools/check_dcp_roundtrip.py DIR REFERENCE.safetensors [WORLD]
(written with torch 2.15.0). Exit status 0 when both hold.
"""
import os
import sys
import tempfile

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
import torch.multiprocessing as mp


def load_on_ranks(rank, world, store, ckpt, ref_path):
    from safetensors.torch import load_file
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor

    dist.init_process_group("gloo", store=dist.FileStore(store, world), rank=rank, world_size=world)
    mesh = init_device_mesh("cpu", (world,))
    ref = load_file(ref_path)
    state = {k: (distribute_tensor(torch.zeros_like(v), mesh, [Shard(0)]) if v.dim() > 0 else torch.zeros_like(v))
             for k, v in ref.items()}
    dcp.load(state, storage_reader=dcp.FileSystemReader(ckpt))
    for k, v in ref.items():
        got = state[k].full_tensor() if hasattr(state[k], "full_tensor") else state[k]
        if not torch.equal(got.reshape(-1).view(torch.uint8), v.reshape(-1).view(torch.uint8)):
            raise SystemExit(f"rank {rank}: {k} differs")
    dist.destroy_process_group()


def main():
    ckpt, ref_path = sys.argv[1], sys.argv[2]
    world = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(load_on_ranks, args=(world, os.path.join(tmp, "store"), ckpt, ref_path), nprocs=world, join=True)
        print(f"dcp.load on {world} ranks: every tensor equal")
        from safetensors.torch import load_file
        from torch.distributed.checkpoint.format_utils import dcp_to_torch_save
        pt = os.path.join(tmp, "ref.pt")
        dcp_to_torch_save(ckpt, pt)
        sd = torch.load(pt, weights_only=False)
    for k, v in load_file(ref_path).items():
        if not torch.equal(sd[k].reshape(-1).view(torch.uint8), v.reshape(-1).view(torch.uint8)):
            raise SystemExit(f"dcp_to_torch_save: {k} differs")
    print("dcp_to_torch_save: every tensor equal; items:", {k: v for k, v in sd.items() if not isinstance(v, torch.Tensor)})


if __name__ == "__main__":
    main()
