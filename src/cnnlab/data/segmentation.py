"""Semantic-segmentation data in memory: scenes drawn on the fly, or a folder of images and index masks.

    from cnnlab.data.segmentation import load_segmentation
    data = load_segmentation("scenes:fashion-mnist")      # or "path/to/folder"
    data.train.images.shape, data.train.masks.shape        # (N, C, H, W) uint8, (N, H, W) uint8

A folder holds ``images/`` and ``masks/`` with the same file stems (VOC's
``JPEGImages``/``SegmentationClass`` idea, cnnlab's ``scenes make`` layout),
either directly or in ``train/``, ``val/`` and ``test/`` sub-folders. Masks are
8-bit PNGs whose pixel values are class indices: 0 = background, 255 = ignore
(left out of the loss and the metrics). Palette PNGs (mode ``P``, as VOC
ships them) are read as their indices, not their colours. An optional
``classes.txt`` (one name per line, line *i* = index *i*) names the classes
and fixes their number; without it there are ``max index + 1`` classes.

A missing partner file, an image and mask of different sizes, a mask that is
not single-channel, or an index outside the classes is an error naming the
file — or, with ``skip_bad``, that pair is left out and listed in ``skipped``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cnnlab.data.canvas import make_canvas, own_size
from cnnlab.data.sources import DataError, decode_image, image_files, read_class_names, read_mask
from cnnlab.data.splits import three_way
from cnnlab.vocab import IGNORE_INDEX

IGNORE = IGNORE_INDEX


@dataclass
class SegSplit:
    """Images (N, C, H, W) uint8 and masks (N, H, W) uint8 class indices (255 = ignore); images of different
    sizes sit on a canvas with their own (H, W) in ``sizes`` (N, 2) (:mod:`cnnlab.data.canvas`)."""

    images: torch.Tensor
    masks: torch.Tensor
    sizes: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, idx: torch.Tensor) -> SegSplit:
        return SegSplit(self.images[idx], self.masks[idx], None if self.sizes is None else self.sizes[idx])

    def pair(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Image ``i`` (C, h, w) and its mask (h, w) at their own size."""
        h, w = own_size(self.images, self.sizes, i)
        return self.images[i, :, :h, :w], self.masks[i, :h, :w]

@dataclass
class SegData:
    """A segmentation data set in memory, split three ways; ``classes[0]`` is the background."""

    name: str
    classes: list[str]
    train: SegSplit
    val: SegSplit
    test: SegSplit
    flip_ok: bool = True
    skipped: list[tuple[str, str]] = field(default_factory=list)
    layout: str = "images/ + masks/ folders"
    resized: tuple[int, int] | None = None     # --size: every image and mask was resized to it

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the training canvas: the largest training image's H and W when sizes differ."""
        return tuple(self.train.images.shape[1:])  # type: ignore[return-value]


def _read_pairs(root: Path, channels: int | None, size: tuple[int, int] | None, skip_bad: bool,
                skipped: list[tuple[str, str]]) -> tuple[list[torch.Tensor], list[np.ndarray], list[Path]]:
    """The (image, mask) pairs of ``root/images`` and ``root/masks``, and the masks' paths."""
    for sub in ("images", "masks"):
        if not (root / sub).is_dir():
            raise DataError(f"{root}: no '{sub}' folder; a segmentation folder holds images/ and masks/ "
                            "with the same file stems (or train/, val/, test/ folders that do)")
    def bad(path: Path, why: str) -> None:
        if not skip_bad:
            raise DataError(f"{path}: {why}; fix it, or pass --skip-bad to leave it out")
        skipped.append((str(path), why))

    images, masks = image_files(root / "images", bad), image_files(root / "masks", bad)

    for stem in sorted(set(images) ^ set(masks)):
        path = images.get(stem) or masks[stem]
        bad(path, f"has no {'mask' if stem in images else 'image'} with the same stem in "
                  f"{root / ('masks' if stem in images else 'images')}")
    xs, ms, paths = [], [], []
    for stem in sorted(set(images) & set(masks)):
        try:
            img = decode_image(images[stem], channels)
        except ValueError as err:
            bad(images[stem], f"cannot decode the image ({err})")
            continue
        try:
            mask = read_mask(masks[stem])
        except ValueError as err:
            bad(masks[stem], str(err))
            continue
        if tuple(img.shape[1:]) != mask.shape:
            bad(masks[stem], f"is {mask.shape[0]}×{mask.shape[1]} but its image is {img.shape[1]}×{img.shape[2]}")
            continue
        xs.append(img)
        ms.append(mask)
        paths.append(masks[stem])
    return xs, ms, paths


def _stack(root: Path, xs: list[torch.Tensor], ms: list[np.ndarray], channels: int,
           size: tuple[int, int] | None) -> SegSplit:
    """One split: every image at ``channels``; resized to ``size`` when given (masks nearest-neighbour), else
    each at its own size on a shared canvas (masks padded with 255, never resampled)."""
    from torchvision.transforms.v2 import functional as TF

    images, masks = [], []
    for img, m in zip(xs, ms):
        if img.shape[0] != channels:
            img = img.expand(3, -1, -1) if channels == 3 else img.float().mean(0, keepdim=True).round().to(torch.uint8)
        mt = torch.from_numpy(m) if isinstance(m, np.ndarray) else m
        if size is not None and tuple(mt.shape) != tuple(size):
            img = TF.resize(img, list(size), antialias=True)
            mt = TF.resize(mt[None], list(size), interpolation=TF.InterpolationMode.NEAREST_EXACT)[0]
        images.append(img)
        masks.append(mt)
    x, m, sizes = make_canvas(images, masks, str(root))
    assert m is not None
    return SegSplit(x, m, sizes)


def _classes(root: Path, splits: dict[str, SegSplit]) -> list[str]:
    path = root / "classes.txt"
    if path.exists():
        names = read_class_names(path)
        if not 2 <= len(names) <= 255:
            raise DataError(f"{path}: lists {len(names)} classes; give 2 to 255 names, one per line "
                            "(line 1 is index 0, the background)")
        return names
    top = max(int(m.masks[m.masks != IGNORE].max()) if bool((m.masks != IGNORE).any()) else 0
              for m in splits.values())
    return ["background", *[f"class {i}" for i in range(1, max(top, 1) + 1)]]


def _read_folder(root: Path, channels: int | None, skip_bad: bool, skipped: list[tuple[str, str]]
                 ) -> tuple[dict[str, tuple], list[str] | None, str]:
    """The raw pairs of each split of an ``images/`` + ``masks/`` folder (or its train/, val/, test/), the
    class list (None: from classes.txt or the masks) and the layout's name."""
    parts = [s for s in ("train", "val", "test") if (root / s).is_dir()]
    if parts and "train" not in parts:
        raise DataError(f"{root}: has {', '.join(parts)}/ but no train/ folder")
    raw = {name: _read_pairs(root / name if parts else root, channels, None, skip_bad, skipped)
           for name in (parts or ["all"])}
    layout = f"{'/'.join(parts)} folders of images/ + masks/" if parts else "images/ + masks/ folders"
    return raw, None, layout


def _drop_out_of_range(root: Path, splits: dict[str, SegSplit], raw: dict[str, tuple], classes: list[str],
                       skip_bad: bool, skipped: list[tuple[str, str]], listed_by: str) -> None:
    """Masks with a class index past ``classes`` (named by ``listed_by``): an error naming the file, or left out
    with ``skip_bad``."""
    for name, s in list(splits.items()):
        bad = ((s.masks != IGNORE) & (s.masks >= len(classes))).flatten(1).any(1)
        for i in bad.nonzero().flatten().tolist():
            why = (f"class index {int(s.masks[i][(s.masks[i] != IGNORE)].max())} is outside the {len(classes)} "
                   f"classes of {listed_by}; fix the mask or the class list (255 marks ignored pixels)")
            if not skip_bad:
                raise DataError(f"{raw[name][2][i]}: {why}, or pass --skip-bad to leave it out")
            skipped.append((str(raw[name][2][i]), why))
        if bool(bad.any()):
            splits[name] = s.subset((~bad).nonzero().flatten())


def load_folder(root: Path, val_fraction: float, seed: int, channels: int | None = None,
                size: tuple[int, int] | None = None, skip_bad: bool = False) -> SegData:
    """Read ``root`` (an ``images/`` + ``masks/`` folder or the Pascal VOC devkit) into memory, split three
    ways; images keep their own sizes (on a canvas) unless ``size`` resizes them."""
    from cnnlab.data.voc import find_voc, read_voc

    if not root.is_dir():
        raise DataError(f"{root}: no such folder; give scenes:fashion-mnist, scenes:digits, a folder with "
                        "images/ and masks/, or the Pascal VOC devkit (VOC2012/)")
    skipped: list[tuple[str, str]] = []
    voc = find_voc(root)
    if voc is not None:
        raw, listed, layout = read_voc(voc, channels, skip_bad, skipped)
    else:
        raw, listed, layout = _read_folder(root, channels, skip_bad, skipped)
    for name, (xs, _, _) in raw.items():
        if not xs:
            raise DataError(f"{root / name if name != 'all' else root}: no image/mask pairs to read")
    first = raw.get("train", raw.get("all"))
    c = channels or max(x.shape[0] for x in first[0])  # type: ignore[index]
    splits = {name: _stack(root, xs, ms, c, size) for name, (xs, ms, _) in raw.items()}
    classes = listed or _classes(root, splits)
    _drop_out_of_range(root, splits, raw, classes, skip_bad, skipped,
                       "Pascal VOC" if voc is not None else str(root / "classes.txt"))
    train, val, test = three_way(splits, val_fraction, seed)
    if len(train) == 0 or len(val) == 0 or len(test) == 0:
        raise DataError(f"{root}: too few image/mask pairs to split into train, validation and test "
                        f"({len(train)} / {len(val)} / {len(test)})")
    return SegData(root.name or str(root), classes, train, val, test, skipped=skipped, layout=layout,
                   resized=size)


def load_segmentation(source: str, data_dir: str | None = None, val_fraction: float = 0.1, seed: int = 0,
                      channels: int | None = None, size: tuple[int, int] | None = None,
                      skip_bad: bool = False) -> SegData:
    """``scenes:fashion-mnist`` / ``scenes:digits`` / ``scenes:FOLDER`` (the default scenes, drawn in memory)
    or a folder of images and masks."""
    from cnnlab.data.scenes import SceneConfig, make_scenes, parse_scenes_source

    scene_source = parse_scenes_source(source)
    if scene_source is not None:
        scenes = make_scenes(SceneConfig(source=scene_source, data_dir=data_dir))
        s = scenes.splits
        data = SegData(source, scenes.classes, *(SegSplit(s[k].images, s[k].masks) for k in ("train", "val", "test")),
                       flip_ok=scene_source.lower() != "digits", layout="scenes drawn in memory")
    else:
        return load_folder(Path(source), val_fraction, seed, channels, size, skip_bad)
    if channels is not None or size is not None:
        folder_like = [_stack(Path(source), list(sp.images), list(sp.masks), channels or data.shape[0], size)
                       for sp in (data.train, data.val, data.test)]
        data.train, data.val, data.test = folder_like
        data.resized = size if size is not None and size != tuple(s["train"].images.shape[-2:]) else None
    return data
