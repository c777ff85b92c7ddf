#!/usr/bin/env python3
"""Forward benchmark of the token-input model: `weights bench --model annotated_transformer` against the seed's
PyTorch `make_model` (Tools/make_seq_fixtures.py) on this CPU, in one run.

Both sides: src_vocab = tgt_vocab = 8000, N 6, d_model 512, d_ff 2048, 8 heads; batch B, source and target length L
(default 64); random token ids, `src_mask` all true, `tgt_mask` = the seed's `subsequent_mask`; the output is the
decoder's (`Transformer.forward`, no generator). PyTorch runs in eval mode under inference_mode with its default
thread count. Medians of K runs after a warm-up; ratio = Swift / PyTorch (lower is better).

Needs torch, numpy in the Python that runs it and `swift build -c release`. Usage:
    python Tools/bench_seq.py [--runs 10] [--weights .build/release/weights] [--seq-len 64] [--batches 1]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = ["src_vocab=8000", "tgt_vocab=8000"]


def torch_median(batch, seq_len, runs):
    import torch
    sys.path.insert(0, HERE)
    import make_seq_fixtures as f
    torch.manual_seed(0)
    model = f.make_model(8000, 8000).eval()
    src = torch.randint(0, 8000, (batch, seq_len))
    tgt = torch.randint(0, 8000, (batch, seq_len))
    src_mask = torch.ones(batch, 1, seq_len, dtype=torch.bool)
    tgt_mask = f.subsequent_mask(seq_len).expand(batch, seq_len, seq_len)
    times = []
    with torch.inference_mode():
        model(src, tgt, src_mask, tgt_mask)
        for _ in range(runs):
            t0 = time.perf_counter()
            model(src, tgt, src_mask, tgt_mask)
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def swift_median(weights, batch, seq_len, runs):
    cmd = [weights, "bench", "--model", "annotated_transformer", "--batch", str(batch), "--seq-len", str(seq_len),
           "--runs", str(runs), "--json"]
    for c in CONFIG:
        cmd += ["--config", c]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)["median_ms"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--weights", default=".build/release/weights")
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--batches", default="1")
    args = ap.parse_args()
    import torch
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.runs} timed runs after a warm-up\n")
    print(f"{'model':24} {'batch':>5} {'len':>4} {'swift ms':>10} {'torch ms':>10} {'ratio':>7}")
    for b in map(int, args.batches.split(",")):
        s = swift_median(args.weights, b, args.seq_len, args.runs)
        t = torch_median(b, args.seq_len, args.runs)
        print(f"{'annotated_transformer':24} {b:5} {args.seq_len:4} {s:10.1f} {t:10.1f} {s / t:6.2f}x", flush=True)


if __name__ == "__main__":
    main()
