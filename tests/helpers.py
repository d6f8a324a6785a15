"""Helpers the test modules share (no test module imports another)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file

from cnnlab.cli.main import main
from tests.zygote import run_cnnlab

TINY = """\
input: [1, 8, 8]
layers:
  - conv: {filters: 8, kernel: 3, padding: same, activation: relu}
  - maxpool: {size: 2}
  - flatten
  - dense: {units: 10}
"""
SMALL = "small_cnn"


def run(capsys, *argv: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    """``cnnlab ARGV`` in this process: (exit status, stdout, stderr)."""
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse errors
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def run_here_ok(capsys, *argv: str) -> str:  # type: ignore[no-untyped-def]
    """``cnnlab ARGV`` in this process, which must succeed: its stdout."""
    code, out, err = run(capsys, *argv)
    assert code == 0, err[-2000:]
    return out


def cli(*argv: str) -> list[str]:
    """The command line of ``cnnlab ARGV`` in a fresh Python process."""
    return [sys.executable, "-m", "cnnlab", *argv]


def run_ok(*args: str, env: dict | None = None, fresh: bool = False) -> subprocess.CompletedProcess:
    """``cnnlab ARGS`` in a process of its own (:func:`tests.zygote.run_cnnlab`), which must succeed."""
    p = run_cnnlab(*args, env=env, fresh=fresh)
    assert p.returncode == 0, p.stderr[-2000:]
    return p


def torchrun_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a test's torchrun: one thread per process (two processes on the CI's 2 cores), and the
    test's folder as TMPDIR (torchrun leaves a torchelastic_* log folder there at each start)."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp_path)}


def weights(run_folder: Path, name: str = "last.safetensors") -> dict[str, torch.Tensor]:
    """The tensors of a run's weights file."""
    return load_file(str(run_folder / name))


def same(a: dict, b: dict, atol: float = 0.0) -> bool:
    """Two state dicts with the same keys and (within ``atol``) the same values."""
    return a.keys() == b.keys() and all(torch.allclose(a[k].float(), b[k].float(), atol=atol, rtol=0) for k in a)


def make_folder(root: Path, classes=("cat", "dog"), per_class: int = 6, size=(12, 10), mode="RGB") -> None:  # type: ignore[no-untyped-def]
    """An image folder ``root/<class>/<i>.png`` of seeded random images."""
    rng = np.random.default_rng(1)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            arr = rng.integers(0, 256, (*size, 3) if mode == "RGB" else size, dtype=np.uint8)
            Image.fromarray(arr, mode).save(root / c / f"{i}.png")


COCO_SIZES = [(48, 40), (40, 56), (64, 48)]          # (W, H): mixed, non-square, none a multiple of 32


def coco_images(folder: Path, n: int, name, seed: int = 0) -> dict:  # type: ignore[no-untyped-def]
    """``n`` images written into ``folder`` (sizes cycling through :data:`COCO_SIZES`) and their COCO document:
    categories 3 "square" and 7 "bar", one object each; ``name(i)`` is the ``file_name`` (sub-folders allowed)."""
    rng = np.random.default_rng(seed)
    doc: dict = {"images": [], "annotations": [], "categories": [{"id": 3, "name": "square"}, {"id": 7, "name": "bar"}]}
    for i in range(n):
        w, h = COCO_SIZES[i % 3]
        img = np.full((h, w, 3), 20, np.uint8)
        x0, y0 = int(rng.integers(2, w - 20)), int(rng.integers(2, h - 20))
        cat, (bw, bh) = (3, (14, 14)) if i % 2 else (7, (16, 6))
        img[y0:y0 + bh, x0:x0 + bw] = 200
        path = folder.joinpath(*name(i).split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(path)
        doc["images"].append({"id": i + 1, "file_name": name(i), "width": w, "height": h})
        doc["annotations"].append({"id": i + 1, "image_id": i + 1, "category_id": cat, "iscrowd": 0,
                                   "segmentation": [[x0, y0, x0 + bw, y0, x0 + bw, y0 + bh, x0, y0 + bh]],
                                   "bbox": [x0, y0, bw, bh], "area": bw * bh})
    return doc


def voc_palette() -> list[int]:
    """The devkit's colour map (VOCdevkit's VOClabelcolormap.m): bit-interleaved class index."""
    pal = []
    for k in range(256):
        r = g = b = 0
        c = k
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal += [r, g, b]
    return pal


def make_voc(root: Path, n_train: int = 8, n_val: int = 4) -> Path:
    """``root/VOCdevkit/VOC2012`` as downloaded: JPEGs, palette PNG masks with 255 borders, split lists."""
    voc = root / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation", "Annotations"):
        (voc / sub).mkdir(parents=True)
    rng = np.random.default_rng(3)
    ids = [f"2007_{i:06d}" for i in range(n_train + n_val)]
    for k, i in enumerate(ids):
        w, h = [(50, 37), (37, 50), (45, 45)][k % 3]
        cls = 1 + k % 20
        mask = np.zeros((h, w), np.uint8)
        mask[5:20, 6:25] = 255                                     # the object's white border
        mask[7:18, 8:23] = cls
        img = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
        img[mask == cls] = 220
        Image.fromarray(img).save(voc / "JPEGImages" / f"{i}.jpg", quality=95)
        pm = Image.fromarray(mask, "P")
        pm.putpalette(voc_palette())
        pm.save(voc / "SegmentationClass" / f"{i}.png")
    (voc / "ImageSets/Segmentation/train.txt").write_text("\n".join(ids[:n_train]) + "\n")
    (voc / "ImageSets/Segmentation/val.txt").write_text("\n".join(ids[n_train:]) + "\n")
    return voc




def run_many(argvs: list[list[str]], timeout: float = 300, env: dict | None = None) -> list[tuple[int, str, str]]:
    """Several ``cnnlab ARGV``, each in a process of its own (:func:`tests.zygote.run_cnnlab`): each one's exit
    status, stdout and stderr. A hang fails the caller through ``timeout`` (seconds, each command)."""
    results = []
    for argv in argvs:
        p = run_cnnlab(*argv, env=env, timeout=timeout)
        results.append((p.returncode, p.stdout, p.stderr))
    return results
