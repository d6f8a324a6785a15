"""Throughput of ``cnnlab train`` vs a minimal hand-written PyTorch loop, and the cost of augmentation.

All runs train cnnlab's small_cnn (src/cnnlab/train/small_cnn.yaml) for one epoch of Fashion-MNIST
(54,000 images after the validation split) at the same batch, in fresh processes, alternated
``--repeats`` times in ABBA order (these shared 2-core machines drift by ±10 % over minutes: only
alternated, repeated runs are worth quoting, and the ratio of the runs of one round says more than the
ratio of medians). images/s counts every training step from the first to the last (cnnlab: its progress bar,
batch making (between steps on CPU), schedule, metrics and bookkeeping included; validation, test and file writing
excluded on both sides).

    python benchmarks/train_overhead.py                 # needs Debian's dataset-fashion-mnist
    python benchmarks/train_overhead.py --data digits --epochs 20
    python benchmarks/train_overhead.py --loops minimal none --repeats 5     # the loop's overhead alone
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

MINIMAL = r"""
import sys, time, torch, torch.nn.functional as F
from cnnlab.data import load_data
from cnnlab.train.model import build_model
from cnnlab.data.normalise import channel_stats, normalise
data_name, epochs, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
data = load_data(data_name)
model, _ = build_model("small_cnn", data.shape, len(data.classes))
mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in channel_stats(data.train))
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
model.train()
seen, start = 0, time.perf_counter()
for _ in range(epochs):
    perm = torch.randperm(len(data.train))
    for i in range(len(data.train) // batch):
        idx = perm[i * batch:(i + 1) * batch]
        x, y = normalise(data.train.images[idx], mean, std), data.train.labels[idx]
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        seen += len(idx)
print(seen / (time.perf_counter() - start))
"""


def minimal(data: str, epochs: int, batch: int) -> float:
    """images/s of a plain loop: shuffle, slice, normalise, forward, cross-entropy, backward, AdamW step."""
    out = subprocess.run([sys.executable, "-c", MINIMAL, data, str(epochs), str(batch)], capture_output=True,
                         text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def cnnlab_run(data: str, epochs: int, batch: int, augment: str) -> dict[str, float]:
    """images/s, seconds making or waiting for batches and computing, from a ``cnnlab train`` run's metrics.csv."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        subprocess.run([sys.executable, "-m", "cnnlab", "train", "--data", data, "--epochs", str(epochs),
                        "--batch", str(batch), "--augment", augment, "--no-progress", "--out", str(out)],
                       capture_output=True, text=True, check=True)
        rows = list(csv.DictReader((out / "metrics.csv").open()))
    return {"images_per_s": statistics.fmean(float(r["images_per_s"]) for r in rows),
            "data_s": sum(float(r["data_s"]) for r in rows), "compute_s": sum(float(r["compute_s"]) for r in rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="fashion-mnist")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=2, help="rounds of the runs, alternated")
    ap.add_argument("--loops", nargs="+", default=["minimal", "none", "basic", "strong"],
                    choices=["minimal", "none", "basic", "strong"],
                    help="which runs (minimal and none are always kept: the others are compared with them)")
    args = ap.parse_args()
    results: dict[str, list[dict[str, float]]] = {k: [] for k in ("minimal", "none", "basic", "strong")
                                                  if k in {"minimal", "none", *args.loops}}
    for r in range(args.repeats):
        names = list(results) if r % 2 == 0 else list(results)[::-1]     # ABBA: drift hits every loop alike
        for name in names:
            res = ({"images_per_s": minimal(args.data, args.epochs, args.batch), "data_s": 0.0, "compute_s": 0.0}
                   if name == "minimal" else cnnlab_run(args.data, args.epochs, args.batch, name))
            results[name].append(res)
            print(f"round {r + 1}: {name}: {json.dumps(res)}", file=sys.stderr, flush=True)
    speed = {k: statistics.median(x["images_per_s"] for x in v) for k, v in results.items()}
    paired = {k: [x["images_per_s"] / m["images_per_s"] for x, m in zip(v, results["minimal"])]
              for k, v in results.items()}
    print(f"machine: {platform.processor() or platform.machine()}, kernels {torch.backends.cpu.get_cpu_capability()}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}; {args.data}, batch {args.batch}, "
          f"{args.epochs} epoch(s) per run, {args.repeats} rounds in ABBA order (median)\n")
    print("| loop | images/s (each round) | median | vs minimal (medians) | vs minimal, paired by round: median "
          "(range) | vs cnnlab, augment none | making or waiting for batches |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, runs in results.items():
        label = "minimal hand-written loop" if name == "minimal" else f"`cnnlab train --augment {name}`"
        each = ", ".join(f"{x['images_per_s']:,.0f}" for x in runs)
        waited = "" if name == "minimal" else (f"{statistics.fmean(x['data_s'] for x in runs):.2f} s of "
                                               f"{statistics.fmean(x['compute_s'] + x['data_s'] for x in runs):.1f} s")
        vs_none = "" if name == "minimal" else f"{speed[name] / speed['none']:.3f}"
        pairs = paired[name]
        pair = "" if name == "minimal" else f"{statistics.median(pairs):.3f} ({min(pairs):.3f}–{max(pairs):.3f})"
        print(f"| {label} | {each} | {speed[name]:,.0f} | {speed[name] / speed['minimal']:.3f} | {pair} | {vs_none} "
              f"| {waited} |")


if __name__ == "__main__":
    main()
