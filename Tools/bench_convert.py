#!/usr/bin/env python3
"""Conversion benchmark: `weights convert` vs `cp` vs a Python `torch.load` + `safetensors.save_file`.

Generates (once, cached in the work folder) a checkpoint shaped like timm's `jx_vit_base_patch16_224_in21k`
(ViT-B/16 with pre_logits and a 21843-class head, float32, torch zip format, ~413 MB), then times each
conversion as a whole process, several runs each, and prints medians, ratios against `cp`, and peak RSS
(from wait4's rusage of that very process).

Needs: torch and safetensors in the Python that runs it (e.g. a venv), and a release build of `weights`
(`swift build -c release`). Usage:
    python Tools/bench_convert.py [--runs 5] [--workdir /tmp/weights-bench] [--weights .build/release/weights]
                                  [--shape vit_base_patch16_224_in21k|vit_huge_patch14_224_in21k]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

CONFIGS = {
    # name: (embed_dim, depth, patch, img, representation_size, num_classes, mlp_ratio)
    "vit_base_patch16_224_in21k": (768, 12, 16, 224, 768, 21843, 4),
    "vit_large_patch16_224_in21k": (1024, 24, 16, 224, 1024, 21843, 4),
    "vit_huge_patch14_224_in21k": (1280, 32, 14, 224, 1280, 21843, 4),
}


def vit_shapes(name):
    d, depth, p, img, rep, classes, ratio = CONFIGS[name]
    n = (img // p) ** 2 + 1
    shapes = [("cls_token", (1, 1, d)), ("pos_embed", (1, n, d)),
              ("patch_embed.proj.weight", (d, 3, p, p)), ("patch_embed.proj.bias", (d,))]
    for i in range(depth):
        b = f"blocks.{i}."
        shapes += [(b + "norm1.weight", (d,)), (b + "norm1.bias", (d,)),
                   (b + "attn.qkv.weight", (3 * d, d)), (b + "attn.qkv.bias", (3 * d,)),
                   (b + "attn.proj.weight", (d, d)), (b + "attn.proj.bias", (d,)),
                   (b + "norm2.weight", (d,)), (b + "norm2.bias", (d,)),
                   (b + "mlp.fc1.weight", (ratio * d, d)), (b + "mlp.fc1.bias", (ratio * d,)),
                   (b + "mlp.fc2.weight", (d, ratio * d)), (b + "mlp.fc2.bias", (d,))]
    shapes += [("norm.weight", (d,)), ("norm.bias", (d,)),
               ("pre_logits.fc.weight", (rep, d)), ("pre_logits.fc.bias", (rep,)),
               ("head.weight", (classes, rep)), ("head.bias", (classes,))]
    return shapes


MAKE = r"""
import os, sys, torch
shapes = eval(sys.argv[2])
torch.manual_seed(0)
sd = {k: torch.randn(*s) * 0.02 for k, s in shapes}
torch.save(sd, sys.argv[1] + ".tmp")
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
"""


def make_checkpoint(path, name):
    # In a child process, so this (parent) process stays small: Linux's ru_maxrss of a child counts the memory
    # it inherited at fork, and a parent holding torch tensors would inflate every measurement.
    subprocess.run([sys.executable, "-c", MAKE, path, repr(vit_shapes(name))], check=True)


PY_CONVERT = r"""
import sys, torch
from safetensors.torch import save_file
sd = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
save_file({k: v.contiguous() for k, v in sd.items()}, sys.argv[2])
"""


GNU_TIME = "/usr/bin/time" if os.path.exists("/usr/bin/time") else None


def run(cmd):
    """Runs cmd, returns (seconds, peak RSS in MiB) of that process alone.

    Linux's ru_maxrss of a child of this (large) Python process includes the memory it shared at fork/vfork, so
    the peak RSS comes from GNU time (a small parent) when installed; otherwise from wait4, an over-estimate.
    The wall time is the same process's either way (GNU time adds well under a millisecond)."""
    rss_file = None
    if GNU_TIME:
        fd, rss_file = tempfile.mkstemp(prefix="bench-rss-")
        os.close(fd)
        cmd = [GNU_TIME, "-f", "%M", "-o", rss_file] + cmd
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"command failed: {' '.join(cmd)}\n{err}")
    rss = ru.ru_maxrss / 1024.0
    if rss_file:
        with open(rss_file) as f:
            rss = int(f.read().split()[-1]) / 1024.0
        os.remove(rss_file)
    return dt, rss


def drop(path):
    if os.path.exists(path):
        os.remove(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--workdir", default="/tmp/weights-bench")
    ap.add_argument("--weights", default=".build/release/weights")
    ap.add_argument("--shape", default="vit_base_patch16_224_in21k", choices=sorted(CONFIGS))
    ap.add_argument("--skip-python", action="store_true", help="do not time the Python conversion")
    args = ap.parse_args()

    os.makedirs(args.workdir, exist_ok=True)
    src = os.path.join(args.workdir, f"jx_{args.shape}.pth" if "base" in args.shape else f"{args.shape}.pth")
    if not os.path.exists(src):
        print(f"generating {src} ...", flush=True)
        make_checkpoint(src, args.shape)
    size = os.path.getsize(src)
    shapes = vit_shapes(args.shape)
    largest = max(4 * __import__("math").prod(s) for _, s in shapes)
    print(f"checkpoint: {src}  {size / 2**20:.1f} MiB, {len(shapes)} tensors, largest tensor {largest / 2**20:.1f} MiB")

    out = os.path.join(args.workdir, "out.safetensors")
    cases = [
        ("cp", lambda: ["cp", src, out]),
        ("weights convert", lambda: [args.weights, "convert", src, "-o", out, "--force"]),
    ]
    if not args.skip_python:
        cases.append(("python torch.load+save_file", lambda: [sys.executable, "-c", PY_CONVERT, src, out]))

    # Warm the page cache once so every contender reads from memory.
    with open(src, "rb") as f:
        while f.read(1 << 24):
            pass

    # Baseline: the peak RSS a trivial child shows (what fork inherits from this process), for reference.
    _, base_rss = run(["true"])
    print(f"(a trivial child process shows {base_rss:.1f} MiB peak RSS)")

    results = {}
    for _ in range(args.runs):
        for name, cmd in cases:  # interleaved so drift affects all alike
            drop(out)
            dt, rss = run(cmd())
            results.setdefault(name, []).append((dt, rss))
    drop(out)

    cp_med = statistics.median(t for t, _ in results["cp"])
    print(f"\n{'command':32} {'median s':>9} {'vs cp':>7} {'peak RSS MiB':>13}")
    for name, _ in cases:
        med = statistics.median(t for t, _ in results[name])
        rss = max(r for _, r in results[name])
        print(f"{name:32} {med:9.3f} {med / cp_med:6.2f}x {rss:13.1f}")

    w_med = statistics.median(t for t, _ in results["weights convert"])
    w_rss = max(r for _, r in results["weights convert"])
    floor_rss = 2 * largest / 2**20 + 64
    print(f"\nfloor (issue 2): convert <= 2.0x cp: {'MET' if w_med <= 2 * cp_med else 'NOT MET'} ({w_med / cp_med:.2f}x); "
          f"peak RSS <= 2 x largest tensor + 64 MiB = {floor_rss:.0f} MiB: {'MET' if w_rss <= floor_rss else 'NOT MET'} ({w_rss:.0f} MiB)")


if __name__ == "__main__":
    main()
