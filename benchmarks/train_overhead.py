"""Throughput of ``cnnlab train`` vs a minimal hand-written PyTorch loop (same model, data, batch, threads).

Both train cnnlab's small_cnn (src/cnnlab/train/small_cnn.yaml) with Adam for one epoch of Fashion-MNIST
(54,000 images after the validation split) in this process, one after the
other; images/s counts every training step from the first to the last
(cnnlab: its progress bar, metrics and in-epoch bookkeeping included;
validation, test and file writing excluded on both sides).

    python benchmarks/train_overhead.py                 # needs Debian's dataset-fashion-mnist
    python benchmarks/train_overhead.py --data digits --epochs 20
"""

from __future__ import annotations

import argparse
import csv
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from cnnlab.data import load_data
from cnnlab.train.loop import TrainConfig, channel_stats, normalise, train
from cnnlab.train.model import build_model

SPEC = "small_cnn"


def minimal(data_name: str, epochs: int, batch: int) -> float:
    """A plain loop: shuffle, slice, normalise, forward, cross-entropy, backward, Adam step."""
    torch.manual_seed(0)
    data = load_data(data_name)
    model, _ = build_model(SPEC, data.shape, len(data.classes))
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in channel_stats(data.train))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=5e-4)
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
    return seen / (time.perf_counter() - start)


def cnnlab_run(data_name: str, epochs: int, batch: int) -> tuple[float, float, float]:
    """(images/s, data seconds, compute seconds) of ``cnnlab train`` from its metrics.csv."""
    out = Path(tempfile.mkdtemp()) / "run"
    try:
        train(TrainConfig(model=SPEC, data=data_name, epochs=epochs, batch=batch, out=str(out)), progress=True)
        rows = list(csv.DictReader((out / "metrics.csv").open()))
    finally:
        shutil.rmtree(out.parent)
    wall = sum(float(r["epoch_s"]) for r in rows)
    seen = sum(float(r["images_per_s"]) * float(r["epoch_s"]) for r in rows)
    return (sum(float(r["images_per_s"]) for r in rows) / len(rows), sum(float(r["data_s"]) for r in rows),
            sum(float(r["compute_s"]) for r in rows)) if wall and seen else (0.0, 0.0, 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="fashion-mnist")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    plain = minimal(args.data, args.epochs, args.batch)
    ours, data_s, compute_s = cnnlab_run(args.data, args.epochs, args.batch)
    print(f"machine: {platform.processor() or platform.machine()}, {args.threads} threads, torch {torch.__version__}; "
          f"{args.data}, batch {args.batch}, {args.epochs} epoch(s)\n")
    print("| loop | images/s | ratio |\n|---|---:|---:|")
    print(f"| minimal hand-written loop | {plain:,.0f} | 1.00 |")
    print(f"| cnnlab train | {ours:,.0f} | {ours / plain:.3f} |")
    print(f"\ncnnlab's time in data (index, augment, normalise) vs compute: {data_s:.1f} s vs {compute_s:.1f} s "
          f"({100 * data_s / max(data_s + compute_s, 1e-9):.1f} % data)")


if __name__ == "__main__":
    main()
