#!/usr/bin/env python3
"""DCP benchmark pieces (used by Tools/bench.py, section `dcp`): writes a ~400 MB PyTorch Distributed Checkpoint
saved by 4 processes (gloo on CPU, torch.multiprocessing spawn, a FileStore rendezvous), every tensor a DTensor
sharded by rows over the 4 ranks (`distribute_tensor(t, mesh, [Shard(0)], src_data_rank=None)`: each rank cuts its
own rows, so chunks are uneven where a dimension is not a multiple of 4), shaped like timm's
`jx_vit_base_patch16_224_in21k` (the convert section's checkpoint), float32.

PY_DCP_CONVERT is Python's way to the same single safetensors file: `dcp_to_torch_save` into a temporary .pt,
`torch.load`, `safetensors.torch.save_file`, in one process.

Standalone: python Tools/bench_dcp.py OUT_DIR   (written with torch 2.15.0)
"""
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def _save(rank, world, store_file, out, shapes):
    import torch
    import torch.distributed as dist
    import torch.distributed.checkpoint as dcp
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor

    dist.init_process_group("gloo", store=dist.FileStore(store_file, world), rank=rank, world_size=world)
    mesh = init_device_mesh("cpu", (world,))
    state = {}
    for i, (name, shape) in enumerate(shapes):
        g = torch.Generator().manual_seed(i)
        state["model." + name] = distribute_tensor(torch.randn(*shape, generator=g) * 0.02, mesh, [Shard(0)], src_data_rank=None)
    state["step"] = 1000
    dcp.save(state, storage_writer=dcp.FileSystemWriter(out))
    dist.destroy_process_group()


def make_dcp(out, world=4, name="vit_base_patch16_224_in21k"):
    """Writes the checkpoint to `out` (replaced if present) from a child process tree."""
    import torch.multiprocessing as mp
    import bench_convert as bc

    if os.path.exists(out):
        shutil.rmtree(out)
    tmp_out = out + ".tmp"
    if os.path.exists(tmp_out):
        shutil.rmtree(tmp_out)
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_save, args=(world, os.path.join(tmp, "store"), tmp_out, bc.vit_shapes(name)), nprocs=world, join=True)
    os.replace(tmp_out, out)


PY_DCP_CONVERT = r"""
import os, sys, torch
from torch.distributed.checkpoint.format_utils import dcp_to_torch_save
from safetensors.torch import save_file
pt = sys.argv[2] + ".pt"
dcp_to_torch_save(sys.argv[1], pt)
sd = torch.load(pt, map_location="cpu", weights_only=True)
os.remove(pt)
save_file({k: v.contiguous() for k, v in sd.items() if isinstance(v, torch.Tensor)}, sys.argv[2])
"""


if __name__ == "__main__":
    make_dcp(sys.argv[1])
