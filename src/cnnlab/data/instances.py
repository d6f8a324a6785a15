"""Instance-segmentation data in memory: scenes drawn on the fly, a COCO folder, or instance label images.

    from cnnlab.data.instances import load_instances
    data = load_instances("scenes:fashion-mnist")           # or "path/to/folder"
    data.train.images.shape                                  # (N, C, H, W) uint8
    data.train.masks[i].shape, data.train.labels[i]          # (K, H, W) bool, (K,) class indices 1..

Three sources, in this order of precedence for a folder (or for each of its
``train/``, ``val/``, ``test/`` sub-folders — the layout ``cnnlab scenes make`` writes):

1. **COCO instances**: ``annotations.json`` whose ``file_name`` paths are relative to
   the folder (``images/…``); masks as polygons or RLE (decoded by pycocotools).
   Category ids may have gaps (COCO's 1…90): they become contiguous class
   indices 1…K in id order, and predictions are exported with the original ids.
   ``iscrowd`` regions are not trained on (as Mask R-CNN's references do).
2. **Instance label images**: ``images/`` + ``instances/`` with the same stems, each
   label image holding one integer per instance (0 = background), 8- or 16-bit
   PNG or TIFF (as the 2018 Data Science Bowl and Penn-Fudan ship them). With a
   ``masks/`` folder of class-index PNGs beside it, an instance's class is the
   most common class index under it; without, every instance is class 1. A ``classes.txt`` (line 1
   the background) in the folder or its parent names the classes (default "object", "class k").

A bad annotation (its image missing, a mask reaching outside the image, an
unknown category) is an error naming the annotation id — or, with
``skip_bad``, that image is left out and listed in ``skipped``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab.data.sources import IMAGE_SUFFIXES, DataError, decode_image
from cnnlab.data.splits import three_way
from cnnlab.vocab import IGNORE_INDEX



@dataclass
class InstSplit:
    """Images (N, C, H, W) uint8; per image its instance masks (K, H, W) bool and classes (K,) int64 (1..)."""

    images: torch.Tensor
    masks: list[torch.Tensor]
    labels: list[torch.Tensor]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, idx: torch.Tensor) -> InstSplit:
        keep = idx.tolist()
        return InstSplit(self.images[idx], [self.masks[i] for i in keep], [self.labels[i] for i in keep])

    def targets(self, i: int) -> dict[str, torch.Tensor]:
        """Image ``i``'s target in torchvision's detection format: boxes (x1, y1, x2, y2), labels, masks."""
        return make_target(self.masks[i], self.labels[i])


@dataclass
class InstData:
    """An instance-segmentation data set in memory, split three ways; ``classes[0]`` is the background.

    ``category_ids[k]`` is the COCO category id of class index ``k`` (k ≥ 1; index 0 holds 0)."""

    name: str
    classes: list[str]
    train: InstSplit
    val: InstSplit
    test: InstSplit
    category_ids: list[int] = field(default_factory=list)
    flip_ok: bool = True
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])  # type: ignore[return-value]


def make_target(masks: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Boxes around ``masks`` as pixel edges (x2 = last column + 1, COCO's x + w), labels, uint8 masks."""
    from torchvision.ops import masks_to_boxes

    keep = masks.flatten(1).any(1) if masks.shape[0] else torch.zeros(0, dtype=torch.bool)
    masks, labels = masks[keep], labels[keep]
    boxes = masks_to_boxes(masks) if masks.shape[0] else torch.zeros((0, 4))
    boxes[:, 2:] += 1
    return {"boxes": boxes, "labels": labels.long(), "masks": masks.to(torch.uint8)}


def from_label_image(owner: np.ndarray, classes: list[int] | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """(masks (K, H, W) bool, labels (K,)) of a label image (0 = background); ``classes[j]`` is id j+1's class
    (default: every instance class 1). Ids need not be contiguous; absent ids give no instance."""
    t = torch.from_numpy(owner.astype(np.int64))
    ids = [int(v) for v in t.unique().tolist() if v != 0]
    if classes is not None:
        ids = [j for j in range(1, len(classes) + 1) if j in set(ids)]
    masks = torch.stack([t == j for j in ids]) if ids else torch.zeros((0, *t.shape), dtype=torch.bool)
    labels = torch.tensor([classes[j - 1] if classes is not None else 1 for j in ids], dtype=torch.int64)
    return masks, labels


# -- COCO ------------------------------------------------------------------------------------------------------

def coco_ground_truth(split: InstSplit, classes: list[str], category_ids: list[int] | None = None
                      ) -> dict[str, Any]:
    """The split as a COCO instances document (image ids 1..N, RLE masks by pycocotools, boxes, areas)."""
    from pycocotools import mask as mask_utils

    ids = category_ids or list(range(len(classes)))
    n, _, h, w = split.images.shape
    doc: dict[str, Any] = {"info": {"description": "cnnlab", "version": "1"}, "images": [], "annotations": [],
                           "categories": [{"id": ids[k], "name": name, "supercategory": "object"}
                                          for k, name in enumerate(classes) if k > 0]}
    ann = 1
    for i in range(n):
        doc["images"].append({"id": i + 1, "file_name": f"images/{i:05d}.png", "height": h, "width": w})
        for m, label in zip(split.masks[i], split.labels[i].tolist()):
            rle = mask_utils.encode(np.asfortranarray(m.numpy().astype(np.uint8)))
            area = int(mask_utils.area(rle))
            if area == 0:
                continue
            doc["annotations"].append({"id": ann, "image_id": i + 1, "category_id": ids[label],
                                       "segmentation": {"size": [h, w], "counts": rle["counts"].decode("ascii")},
                                       "area": area, "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                                       "iscrowd": 0})
            ann += 1
    return doc


def _decode_segmentation(seg: Any, h: int, w: int, where: str) -> np.ndarray:
    """A COCO ``segmentation`` (polygons, RLE or uncompressed RLE) as an (h, w) uint8 mask."""
    from pycocotools import mask as mask_utils

    if isinstance(seg, list):
        if not seg or not all(isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0 for p in seg):
            raise DataError(f"{where}: a polygon needs at least 3 points as [x1, y1, x2, y2, ...]")
        xy = np.concatenate([np.asarray(p, dtype=np.float64) for p in seg])
        if not np.isfinite(xy).all() or xy[0::2].min() < 0 or xy[1::2].min() < 0 or xy[0::2].max() > w \
                or xy[1::2].max() > h:
            raise DataError(f"{where}: the polygon reaches outside the {w}×{h} image; fix its coordinates")
        rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
    elif isinstance(seg, dict) and "counts" in seg and "size" in seg:
        if list(seg["size"]) != [h, w]:
            raise DataError(f"{where}: the RLE mask is {seg['size'][0]}×{seg['size'][1]} but the image is {h}×{w}")
        rle = mask_utils.frPyObjects(seg, h, w) if isinstance(seg["counts"], list) else \
            {"size": seg["size"], "counts": seg["counts"].encode("ascii")}
    else:
        raise DataError(f"{where}: 'segmentation' must be polygons or an RLE dict with 'size' and 'counts'")
    try:
        return mask_utils.decode(rle)
    except Exception as err:      # pycocotools raises bare Exceptions for malformed counts
        raise DataError(f"{where}: cannot decode the mask ({err})") from None


def read_coco(root: Path, channels: int | None, skip_bad: bool, skipped: list[tuple[str, str]],
              categories: dict[int, str] | None = None) -> tuple[list[torch.Tensor], list[tuple], dict[int, str]]:
    """Images and (masks, category ids) of ``root/annotations.json``, and its categories {id: name}."""
    path = root / "annotations.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        images = {int(im["id"]): im for im in doc["images"]}
        cats = {int(c["id"]): str(c["name"]) for c in doc.get("categories", [])}
        anns = doc.get("annotations", [])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataError(f"{path}: not a COCO instances file ({type(err).__name__}: {err}); it needs 'images', "
                        "'annotations' and 'categories' lists") from None
    if categories is not None and cats != categories:
        raise DataError(f"{path}: its categories differ from the train split's; every split needs the same list")
    per_image: dict[int, list[dict]] = {i: [] for i in images}
    bad: dict[int, str] = {}
    for a in anns:
        where = f"{path}: annotation {a.get('id', '?')}"
        if a.get("image_id") not in per_image:
            raise DataError(f"{where}: refers to image {a.get('image_id')}, which 'images' does not list")
        if a.get("category_id") not in cats:
            why = (f"{where}: unknown category {a.get('category_id')} (the categories are "
                   f"{', '.join(map(str, sorted(cats)))}; or add it to 'categories')")
            bad.setdefault(a["image_id"], why)
            continue
        per_image[a["image_id"]].append(a)
    xs, ys = [], []
    for image_id, im in sorted(images.items()):
        file = root / str(im.get("file_name", ""))
        first = per_image[image_id][0]["id"] if per_image[image_id] else None
        label = f"annotation {first} (image {image_id})" if first is not None else f"image {image_id}"
        try:
            if image_id in bad:
                raise DataError(bad[image_id])
            if not file.is_file():
                raise DataError(f"{path}: {label}: the image file {im.get('file_name')} is missing")
            try:
                x = decode_image(file, channels)
            except ValueError as err:
                raise DataError(f"{file}: cannot decode the image ({err})") from None
            h, w = x.shape[1:]
            masks, cat_ids = [], []
            for a in per_image[image_id]:
                if a.get("iscrowd", 0):
                    continue
                masks.append(_decode_segmentation(a.get("segmentation"), h, w, f"{path}: annotation {a['id']}"))
                cat_ids.append(int(a["category_id"]))
        except DataError as err:
            if not skip_bad:
                raise DataError(f"{err}; fix it, or pass --skip-bad to leave that image out") from None
            skipped.append((str(file), str(err)))
            continue
        xs.append(x)
        m = torch.from_numpy(np.stack(masks)).bool() if masks else torch.zeros((0, h, w), dtype=torch.bool)
        ys.append((m, cat_ids))
    return xs, ys, cats


# -- label images ----------------------------------------------------------------------------------------------

def _files(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES}


def read_label_image(path: Path) -> np.ndarray:
    """An instance label image (PNG 8/16-bit, TIFF via tifffile when installed) as (H, W) int64."""
    if path.suffix.lower() in (".tif", ".tiff"):
        try:
            import tifffile
        except ImportError:
            tifffile = None
        if tifffile is not None:
            arr = tifffile.imread(path)
            if arr.ndim != 2:
                raise ValueError(f"a label image must be 2-D, this one is {arr.shape}")
            return arr.astype(np.int64)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode not in ("L", "P", "I", "I;16", "I;16B", "1"):
                raise ValueError(f"a label image holds one integer per pixel (mode L, I or I;16), this one is "
                                 f"mode {im.mode}")
            return np.asarray(im).astype(np.int64)
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(str(err) or type(err).__name__) from None


def read_label_folder(root: Path, channels: int | None, skip_bad: bool, skipped: list[tuple[str, str]]
                      ) -> tuple[list[torch.Tensor], list[tuple], dict[int, str]]:
    """Images and (masks, class ids) of ``root/images`` + ``root/instances`` (+ ``root/masks``)."""
    from cnnlab.data.segmentation import read_mask

    images, labels = _files(root / "images"), _files(root / "instances")
    semantic = _files(root / "masks") if (root / "masks").is_dir() else None

    def bad(path: Path, why: str) -> None:
        if not skip_bad:
            raise DataError(f"{path}: {why}; fix it, or pass --skip-bad to leave it out")
        skipped.append((str(path), why))

    for stem in sorted(set(images) ^ set(labels)):
        bad(images.get(stem) or labels[stem], "has no partner with the same stem in images/ and instances/")
    xs, ys, seen = [], [], set()
    for stem in sorted(set(images) & set(labels)):
        try:
            x = decode_image(images[stem], channels)
            owner = read_label_image(labels[stem])
            cls_img = read_mask(semantic[stem]) if semantic is not None and stem in semantic else None
        except ValueError as err:
            bad(labels[stem], str(err))
            continue
        if owner.shape != tuple(x.shape[1:]) or (cls_img is not None and cls_img.shape != owner.shape):
            bad(labels[stem], f"is {owner.shape[0]}×{owner.shape[1]} but its image is {x.shape[1]}×{x.shape[2]}")
            continue
        masks, _ = from_label_image(owner)
        if cls_img is None:
            ids = [1] * masks.shape[0]
        else:                    # the class under most of the instance, background (0) and ignore (255) left out
            votes = [Counter(v for v in cls_img[m.numpy()].tolist() if v not in (0, IGNORE_INDEX)) for m in masks]
            if any(not v for v in votes):
                bad(labels[stem], f"an instance lies on background or ignored pixels only in {semantic[stem]}; "
                                  "give every instance its class in masks/")
                continue
            ids = [v.most_common(1)[0][0] for v in votes]
        seen.update(ids)
        xs.append(x)
        ys.append((masks, ids))
    listed = next((p for p in (root / "classes.txt", root.parent / "classes.txt") if p.is_file()), None)
    lines = [s.strip() for s in listed.read_text(encoding="utf-8").splitlines() if s.strip()] if listed else []
    top = max(seen, default=1) if semantic is not None else 1
    if lines and semantic is not None and top >= len(lines):
        raise DataError(f"{root}: an instance has class {top} but {listed} names only {len(lines)} classes "
                        "(line 1 is the background); fix the masks or the class list")
    cats = {k: lines[k] if k < len(lines) else ("object" if semantic is None else f"class {k}")
            for k in range(1, max(top, len(lines) - 1 if semantic is not None else 1) + 1)}
    return xs, ys, cats


# -- loading ---------------------------------------------------------------------------------------------------

def _read_part(root: Path, channels: int | None, skip_bad: bool, skipped: list[tuple[str, str]],
               categories: dict[int, str] | None) -> tuple[list[torch.Tensor], list[tuple], dict[int, str]]:
    if (root / "annotations.json").is_file():
        return read_coco(root, channels, skip_bad, skipped, categories)
    if (root / "images").is_dir() and (root / "instances").is_dir():
        return read_label_folder(root, channels, skip_bad, skipped)
    raise DataError(f"{root}: no annotations.json (COCO instances) and no images/ + instances/ folders "
                    "(instance label images); see docs/segmentation.md for the layouts")


def _stack(root: Path, xs: list[torch.Tensor], ys: list[tuple], index: dict[int, int], channels: int,
           size: tuple[int, int] | None) -> InstSplit:
    """One split from decoded images and (masks, category ids); resized to ``size`` when given."""
    from torchvision.transforms.v2 import functional as TF

    if size is None:
        shapes = {tuple(x.shape[1:]) for x in xs}
        if len(shapes) > 1:
            raise DataError(f"{root}: images have different sizes (e.g. {sorted(shapes)[:2]}); give --size H,W "
                            "to resize them (masks are resized with nearest-neighbour)")
        size = next(iter(shapes))  # type: ignore[assignment]
    images, masks, labels = [], [], []
    for x, (m, cats) in zip(xs, ys):
        if x.shape[0] != channels:
            x = x.expand(3, -1, -1) if channels == 3 else x.float().mean(0, keepdim=True).round().to(torch.uint8)
        if tuple(x.shape[1:]) != tuple(size):  # type: ignore[arg-type]
            x = TF.resize(x, list(size), antialias=True)  # type: ignore[arg-type]
            if m.shape[0]:
                m = TF.resize(m.to(torch.uint8), list(size),  # type: ignore[arg-type]
                              interpolation=TF.InterpolationMode.NEAREST_EXACT).bool()
            else:
                m = torch.zeros((0, *size), dtype=torch.bool)  # type: ignore[misc]
        images.append(x)
        masks.append(m)
        labels.append(torch.tensor([index[c] for c in cats], dtype=torch.int64))
    return InstSplit(torch.stack(images), masks, labels)


def load_folder(root: Path, val_fraction: float, seed: int, channels: int | None = None,
                size: tuple[int, int] | None = None, skip_bad: bool = False) -> InstData:
    """Read ``root`` (see the module notes) into memory, split three ways."""
    if not root.is_dir():
        raise DataError(f"{root}: no such folder; give scenes:fashion-mnist, scenes:digits or a folder with "
                        "annotations.json (COCO) or images/ + instances/")
    parts = [s for s in ("train", "val", "test") if (root / s).is_dir()]
    if parts and "train" not in parts:
        raise DataError(f"{root}: has {', '.join(parts)}/ but no train/ folder")
    skipped: list[tuple[str, str]] = []
    raw: dict[str, tuple] = {}
    cats: dict[int, str] | None = None
    for name in parts or ["all"]:
        xs, ys, found = _read_part(root / name if parts else root, channels, skip_bad, skipped, cats)
        if not xs:
            raise DataError(f"{root / name if parts else root}: no images with annotations to read")
        cats = found if cats is None else {**cats, **found}
        raw[name] = (xs, ys)
    assert cats is not None
    ids = sorted(cats)
    index = {cid: k + 1 for k, cid in enumerate(ids)}
    first = raw.get("train", raw.get("all"))
    c = channels or max(x.shape[0] for x in first[0])
    if size is None:          # one size for all, or --size: images of different sizes are not squashed silently
        shapes = sorted({tuple(x.shape[1:]) for xs, _ in raw.values() for x in xs})
        if len(shapes) > 1:
            raise DataError(f"{root}: images have different sizes (e.g. {shapes[0]} and {shapes[-1]}); give --size "
                            "H,W to resize them (masks with nearest-neighbour)")
        size = shapes[0]  # type: ignore[assignment]
    splits = {name: _stack(root / name if parts else root, xs, ys, index, c, size) for name, (xs, ys) in raw.items()}
    train, val, test = three_way(splits, val_fraction, seed)
    if len(train) == 0 or len(val) == 0 or len(test) == 0:
        raise DataError(f"{root}: too few images to split into train, validation and test "
                        f"({len(train)} / {len(val)} / {len(test)})")
    return InstData(root.name or str(root), ["background", *(cats[i] for i in ids)], train, val, test,
                    category_ids=[0, *ids], skipped=skipped)


def load_instances(source: str, data_dir: str | None = None, val_fraction: float = 0.1, seed: int = 0,
                   channels: int | None = None, size: tuple[int, int] | None = None,
                   skip_bad: bool = False) -> InstData:
    """``scenes:fashion-mnist`` / ``scenes:digits`` / ``scenes:FOLDER`` (the default scenes, drawn in memory)
    or a folder (COCO instances or instance label images, see the module notes)."""
    from cnnlab.data.scenes import SceneConfig, make_scenes, parse_scenes_source

    scene_source = parse_scenes_source(source)
    if scene_source is None:
        return load_folder(Path(source), val_fraction, seed, channels, size, skip_bad)
    scenes = make_scenes(SceneConfig(source=scene_source, data_dir=data_dir))
    splits = {}
    for name, s in scenes.splits.items():
        pairs = [from_label_image(s.instances[i].numpy(), s.instance_classes[i]) for i in range(len(s))]
        splits[name] = InstSplit(s.images, [m for m, _ in pairs], [lab for _, lab in pairs])
    data = InstData(source, scenes.classes, splits["train"], splits["val"], splits["test"],
                    category_ids=list(range(len(scenes.classes))), flip_ok=scene_source.lower() != "digits")
    if channels is not None or size is not None:
        index = {k: k for k in range(1, len(scenes.classes))}
        for name in ("train", "val", "test"):
            sp = getattr(data, name)
            setattr(data, name, _stack(Path(source), list(sp.images), list(zip(sp.masks, [lab.tolist() for lab in sp.labels])),
                                       index, channels or data.shape[0], size))
    return data
