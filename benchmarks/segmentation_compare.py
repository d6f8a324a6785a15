"""FCN-32s, FCN-16s, FCN-8s and U-Net trained with one budget on the same scenes; a table and a figure.

    python benchmarks/segmentation_compare.py --out runs/seg-compare            # trains the missing runs
    python benchmarks/segmentation_compare.py --out runs/seg-compare --epochs 10 --models unet fcn8s

Each model is trained by ``cnnlab segment train`` (the same engine, data, epochs, batch, optimizer,
precision and augmentation; ``--width`` 16), one after the other (never two at once on 2 cores).
A run folder that already holds a finished run is reused. Then every run's best weights segment
the same test scenes: the markdown table (mIoU and boundary mIoU, background included; per-class
IoU; parameters; MACs per 64×64 image; training time) goes to stdout and ``<out>/compare.md``, the
figure (image | truth | each model) to ``<out>/compare.png``.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from cnnlab.analysis import analyze
from cnnlab.data.segmentation import load_segmentation
from cnnlab.train.runs import open_run
from cnnlab.train.tasks.semantic import evaluate
from cnnlab.viz.segmentation import plot_overlays

NAMES = {"fcn32s": "FCN-32s", "fcn16s": "FCN-16s", "fcn8s": "FCN-8s", "unet": "U-Net"}


def train(model: str, folder: Path, args: argparse.Namespace) -> None:
    if (folder / "test.json").is_file():
        return
    argv = [sys.executable, "-m", "cnnlab", "segment", "train", "--model", model, "--data", args.data,
            "--epochs", str(args.epochs), "--batch", str(args.batch), "--augment", args.augment,
            "--precision", args.precision, "--width", str(args.width), "--lr", str(args.lr), "--no-progress"]
    if args.channels_last:
        argv.append("--channels-last")
    argv += ["--resume", str(folder)] if (folder / "config.json").is_file() else ["--out", str(folder)]
    print(" ".join(argv[2:]), file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    subprocess.run(argv, check=True)
    (folder / "command_s.txt").write_text(f"{time.perf_counter() - t0:.1f}\n")   # the whole command, data included


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/seg-compare")
    p.add_argument("--models", nargs="+", default=["fcn32s", "fcn16s", "fcn8s", "unet"], choices=list(NAMES))
    p.add_argument("--data", default="scenes:fashion-mnist")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (Adam)")
    p.add_argument("--augment", default="flip")
    p.add_argument("--precision", default="bf16-amp")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--figure-images", type=int, default=6)
    args = p.parse_args()
    out = Path(args.out)
    for m in args.models:
        train(m, out / m, args)
    rows, preds = [], []
    data = None
    for m in args.models:
        run = open_run(out / m, "semantic")
        doc, model, mean, std = run.doc, run.model, run.mean, run.std
        if data is None:
            data = load_segmentation(args.data)
        r = evaluate(model, data.test, len(data.classes), mean, std, "cpu")
        shape = tuple(doc["data"]["shape"])
        with torch.device("meta"):
            macs = analyze(model.to("meta"), shape).total_macs
        history = [json.loads(json.dumps(h)) for h in _metrics(out / m)]
        train_s = sum(float(h["epoch_s"]) for h in history)
        wall = out / m / "command_s.txt"
        command_s = float(wall.read_text()) if wall.is_file() else float("nan")
        rows.append((m, r, doc["params"], macs, (train_s, command_s), len(history)))
        preds.append(r["preds"][:args.figure_images])
    assert data is not None
    classes = data.classes
    lines = [f"Scenes `{args.data}` ({len(data.train)} train / {len(data.val)} val / {len(data.test)} test, "
             f"{data.shape[1]}×{data.shape[2]}), {args.epochs} epochs, batch {args.batch}, Adam lr {args.lr}, "
             f"augment {args.augment}, "
             f"{args.precision}{', channels-last' if args.channels_last else ''}, width {args.width}; "
             f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}.",
             "",
             "| model | mIoU | boundary mIoU | pixel acc. | parameters | MACs / image | training steps | whole command |",
             "|---|---|---|---|---|---|---|---|"]
    for m, r, params, macs, (train_s, command_s), epochs in rows:
        lines.append(f"| {NAMES[m]} | {r['miou']:.4f} | {r['boundary_miou']:.4f} | {r['pixel_accuracy']:.4f} | "
                     f"{params:,} | {macs / 1e6:,.1f} M | {train_s / 60:.1f} min ({epochs} epochs) | "
                     f"{command_s / 60:.1f} min |")
    lines += ["", "| class | " + " | ".join(NAMES[m] for m, *_ in rows) + " |",
              "|---|" + "---|" * len(rows)]
    for c, name in enumerate(classes):
        cells = ["—" if r["iou"][c] is None else f"{r['iou'][c]:.3f}" for _, r, *_ in rows]
        lines.append(f"| {c} {name} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    (out / "compare.md").write_text(text)
    print(text)
    n = args.figure_images
    plot_overlays(data.test.images[:n], data.test.masks[:n], preds, [NAMES[m] for m, *_ in rows], classes,
                  out / "compare.png", "the same test scenes segmented by each network")
    print(f"figure: {out / 'compare.png'}", file=sys.stderr)


def _metrics(folder: Path) -> list[dict[str, str]]:
    import csv

    with open(folder / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


if __name__ == "__main__":
    main()
