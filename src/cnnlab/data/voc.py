"""The Pascal VOC devkit as downloaded: ``JPEGImages/``, ``SegmentationClass/``, ``ImageSets/Segmentation/``.

    VOCdevkit/VOC2012/JPEGImages/2007_000032.jpg
    VOCdevkit/VOC2012/SegmentationClass/2007_000032.png      palette PNG: index = class, 255 = object border
    VOCdevkit/VOC2012/ImageSets/Segmentation/train.txt       one image id per line (1,464 in VOC2012)
    VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt         (1,449 in VOC2012)

``--data`` may name the year's folder (``VOC2012``) or the ``VOCdevkit`` folder above it (or the folder
above that) when it holds one year. The masks' palette indices are the classes (:data:`VOC_CLASSES`, the
devkit's order), 255 (the white object borders) is ignored by the loss and the metrics, as in the devkit's
own evaluation. ``train.txt`` is trained on (with ``--val-fraction`` of it held out to pick the best
weights); ``val.txt`` is the test split, whose mIoU is the figure papers report as "VOC val" (VOC's own
test masks are not public; a ``test.txt`` whose masks are present becomes the test split, and ``val.txt``
the validation split). Without the split lists every image with a mask is split at random.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cnnlab.data.sources import DataError, decode_image, read_lines, read_mask

VOC_CLASSES = ["background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor"]
MAX_LIST_BYTES = 64 << 20           # a split list of ids: VOC2012's trainval.txt is 34 KB
LIST_WHAT = "a split list holds one image id per line (2007_000032)"


def _is_year(folder: Path) -> bool:
    return (folder / "JPEGImages").is_dir() and (folder / "SegmentationClass").is_dir()


def find_voc(root: Path) -> Path | None:
    """The VOC year folder ``root`` names (itself, or the one year folder below it or below its ``VOCdevkit``);
    None when ``root`` is no VOC layout; an error when it holds several years."""
    if _is_year(root):
        return root
    try:
        years = sorted(p for base in (root, root / "VOCdevkit") if base.is_dir()
                       for p in base.iterdir() if p.is_dir() and _is_year(p))
    except OSError as err:
        raise DataError(f"{root}: cannot list it ({err.strerror}); check its permissions") from None
    if len(years) > 1:
        raise DataError(f"{root}: holds {len(years)} VOC folders ({', '.join(p.name for p in years)}); give "
                        f"--data {years[-1]} (one year)")
    return years[0] if years else None


def _split_lists(voc: Path) -> dict[str, Path]:
    """{cnnlab split: the devkit's list file}."""
    sets = voc / "ImageSets" / "Segmentation"
    found = {name: sets / f"{name}.txt" for name in ("train", "val", "test") if (sets / f"{name}.txt").is_file()}
    if "train" not in found:
        return {}
    test = found.get("test")
    first = read_lines(test, LIST_WHAT, MAX_LIST_BYTES)[:1] if test is not None else []
    if first and (voc / "SegmentationClass" / f"{first[0].split()[0]}.png").is_file():
        return {"train": found["train"], **({"val": found["val"]} if "val" in found else {}), "test": test}
    return {"train": found["train"], **({"test": found["val"]} if "val" in found else {})}


def _read_ids(voc: Path, ids: list[str], list_file: Path | None, channels: int | None, skip_bad: bool,
              skipped: list[tuple[str, str]]) -> tuple[list[torch.Tensor], list[np.ndarray], list[Path]]:
    def bad(path: Path, why: str) -> None:
        if not skip_bad:
            raise DataError(f"{path}: {why}; fix it, or pass --skip-bad to leave it out")
        skipped.append((str(path), why))

    xs, ms, paths = [], [], []
    for i in ids:
        image, mask = voc / "JPEGImages" / f"{i}.jpg", voc / "SegmentationClass" / f"{i}.png"
        where = f" (listed in {list_file})" if list_file else ""
        if not image.is_file() or not mask.is_file():
            bad(image if not image.is_file() else mask, f"missing{where}")
            continue
        try:
            x = decode_image(image, channels)
        except ValueError as err:
            bad(image, f"cannot decode the image ({err})")
            continue
        try:
            m = read_mask(mask)
        except ValueError as err:
            bad(mask, str(err))
            continue
        if tuple(x.shape[1:]) != m.shape:
            bad(mask, f"is {m.shape[1]}×{m.shape[0]} (W×H) but its image is {x.shape[2]}×{x.shape[1]}")
            continue
        xs.append(x)
        ms.append(m)
        paths.append(mask)
    return xs, ms, paths


def read_voc(voc: Path, channels: int | None, skip_bad: bool, skipped: list[tuple[str, str]]
             ) -> tuple[dict[str, tuple], list[str], str]:
    """The raw (images, masks, mask paths) of each split, VOC's 21 class names, and the layout's description."""
    lists = _split_lists(voc)
    if not lists:
        ids = sorted(p.stem for p in (voc / "SegmentationClass").glob("*.png"))
        raw = {"all": _read_ids(voc, ids, None, channels, skip_bad, skipped)}
        return raw, list(VOC_CLASSES), f"Pascal VOC devkit {voc.name} (no ImageSets/Segmentation lists: split at random)"
    raw, listed = {}, {}
    for split, path in lists.items():
        ids = [line.split()[0] for line in read_lines(path, LIST_WHAT, MAX_LIST_BYTES)]
        for i in ids:
            if "/" in i or "\\" in i or i in (".", ".."):
                raise DataError(f"{path}: '{i}' is no image id (ids name files in JPEGImages/, like 2007_000032)")
            if i in listed and listed[i] != path:
                raise DataError(f"{path}: {i} is listed in {listed[i].name} too; an image in two splits would be "
                                "tested on what it was trained on: remove it from one list")
            listed[i] = path
        raw[split] = _read_ids(voc, ids, path, channels, skip_bad, skipped)
    roles = ", ".join(f"{p.name} → {s}" for s, p in lists.items())
    return raw, list(VOC_CLASSES), f"Pascal VOC devkit {voc.name} (ImageSets/Segmentation: {roles})"
