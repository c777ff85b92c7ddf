#!/usr/bin/env python3
"""GEMM micro-benchmark: a Linear layer's Y = X · Wᵀ + b on weights' packed AVX-512 kernel, on its OpenBLAS path,
and in PyTorch (F.linear, MKL), for the shapes a ViT runs.

`weights bench-gemm` times the two Swift paths interleaved in one process (Kernels.linear with and without the
packed weight; the OpenBLAS path is the one models took before the packed kernel: the transposed product for
M <= 128, else X · Wᵀ split by columns); this script times torch.nn.functional.linear at its default thread count
on the same shapes, and prints medians and ratios to PyTorch, then the same for the fastest call of each (less
sensitive to other jobs on the machine: PyTorch's OpenMP threads in particular lose whole time slices to them).
Runs the whole thing --repeat times and reports the median over the repeats.

--threads N runs both sides on N threads (torch.set_num_threads, WEIGHTS_NUM_THREADS); default: each side's
default (all cores). With another job on the machine, --threads 1 is the comparison that stays fair: PyTorch's
OpenMP team stalls whenever one of its threads is descheduled, and its medians then grow tenfold.

Needs torch and a release build (`swift build -c release --static-swift-stdlib --product weights`). Usage:
    python Tools/bench_gemm.py [--weights .build/release/weights] [--runs 50] [--repeat 2] [--threads N]
                               [--shapes 65x1024x3072,...]
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# M×K×N of the Linear layers of vit-pytorch's ViT / SimpleViT at seed 000 (65 / 64 tokens, dim 1024, MLP 2048 or
# 3072 wide) and of ViT-B/16 (197 tokens, dim 768), at batch 1 and 8.
DEFAULT_SHAPES = ["65x1024x3072", "65x1024x1024", "65x1024x2048", "65x2048x1024", "520x1024x3072", "520x2048x1024",
                  "197x768x2304", "197x768x3072", "197x3072x768", "1576x768x3072", "1576x3072x768"]


def torch_ms(shape, runs):
    import torch
    m, k, n = (int(v) for v in shape.split("x"))
    g = torch.Generator().manual_seed(1)
    x = torch.rand(m, k, generator=g) * 2 - 1
    w = (torch.rand(n, k, generator=g) * 2 - 1) * 0.05
    b = (torch.rand(n, generator=g) * 2 - 1) * 0.05
    times = []
    with torch.inference_mode():
        torch.nn.functional.linear(x, w, b)
        for _ in range(runs):
            t0 = time.perf_counter()
            torch.nn.functional.linear(x, w, b)
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), min(times)


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default=os.path.join(HERE, "..", ".build", "release", "weights"))
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--shapes", default=",".join(DEFAULT_SHAPES))
    ap.add_argument("--threads", type=int, help="threads for both sides (default: each side's default)")
    args = ap.parse_args()
    import torch
    env = dict(os.environ)
    if args.threads:
        torch.set_num_threads(args.threads)
        env["WEIGHTS_NUM_THREADS"] = str(args.threads)
    shapes = args.shapes.split(",")
    keys = ["torch", "openblas", "packed", "torch_min", "openblas_min", "packed_min"]
    rows = {s: {key: [] for key in keys} for s in shapes}
    for _ in range(args.repeat):
        for s in shapes:
            out = subprocess.run([args.weights, "bench-gemm", s, "--runs", str(args.runs), "--json"],
                                 check=True, capture_output=True, text=True, env=env).stdout
            r = json.loads(out)
            rows[s]["openblas"].append(r["openblas_ms"])
            rows[s]["openblas_min"].append(r["openblas_min_ms"])
            if "packed_ms" in r:
                rows[s]["packed"].append(r["packed_ms"])
                rows[s]["packed_min"].append(r["packed_min_ms"])
            med, best = torch_ms(s, args.runs)
            rows[s]["torch"].append(med)
            rows[s]["torch_min"].append(best)
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; torch {torch.__version__} with {torch.get_num_threads()} threads; "
          f"weights with {env.get('WEIGHTS_NUM_THREADS', os.cpu_count())}; medians of {args.repeat} runs of {args.runs} calls")
    def med(s, key):
        return statistics.median(rows[s][key]) if rows[s][key] else float("nan")
    for title, suffix in [("median call", ""), ("fastest call", "_min")]:
        print(f"{title}:")
        print(f"{'M×K×N':>15} {'torch ms':>9} {'OpenBLAS':>9} {'packed':>9} {'OpenBLAS/torch':>15} {'packed/torch':>13}")
        for s in shapes:
            t, o, p = med(s, "torch" + suffix), med(s, "openblas" + suffix), med(s, "packed" + suffix)
            print(f"{s:>15} {t:9.3f} {o:9.3f} {p:9.3f} {o / t:14.2f}× {p / t:12.2f}×")

if __name__ == "__main__":
    main()
