"""The docs/fcn.md figure: a canvas of Fashion-MNIST test items scanned by an FCN made from a trained run.

    cnnlab train --model small_cnn_valid --data fashion-mnist --out runs/fashion-valid
    cnnlab fcn convert runs/fashion-valid --out runs/fashion-fcn
    python benchmarks/fcn_figure.py runs/fashion-fcn --out docs/img    # writes fcn_canvas.png and the heatmaps

The canvas (112×112) holds six test images (never seen in training) at known
places on a black background; the script prints which item is where, so the
heatmaps can be read against the truth.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from cnnlab.data import load_data

PLACES = [(4, 6), (10, 60), (44, 30), (70, 2), (76, 80), (40, 84)]   # (row, col) of each item's top-left corner


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("fcn", help="a folder written by 'cnnlab fcn convert'")
    ap.add_argument("--out", default="docs/img", help="where fcn_canvas.png and fcn_canvas_heatmaps.png go")
    ap.add_argument("--size", type=int, default=112)
    args = ap.parse_args()
    data = load_data("fashion-mnist")
    rng = np.random.default_rng(3)
    picks = rng.choice(len(data.test), len(PLACES), replace=False)
    canvas = np.zeros((args.size, args.size), dtype=np.uint8)
    for k, (y, x) in zip(picks, PLACES):
        canvas[y:y + 28, x:x + 28] = np.maximum(canvas[y:y + 28, x:x + 28], data.test.images[k, 0].numpy())
        print(f"{data.classes[int(data.test.labels[k])]} at rows {y}–{y + 27}, columns {x}–{x + 27}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(canvas).save(out / "fcn_canvas.png")
    subprocess.run([sys.executable, "-m", "cnnlab", "fcn", "scan", args.fcn, str(out / "fcn_canvas.png"),
                    "--out", str(out)], check=True)
    (out / "fcn_canvas.npy").unlink(missing_ok=True)      # the figure is what the docs need
    (out / "fcn_canvas.json").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
