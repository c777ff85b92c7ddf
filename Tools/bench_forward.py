#!/usr/bin/env python3
"""Forward-pass benchmark: the Swift models (`weights bench`) against PyTorch on this CPU, in one run.

For each model and batch size, times K forward passes after a warm-up on a random N×3×224×224 input (256×256 for MobileViT), on both
sides, and prints the medians and the ratio Swift / PyTorch (lower is better; < 1 means Swift is faster).
PyTorch runs with its default thread count (torch.get_num_threads()), in eval mode under inference_mode, with
the same architecture definitions as Tools/make_model_fixtures.py (torchvision's resnet18 and resnet50; the seed's
ViT).

Needs torch + torchvision in the Python that runs it, and `swift build -c release`. Usage:
    python Tools/bench_forward.py [--runs 10] [--weights .build/release/weights]
                                  [--models resnet18,vit_base_patch16_224] [--batches 1,8]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def torch_model(name):
    import torch
    import torchvision
    if name in ("resnet18", "resnet50"):
        return getattr(torchvision.models, name)()
    sys.path.insert(0, HERE)
    import make_model_fixtures as f
    if name == "resnet18_cbam":
        return f.ResNet([2, 2, 2, 2], cbam=True)
    if name.startswith("mobilevit_"):
        import seed_cnn_models as s
        return s.MobileViT((256, 256), num_classes=1000, **s.MOBILEVIT_CONFIGS[name])
    return f.VisionTransformer(**f.VIT_CONFIGS[name])


def input_side(name):
    """The input side a model is benchmarked at (its registry entry's): 256 for MobileViT, else 224."""
    return 256 if name.startswith("mobilevit_") else 224


def torch_median(name, batch, runs):
    import torch
    torch.manual_seed(0)
    m = torch_model(name).eval()
    x = torch.randn(batch, 3, input_side(name), input_side(name))
    times = []
    with torch.inference_mode():
        m(x)
        for _ in range(runs):
            t0 = time.perf_counter()
            m(x)
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def swift_median(weights, name, batch, runs):
    out = subprocess.run([weights, "bench", "--model", name, "--batch", str(batch), "--runs", str(runs), "--json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["median_ms"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--weights", default=".build/release/weights")
    ap.add_argument("--models", default="resnet18,vit_base_patch16_224")
    ap.add_argument("--batches", default="1,8")
    args = ap.parse_args()
    import torch
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.runs} timed runs after a warm-up\n")
    print(f"{'model':28} {'batch':>5} {'swift ms':>10} {'torch ms':>10} {'ratio':>7}")
    for name in args.models.split(","):
        for b in map(int, args.batches.split(",")):
            s = swift_median(args.weights, name, b, args.runs)
            t = torch_median(name, b, args.runs)
            print(f"{name:28} {b:5} {s:10.1f} {t:10.1f} {s / t:6.2f}x", flush=True)


if __name__ == "__main__":
    main()
