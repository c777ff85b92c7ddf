#!/usr/bin/env python3
"""The speed benchmark: every target of the speed issue measured side by side in one run, with ratios and a verdict.

Sections (each a median over several runs, contenders interleaved so drift affects all alike):
  forward   `weights bench` vs PyTorch (eval, inference_mode, its default thread count) on the same seeded
            architecture and a random N×3×224×224 input (256×256 for MobileViT and the vit-pytorch models): ResNet-18,
            ResNet-50, ViT-B/16, MobileViT-XS, and vit-pytorch's ViT (`lucidrains_vit`) and SimpleViT at seed 000's
            configuration, at batch 1 and 8 (`--models` picks some; also lucidrains_vit_prenorm, crate).
  convert   `weights convert` of a jx_vit_base_patch16_224_in21k-shaped checkpoint (torch zip, ~413 MB) vs `cp` of it
            vs Python (`torch.load` + `safetensors.save_file`), with each process's peak RSS.
  huge      `weights convert` of a vit_huge_patch14_224_in21k-shaped checkpoint (~2.6 GB) vs `cp`, peak RSS.
  sequence  `weights bench --model annotated_transformer --seq-len 64` vs the seed's make_model (vocab 8000),
            random token ids, no padding, causal tgt_mask (Tools/bench_seq.py).
  shards    the huge checkpoint saved by huggingface_hub as 4 safetensors shards (`save_torch_state_dict`,
            max_shard_size 700MB), then `weights convert DIR -o OUT --max-shard-size 700MB` (4 shards out) vs `cp -r` of
            the same folder, peak RSS (target <= 128 MiB). Needs huggingface_hub.
  dcp       `weights convert` of a ~413 MB PyTorch Distributed Checkpoint saved by 4 ranks (DTensor Shard(0), the
            convert section's tensors; Tools/bench_dcp.py) to one safetensors file vs `cp -r` of the checkpoint
            directory vs Python (`dcp_to_torch_save` + `torch.load` + `save_file`), with each process's peak RSS.
  inspect   `weights inspect` of the 413 MB checkpoint, whole process.
  load      loading the converted safetensors onto vit_base_patch16_224_in21k vs read() of the same file's bytes
            into a fresh buffer, in one process (`weights bench --load`).

Needs torch, torchvision and safetensors in the Python that runs it, GNU time (/usr/bin/time, for peak RSS), and a
release build (`make release`). Generated checkpoints are cached in --workdir (~6 GB with the huge one).
Usage:
    python Tools/bench.py [--runs 10] [--weights .build/release/weights] [--workdir /tmp/weights-bench]
                          [--sections forward,sequence,convert,huge,dcp,shards,inspect,load] [--models resnet18,resnet50,...]
                          [--json results.json]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench_convert as bc  # noqa: E402  (checkpoint generation, cp/convert timing with peak RSS)
import bench_dcp  # noqa: E402  (the 4-rank Distributed Checkpoint and Python's conversion of it)
import bench_forward as bf  # noqa: E402  (PyTorch models and timing, `weights bench` driver)

MiB = 2 ** 20
PY_CONVERT = bc.PY_CONVERT

# Reference, not a contender: the same kernel copy `cp` makes (one copy_file_range of the whole file) but into an
# output offset shifted by 7560 bytes, as any format change shifts it (a safetensors header; tensors packed without
# the zip's local headers). On kernels with large page-cache folios (6.x) `cp`'s same-offset copy moves whole folios
# and is markedly faster than any shifted copy, so this line shows the floor a converter can reach.
SHIFTED_COPY = r"""
import os, sys
fi = os.open(sys.argv[1], os.O_RDONLY)
fo = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
left, src, dst = os.fstat(fi).st_size, 0, 7560
while left > 0:
    n = os.copy_file_range(fi, fo, left, src, dst)
    if n <= 0:
        sys.exit("copy_file_range stopped")
    left, src, dst = left - n, src + n, dst + n
"""


class Results:
    def __init__(self):
        self.rows = []     # printed measurements
        self.targets = []  # (description, measured text, met)

    def target(self, what, measured, met):
        self.targets.append((what, measured, met))
        print(f"  target: {what}: {measured} -> {'MET' if met else 'NOT MET'}", flush=True)


def median_of(times):
    return statistics.median(times)


def section_forward(args, res):
    import torch
    print(f"\n== forward: weights bench vs torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"median of {args.runs} runs after a warm-up (batch 8: {args.runs_large})", flush=True)
    print(f"{'model':24} {'batch':>5} {'swift ms':>10} {'torch ms':>10} {'ratio':>7}")
    limits = {"resnet18": (1.0, 0.75), "resnet50": (1.0, None), "vit_base_patch16_224": (0.5, None), "mobilevit_xs": (1.0, None)}
    for name in [m for m in args.models.split(",") if m]:
        for batch in (1, 8):
            runs = args.runs if batch == 1 else args.runs_large
            s = bf.swift_median(args.weights, name, batch, runs)
            t = bf.torch_median(name, batch, runs)
            ratio = s / t
            print(f"{name:24} {batch:5} {s:10.1f} {t:10.1f} {ratio:6.2f}x", flush=True)
            res.rows.append({"section": "forward", "model": name, "batch": batch, "swift_ms": s, "torch_ms": t,
                             "ratio": ratio})
            limit, stretch = limits.get(name, (1.0, None))
            res.target(f"{name} batch {batch} forward <= {limit}x PyTorch", f"{ratio:.2f}x", ratio <= limit)
            if stretch:
                res.target(f"(stretch) {name} batch {batch} forward <= {stretch}x PyTorch", f"{ratio:.2f}x",
                           ratio <= stretch)


def section_sequence(args, res):
    """annotated_transformer (src/tgt vocab 8000) at source/target length 64, batch 1, vs the seed's make_model."""
    import bench_seq as bs
    print(f"\n== sequence: annotated_transformer, length 64, median of {args.runs} runs after a warm-up", flush=True)
    s = bs.swift_median(args.weights, 1, 64, args.runs)
    t = bs.torch_median(1, 64, args.runs)
    print(f"{'annotated_transformer':24} {1:5} {s:10.1f} {t:10.1f} {s / t:6.2f}x", flush=True)
    res.rows.append({"section": "sequence", "model": "annotated_transformer", "batch": 1, "seq_len": 64, "swift_ms": s,
                     "torch_ms": t, "ratio": s / t})
    res.target("annotated_transformer length 64 forward <= 1.0x PyTorch", f"{s / t:.2f}x", s / t <= 1.0)


def checkpoint(args, shape):
    src = os.path.join(args.workdir, f"jx_{shape}.pth" if "base" in shape else f"{shape}.pth")
    if not os.path.exists(src):
        print(f"generating {src} ...", flush=True)
        bc.make_checkpoint(src, shape)
    with open(src, "rb") as f:  # warm the page cache so every contender reads from memory
        while f.read(1 << 24):
            pass
    return src


def time_converts(args, src, cases, runs):
    out = os.path.join(args.workdir, "out.safetensors")
    results = {}
    for _ in range(runs):
        for name, cmd in cases:
            bc.drop(out)
            dt, rss = bc.run(cmd(out))
            results.setdefault(name, []).append((dt, rss))
    bc.drop(out)
    return {name: (median_of([t for t, _ in v]), max(r for _, r in v)) for name, v in results.items()}


def section_convert(args, res, shape, runs, python, rss_limit, time_limit):
    src = checkpoint(args, shape)
    size = os.path.getsize(src)
    print(f"\n== convert {os.path.basename(src)} ({size / MiB:.0f} MiB) to safetensors: median of {runs} runs, "
          f"peak RSS (GNU time {'yes' if bc.GNU_TIME else 'NOT FOUND: wait4 over-estimate'})", flush=True)
    cases = [("cp", lambda out: ["cp", src, out]),
             ("(ref) shifted copy_file_range", lambda out: [sys.executable, "-S", "-c", SHIFTED_COPY, src, out]),
             ("weights convert", lambda out: [args.weights, "convert", src, "-o", out, "--force"])]
    if python:
        cases.append(("python torch.load+save_file", lambda out: [sys.executable, "-c", PY_CONVERT, src, out]))
    meds = time_converts(args, src, cases, runs)
    cp = meds["cp"][0]
    print(f"{'command':30} {'median s':>9} {'vs cp':>7} {'peak RSS MiB':>13}")
    for name, _ in cases:
        t, rss = meds[name]
        print(f"{name:30} {t:9.3f} {t / cp:6.2f}x {rss:13.1f}")
        res.rows.append({"section": f"convert {shape}", "command": name, "seconds": t, "vs_cp": t / cp,
                         "peak_rss_mib": rss, "bytes": size})
    t, rss = meds["weights convert"]
    if time_limit:
        res.target(f"convert {shape} <= {time_limit}x cp", f"{t / cp:.2f}x ({t:.3f} s vs {cp:.3f} s)",
                   t <= time_limit * cp)
    res.target(f"convert {shape} peak RSS <= {rss_limit} MiB", f"{rss:.0f} MiB", rss <= rss_limit)
    return src


SHARD = r"""
import os, shutil, sys, torch
from huggingface_hub import save_torch_state_dict
sd = torch.load(sys.argv[1], map_location="cpu", weights_only=True, mmap=True)
tmp = sys.argv[2] + ".tmp"
shutil.rmtree(tmp, ignore_errors=True)
os.makedirs(tmp)
save_torch_state_dict(sd, tmp, max_shard_size=sys.argv[3])
os.replace(tmp, sys.argv[2])
"""


def section_shards(args, res, runs, limit="700MB"):
    shape = "vit_huge_patch14_224_in21k"
    folder = os.path.join(args.workdir, f"{shape}-hf-shards")
    if not os.path.exists(folder):
        src = checkpoint(args, shape)
        print(f"sharding {os.path.basename(src)} with huggingface_hub ({limit}) ...", flush=True)
        subprocess.run([sys.executable, "-c", SHARD, src, folder, limit], check=True)
    names = sorted(os.listdir(folder))
    size = sum(os.path.getsize(os.path.join(folder, n)) for n in names)
    for n in names:  # warm the page cache
        with open(os.path.join(folder, n), "rb") as f:
            while f.read(1 << 24):
                pass
    out = os.path.join(args.workdir, "out-shards")
    cases = [("cp -r", lambda: ["cp", "-r", folder, out]),
             ("weights convert (4 shards out)", lambda: [args.weights, "convert", folder, "-o", out, "--max-shard-size", limit])]
    results = {}
    for _ in range(runs):
        for name, cmd in cases:
            shutil.rmtree(out, ignore_errors=True)
            results.setdefault(name, []).append(bc.run(cmd()))
    produced = sorted(os.listdir(out))
    shutil.rmtree(out, ignore_errors=True)
    meds = {name: (median_of([t for t, _ in v]), max(r for _, r in v)) for name, v in results.items()}
    cp = meds["cp -r"][0]
    print(f"\n== shards: {len(names) - 1} huggingface_hub shards of {shape} ({size / MiB:.0f} MiB) -> {limit} shards "
          f"({len(produced) - 1} written): median of {runs} runs", flush=True)
    print(f"{'command':32} {'median s':>9} {'vs cp':>7} {'peak RSS MiB':>13}")
    for name, _ in cases:
        t, rss = meds[name]
        print(f"{name:32} {t:9.3f} {t / cp:6.2f}x {rss:13.1f}")
        res.rows.append({"section": "shards", "command": name, "seconds": t, "vs_cp": t / cp, "peak_rss_mib": rss, "bytes": size})
    t, rss = meds["weights convert (4 shards out)"]
    res.target("sharded ViT-H in -> 4 shards out, peak RSS <= 128 MiB", f"{rss:.0f} MiB ({t / cp:.2f}x cp)", rss <= 128)


def section_dcp(args, res, runs):
    src = os.path.join(args.workdir, "dcp_vit_base_4ranks")
    if not os.path.exists(os.path.join(src, ".metadata")):
        print(f"generating {src} (4 ranks) ...", flush=True)
        bench_dcp.make_dcp(src)
    size = 0
    for f in sorted(os.listdir(src)):
        with open(os.path.join(src, f), "rb") as fh:  # warm the page cache
            while fh.read(1 << 24):
                pass
        size += os.path.getsize(os.path.join(src, f))
    print(f"\n== dcp: {os.path.basename(src)} ({size / MiB:.0f} MiB in {len(os.listdir(src))} files) to one safetensors: "
          f"median of {runs} runs, peak RSS (GNU time {'yes' if bc.GNU_TIME else 'NOT FOUND: wait4 over-estimate'})", flush=True)
    copy_dir = os.path.join(args.workdir, "dcp_copy")

    def cp_dir(out):
        shutil.rmtree(copy_dir, ignore_errors=True)
        return ["cp", "-r", src, copy_dir]

    cases = [("cp -r (same bytes)", cp_dir),
             ("weights convert", lambda out: [args.weights, "convert", src, "-o", out, "--force"]),
             ("python dcp_to_torch_save+save_file", lambda out: [sys.executable, "-c", bench_dcp.PY_DCP_CONVERT, src, out])]
    meds = time_converts(args, src, cases, runs)
    shutil.rmtree(copy_dir, ignore_errors=True)
    cp = meds["cp -r (same bytes)"][0]
    print(f"{'command':36} {'median s':>9} {'vs cp':>7} {'peak RSS MiB':>13}")
    for name, _ in cases:
        t, rss = meds[name]
        print(f"{name:36} {t:9.3f} {t / cp:6.2f}x {rss:13.1f}")
        res.rows.append({"section": "dcp", "command": name, "seconds": t, "vs_cp": t / cp, "peak_rss_mib": rss, "bytes": size})
    t, rss = meds["weights convert"]
    res.target("dcp 4-rank checkpoint -> safetensors <= 2x cp", f"{t / cp:.2f}x ({t:.3f} s vs {cp:.3f} s)", t <= 2 * cp)
    res.target("dcp 4-rank checkpoint -> safetensors peak RSS <= 128 MiB", f"{rss:.0f} MiB", rss <= 128)


def section_inspect(args, res, src):
    runs = max(args.runs, 10)
    cmd = [args.weights, "inspect", src]
    subprocess.run(cmd, check=True, capture_output=True)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times.append((time.perf_counter() - t0) * 1e3)
    m = median_of(times)
    print(f"\n== inspect {os.path.basename(src)}: median {m:.1f} ms over {runs} runs (whole process, "
          f"min {min(times):.1f}, max {max(times):.1f})", flush=True)
    res.rows.append({"section": "inspect", "median_ms": m})
    res.target("inspect of the 413 MB checkpoint <= 50 ms", f"{m:.1f} ms", m <= 50)


def section_load(args, res, src):
    st = os.path.join(args.workdir, "load.safetensors")
    if not os.path.exists(st):
        subprocess.run([args.weights, "convert", src, "-o", st, "--force"], check=True, capture_output=True)
    out = subprocess.run([args.weights, "bench", "--model", "vit_base_patch16_224_in21k", "--load", st,
                          "--runs", str(max(args.runs, 5)), "--json"], check=True, capture_output=True, text=True)
    r = json.loads(out.stdout)
    print(f"\n== load {os.path.basename(st)} ({r['bytes'] / MiB:.0f} MiB) onto vit_base_patch16_224_in21k: "
          f"load {r['load_ms']:.1f} ms vs read() {r['read_ms']:.1f} ms ({r['ratio']:.2f}x)", flush=True)
    res.rows.append({"section": "load", **r})
    res.target("load safetensors into the model <= 1.0x read() of the file", f"{r['ratio']:.2f}x", r["ratio"] <= 1.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=10, help="timed runs for batch-1 forward, convert, inspect, load")
    ap.add_argument("--runs-large", type=int, default=5, help="timed runs for batch-8 forward")
    ap.add_argument("--runs-huge", type=int, default=3, help="timed runs for the ViT-H conversion")
    ap.add_argument("--weights", default=".build/release/weights")
    ap.add_argument("--workdir", default="/tmp/weights-bench")
    ap.add_argument("--sections", default="forward,sequence,convert,huge,dcp,shards,inspect,load")
    ap.add_argument("--models", default=",".join(["resnet18", "resnet50", "vit_base_patch16_224", "mobilevit_xs", "lucidrains_vit", "simple_vit"]),
                    help="forward section: models to time (default: %(default)s)")
    ap.add_argument("--json", help="also write all measurements and verdicts to this file")
    args = ap.parse_args()
    sections = set(args.sections.split(","))
    os.makedirs(args.workdir, exist_ok=True)
    if not os.path.exists(args.weights):
        sys.exit(f"{args.weights} not found: run `make release` first")
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown CPU")
    print(f"{os.cpu_count()} CPUs ({model}); weights binary {args.weights}", flush=True)

    res = Results()
    if "forward" in sections:
        section_forward(args, res)
    if "sequence" in sections:
        section_sequence(args, res)
    base = "vit_base_patch16_224_in21k"
    src = None
    if "convert" in sections:
        src = section_convert(args, res, base, args.runs, python=True, rss_limit=128, time_limit=1.5)
    if "huge" in sections:
        section_convert(args, res, "vit_huge_patch14_224_in21k", args.runs_huge, python=False, rss_limit=512,
                        time_limit=None)
    if "shards" in sections:
        section_shards(args, res, args.runs_huge)
    if "dcp" in sections:
        section_dcp(args, res, args.runs)
    if sections & {"inspect", "load"}:
        src = src or checkpoint(args, base)
        if "inspect" in sections:
            section_inspect(args, res, src)
        if "load" in sections:
            section_load(args, res, src)

    print("\n== summary")
    width = max(len(t[0]) for t in res.targets) if res.targets else 10
    for what, measured, met in res.targets:
        print(f"{'MET    ' if met else 'NOT MET'}  {what:{width}}  {measured}")
    if args.json:
        with open(args.json + ".tmp", "w") as f:
            json.dump({"measurements": res.rows,
                       "targets": [{"target": w, "measured": m, "met": ok} for w, m, ok in res.targets]}, f, indent=1)
        os.replace(args.json + ".tmp", args.json)


if __name__ == "__main__":
    main()
