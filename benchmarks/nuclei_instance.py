"""Mask R-CNN on real nuclei: stardist's 512×512 fluorescence image (2018 Data Science Bowl), 125 labelled nuclei.

    pip install --no-deps stardist==0.9.2 tifffile      # only for its two data files; stardist is not imported
    python benchmarks/nuclei_instance.py --out runs/nuclei

The PyPI wheel ``stardist`` ships ``stardist/data/images/img2d.tif`` and ``mask2d.tif`` (an
instance label image: one integer per nucleus). They are found through ``importlib.metadata``
and read with ``tifffile``. The script writes an instance-label folder (``images/`` 8-bit PNG +
``instances/`` 16-bit PNG, the layout ``cnnlab segment train --task instance`` reads):

- ``train/``: 128×128 tiles of the **left half**, rows 0–383, every 32 px (45 overlapping tiles);
- ``val/``:   the two 128×128 tiles of the left half's rows 384–511;
- ``test/``:  the eight non-overlapping 128×128 tiles of the **right half** (no pixel seen in training).

Nuclei cut by a tile edge keep their visible part; parts under ``--min-area`` pixels are dropped
(slivers no annotator would draw). Then it trains with ``cnnlab segment train --task instance`` and
prints the test report (COCO AP by pycocotools).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, files
from pathlib import Path

import numpy as np

TILE = 128


def stardist_files() -> tuple[Path, Path]:
    try:
        found = {Path(str(f)).name: Path(str(f.locate())) for f in files("stardist") or []}
    except PackageNotFoundError:
        raise SystemExit("stardist is not installed: pip install --no-deps stardist==0.9.2 tifffile") from None
    return found["img2d.tif"], found["mask2d.tif"]


def write_tiles(image: np.ndarray, label: np.ndarray, out: Path, name: str, corners: list[tuple[int, int]],
                min_area: int) -> int:
    from PIL import Image

    (out / name / "images").mkdir(parents=True)
    (out / name / "instances").mkdir(parents=True)
    kept = 0
    for k, (y, x) in enumerate(corners):
        img = image[y:y + TILE, x:x + TILE]
        lab = label[y:y + TILE, x:x + TILE].copy()
        ids, counts = np.unique(lab, return_counts=True)
        for i, c in zip(ids, counts):
            if i and c < min_area:
                lab[lab == i] = 0
        kept += len(np.unique(lab)) - (0 in lab)
        Image.fromarray(img).save(out / name / "images" / f"{k:03d}.png")
        Image.fromarray(lab.astype(np.uint16)).save(out / name / "instances" / f"{k:03d}.png")
    return kept


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/nuclei"))
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--min-area", type=int, default=20, help="drop nucleus parts under this many pixels")
    args, train_args = ap.parse_known_args()
    import tifffile

    img_path, mask_path = stardist_files()
    image, label = tifffile.imread(img_path), tifffile.imread(mask_path)
    scale = 255.0 / max(float(image.max()), 1.0) if image.max() > 255 else 1.0
    image = (image.astype(np.float64) * scale).round().astype(np.uint8)
    data = args.out / "data"
    if not data.is_dir():
        train = [(y, x) for y in range(0, 384 - TILE + 1, 32) for x in range(0, 256 - TILE + 1, 32)]
        counts = {"train": write_tiles(image, label, data, "train", train, args.min_area),
                  "val": write_tiles(image, label, data, "val", [(384, 0), (384, 128)], args.min_area),
                  "test": write_tiles(image, label, data, "test", [(y, x) for y in range(0, 512, TILE)
                                                                   for x in (256, 384)], args.min_area)}
        (data / "classes.txt").write_text("background\nnucleus\n")
        (data / "tiles.json").write_text(json.dumps({"source": str(img_path), "tile": TILE,
                                                     "instances_per_split": counts}, indent=2))
    run = args.out / "run"
    t0 = time.perf_counter()
    if not (run / "test.json").is_file():
        subprocess.run([sys.executable, "-m", "cnnlab", "segment", "train", "--task", "instance", "--data", str(data),
                        "--epochs", str(args.epochs), "--batch", "8", "--augment", "flip", "--out", str(run),
                        "--no-progress", *train_args], check=True)
    report = json.loads((run / "test.json").read_text())
    m, b = report["mask"], report["box"]
    print(f"| data | test tiles | nuclei | mask AP50 | mask AP | box AP50 | box AP | time |\n|---|---:|---:|---:|---:|---:|---:|---:|\n"
          f"| stardist img2d.tif, right half | {report['images']} | {report['instances']} | {m['ap50']:.3f} | "
          f"{m['ap']:.3f} | {b['ap50']:.3f} | {b['ap']:.3f} | {time.perf_counter() - t0:.0f} s |")


if __name__ == "__main__":
    main()
