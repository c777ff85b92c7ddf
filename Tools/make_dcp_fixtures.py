#!/usr/bin/env python3
"""Writes Tests/CheckpointsTests/Fixtures/dcp/: PyTorch Distributed Checkpoints (DCP) saved by torch itself, on CPU
with the gloo backend, by 2 and 4 processes (torch.multiprocessing spawn, a FileStore rendezvous), and the
references the Swift tests compare them with.

  fsdp2/     2 ranks: a small model sharded by FSDP2 (`fully_shard`, Shard(0) row blocks) + Adam state through
             `get_state_dict`, a step counter, hyper-parameters, a bytes item.
  fsdp4/     the same on 4 ranks (7 rows over 4 ranks: uneven chunks, and 3 rows leave rank 3 an empty chunk).
  mesh2d/    4 ranks, 2x2 device mesh: DTensors with [Shard(0), Shard(1)] (boxes, not row blocks), a Shard(1)
             tensor over a 1-D mesh, a replicated one, a plain tensor, bfloat16 / int64 / float16 tensors.
  st2/       2 ranks, FileSystemWriter(serialization_format=SAFETENSORS): each .distcp file is a safetensors file.
Each directory also gets, written by torch on one process afterwards:
  ref.safetensors   every tensor of `dcp_to_torch_save`'s output under DCP's flattened dotted names
                    (torch.load of ref.pt, flattened with DCP's own `flatten_state_dict`).
  ref.json          the non-tensor items by flattened name (repr of the value) and the tensor names in order.
ref.pt itself is not kept (it only duplicates ref.safetensors); the tests need no Python.

Run: /work/venv/bin/python Tools/make_dcp_fixtures.py [OUT]   (written with torch 2.15.0, safetensors 0.8.0)
"""
import json
import os
import shutil
import sys
import tempfile

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
import torch.multiprocessing as mp
import torch.nn as nn

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "CheckpointsTests", "Fixtures", "dcp")


class Tiny(nn.Module):
    """Odd sizes so that row blocks are uneven: 7x5, 3x7."""

    def __init__(self):
        super().__init__()
        self.layer1 = nn.Linear(5, 7)
        self.layer2 = nn.Linear(7, 3)
        self.register_buffer("scale", torch.arange(6, dtype=torch.float32).reshape(2, 3))

    def forward(self, x):
        return self.layer2(torch.relu(self.layer1(x))) * self.scale.sum()


def init(rank, world, store_file):
    store = dist.FileStore(store_file, world)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=world)


def save_fsdp(rank, world, store_file, out, fmt):
    from torch.distributed.checkpoint.state_dict import get_state_dict
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    init(rank, world, store_file)
    torch.manual_seed(0)
    model = Tiny()
    mesh = init_device_mesh("cpu", (world,))
    fully_shard(model.layer1, mesh=mesh)
    fully_shard(model.layer2, mesh=mesh)
    fully_shard(model, mesh=mesh)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, betas=(0.8, 0.95))
    for i in range(2):
        torch.manual_seed(100 + i)
        model(torch.randn(4, 5)).sum().backward()
        opt.step()
        opt.zero_grad()
    msd, osd = get_state_dict(model, opt)
    state = {
        "model": msd,
        "optim": osd,
        "step": 42,
        "hparams": {"lr": 0.01, "name": "tiny", "betas": [0.8, 0.95]},
        "blob": b"\x00\x01binary\xff",
    }
    writer = dcp.FileSystemWriter(out)
    if fmt == "safetensors":
        from torch.distributed.checkpoint.filesystem import SerializationFormat
        writer = dcp.FileSystemWriter(out, serialization_format=SerializationFormat.SAFETENSORS)
    dcp.save(state, storage_writer=writer)
    dist.destroy_process_group()


def save_mesh2d(rank, world, store_file, out, fmt):
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Replicate, Shard, distribute_tensor

    init(rank, world, store_file)
    mesh2 = init_device_mesh("cpu", (2, 2))
    mesh1 = init_device_mesh("cpu", (world,))
    g = torch.Generator().manual_seed(7)
    box = torch.randn(7, 5, generator=g)
    cols = torch.randn(3, 9, generator=g).to(torch.bfloat16)
    rep = torch.arange(10, dtype=torch.int64) * 3 - 7
    cube = torch.randn(5, 3, 6, generator=g).to(torch.float16)
    state = {
        "box": distribute_tensor(box, mesh2, [Shard(0), Shard(1)]),
        "cols": distribute_tensor(cols, mesh1, [Shard(1)]),
        "rep": distribute_tensor(rep, mesh1, [Replicate()]),
        "cube": distribute_tensor(cube, mesh2, [Shard(2), Shard(0)]),
        "plain": torch.linspace(-1, 1, 11),
        "scalar": torch.tensor(3.5, dtype=torch.float64),
        "epoch": 3,
    }
    dcp.save(state, storage_writer=dcp.FileSystemWriter(out))
    dist.destroy_process_group()


def run(fn, world, out, fmt="torch_save"):
    if os.path.exists(out):
        shutil.rmtree(out)
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(fn, args=(world, os.path.join(tmp, "store"), out, fmt), nprocs=world, join=True)


def reference(out):
    from safetensors.torch import save_file
    from torch.distributed.checkpoint._nested_dict import flatten_state_dict
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    with tempfile.TemporaryDirectory() as tmp:
        pt = os.path.join(tmp, "ref.pt")
        dcp_to_torch_save(out, pt)
        sd = torch.load(pt, weights_only=False)
    flat, _ = flatten_state_dict(sd)
    tensors = {k: v.contiguous() for k, v in flat.items() if isinstance(v, torch.Tensor)}
    others = {k: repr(v) for k, v in flat.items() if not isinstance(v, torch.Tensor)}
    save_file(tensors, os.path.join(out, "ref.safetensors"))
    with open(os.path.join(out, "ref.json"), "w") as f:
        json.dump({"tensors": list(tensors), "items": others}, f, indent=1, sort_keys=True)


def main():
    os.makedirs(OUT, exist_ok=True)
    jobs = [("fsdp2", save_fsdp, 2, "torch_save"), ("fsdp4", save_fsdp, 4, "torch_save"),
            ("mesh2d", save_mesh2d, 4, "torch_save"), ("st2", save_fsdp, 2, "safetensors")]
    for name, fn, world, fmt in jobs:
        out = os.path.join(OUT, name)
        run(fn, world, out, fmt)
        if fmt == "torch_save":
            reference(out)
        print(name, sorted(os.listdir(out)))
    import safetensors
    with open(os.path.join(OUT, "VERSIONS.txt"), "w") as f:
        f.write("Fixtures written by Tools/make_dcp_fixtures.py with:\n")
        f.write(f"python {sys.version.split()[0]}\ntorch {torch.__version__}\nsafetensors {safetensors.__version__}\n")


if __name__ == "__main__":
    main()
