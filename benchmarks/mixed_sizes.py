"""Images of different sizes in one semantic-segmentation folder: batched by size vs padded random batches.

cnnlab keeps each image at its own size on a canvas (docs/segmentation.md, "Any size"). A batch must be one
tensor, so a batch of mixed sizes is cropped to its largest image and the rest padded (pixels computed and
never scored). The engine can either take the shuffled order as it is ("pad": every batch mixes sizes) or
regroup it so that a batch holds one size where it can ("bucket", cnnlab.data.canvas.size_order, the default).
This script trains the same U-Net on the same seeded VOC-like folder both ways and reports the training speed
and the test mIoU.

    python benchmarks/mixed_sizes.py                 # 240 images of 6 VOC-like sizes (≈ 1/4 of VOC's)
    python benchmarks/mixed_sizes.py --epochs 3 --images 480

Prints a markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

# (W, H): VOC2012's most common sizes (500×375, 375×500, 500×333, 333×500, 500×500, 486×500) at a quarter
SIZES = [(125, 94), (94, 125), (125, 83), (83, 125), (125, 125), (122, 125)]


def make_folder(root: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        w, h = SIZES[int(rng.integers(len(SIZES)))]
        m = np.zeros((h, w), np.uint8)
        for k in range(1, 4):
            y, x = int(rng.integers(0, h - 20)), int(rng.integers(0, w - 20))
            m[y:y + int(rng.integers(10, h // 2)), x:x + int(rng.integers(10, w // 2))] = k
        img = np.stack([(m * 60 + rng.integers(0, 60, (h, w))) % 256] * 3, -1).astype(np.uint8)
        Image.fromarray(img).save(root / "images" / f"{i:04d}.png")
        Image.fromarray(m).save(root / "masks" / f"{i:04d}.png")


def train(data: Path, out: Path, epochs: int, bucket: bool) -> tuple[float, float]:
    """(training images per second over the epochs, test mIoU)."""
    from cnnlab.train.config import TrainConfig
    from cnnlab.train.engine import Trainer

    cfg = TrainConfig.for_task("semantic", data=str(data), epochs=epochs, batch=8, out=str(out),
                               model_args={"width": 8, "depth": 4})
    trainer = Trainer(cfg, progress=False)
    if not bucket:
        trainer.task.order = lambda split, order, batch: order          # type: ignore[method-assign]
    folder = trainer.run()
    rows = [dict(zip(*(r.split(",") for r in (lines[0], line))))
            for lines in [(folder / "metrics.csv").read_text().splitlines()] for line in lines[1:]]
    speed = sum(float(r["images_per_s"]) for r in rows) / len(rows)
    return speed, json.loads((folder / "test.json").read_text())["miou"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=240)
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        make_folder(data, args.images)
        results = {arm: train(data, Path(tmp) / arm, args.epochs, arm == "bucket") for arm in ("pad", "bucket")}
    print(f"{args.images} images of {len(SIZES)} sizes, U-Net width 8, batch 8, {args.epochs} epochs, "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, torch {torch.__version__}\n")
    print("| batching | training images/s | test mIoU |\n|---|---:|---:|")
    for arm, (speed, miou) in results.items():
        print(f"| {arm} | {speed:.1f} | {miou:.4f} |")
    print(f"\nbucket / pad speed: {results['bucket'][0] / results['pad'][0]:.2f}×")


if __name__ == "__main__":
    main()
