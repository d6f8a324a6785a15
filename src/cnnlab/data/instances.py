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

``annotations.json`` is checked against COCO's format before use
(:func:`cnnlab.data.coco_schema.validate_coco`): a malformed document is always an
error. A bad annotation (its image missing or of another size than ``images``
says, a mask reaching outside the image, an unknown category) or an image with
more than :data:`MAX_INSTANCES` instances is an error naming the annotation or
image id and file — or, with ``skip_bad``, that image is left out and listed in
``skipped``.

Memory is checked before it is taken: an annotations file past
:data:`MAX_JSON_BYTES` is not read, and the RAM that parsing it and decoding
its masks (one byte per pixel per instance) will take is compared with the
RAM available first.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab import machine
from cnnlab.data.canvas import make_canvas, own_size
from cnnlab.data.coco_layouts import CocoLayout, find_coco, image_path, image_root
from cnnlab.data.coco_schema import validate_coco
from cnnlab.data.sources import DataError, decode_image, image_files, open_image, read_class_names, read_mask
from cnnlab.data.splits import three_way
from cnnlab.vocab import IGNORE_INDEX

MAX_INSTANCES = 1000           # per image: COCO's densest image has under 100, LVIS's about 800
MAX_JSON_BYTES = 2 * 10**9     # an annotations file's bytes (COCO train2017's is about 450 MB)
JSON_RAM_FACTOR = 8            # RAM json.loads takes per byte of a COCO file (measured 6.7 on 187 MB)


@dataclass
class InstSplit:
    """Images (N, C, H, W) uint8; per image its instance masks (K, H, W) bool and classes (K,) int64 (1..)."""

    images: torch.Tensor
    masks: list[torch.Tensor]
    labels: list[torch.Tensor]
    sizes: torch.Tensor | None = None      # (N, 2) each image's own (H, W) on the canvas; None: all fill it

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, idx: torch.Tensor) -> InstSplit:
        keep = idx.tolist()
        return InstSplit(self.images[idx], [self.masks[i] for i in keep], [self.labels[i] for i in keep],
                         None if self.sizes is None else self.sizes[idx])

    def image(self, i: int) -> torch.Tensor:
        """Image ``i`` (C, h, w) at its own size (its masks' size)."""
        h, w = own_size(self.images, self.sizes, i)
        return self.images[i, :, :h, :w]

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
    layout: str = "images/ + instances/ label images"
    resized: tuple[int, int] | None = None     # --size: every image and mask was resized to it

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the training canvas: the largest training image's H and W when sizes differ."""
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
    n = len(split)
    doc: dict[str, Any] = {"info": {"description": "cnnlab", "version": "1"}, "images": [], "annotations": [],
                           "categories": [{"id": ids[k], "name": name, "supercategory": "object"}
                                          for k, name in enumerate(classes) if k > 0]}
    ann = 1
    for i in range(n):
        h, w = own_size(split.images, split.sizes, i)
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
    """A COCO ``segmentation`` (polygons, RLE or uncompressed RLE, checked by ``validate_coco``) as an (h, w)
    uint8 mask."""
    from pycocotools import mask as mask_utils

    if isinstance(seg, list):
        if not seg:
            raise DataError(f"{where}: 'segmentation' has no polygons; give at least one [x1, y1, x2, y2, x3, y3, ...]")
        xy = np.concatenate([np.asarray(p, dtype=np.float64) for p in seg])
        if xy[0::2].min() < 0 or xy[1::2].min() < 0 or xy[0::2].max() > w or xy[1::2].max() > h:
            raise DataError(f"{where}: the polygon reaches outside the {w}×{h} image; fix its coordinates")
        rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
    elif isinstance(seg, dict):
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


def require_ram(need: int, what: str, fix: str) -> None:
    """:func:`cnnlab.machine.require_ram` raising a DataError (``--skip-bad`` treats it as the image's fault)."""
    machine.require_ram(need, what, fix, DataError)


def read_json(path: Path) -> Any:
    """``path`` parsed, refused before reading when past :data:`MAX_JSON_BYTES` or the RAM parsing would take."""
    try:
        size = path.stat().st_size
    except OSError as err:
        raise DataError(f"{path}: cannot read it ({err})") from None
    if size > MAX_JSON_BYTES:
        raise DataError(f"{path}: {size:,} B is past the limit of {MAX_JSON_BYTES:,} B (2 GB) for an annotations "
                        "file; split the images into train/, val/ and test/ folders, each with its annotations.json")
    require_ram(size * JSON_RAM_FACTOR, f"{path}: parsing its {size:,} B",
                "split the images into train/, val/ and test/ folders, or use a machine with more memory")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as err:
        raise DataError(f"{path}: not a JSON file ({type(err).__name__}: {err}); a COCO instances file is a JSON "
                        "object with 'images', 'annotations' and 'categories' lists") from None


def _group(doc: dict[str, Any], cats: dict[int, str], path: Path) -> tuple[dict[int, list[dict]], dict[int, str]]:
    """A checked document's annotations by image id, and why an image cannot be used: an annotation of an
    unlisted category, or more than :data:`MAX_INSTANCES` instances (crowd regions are not instances)."""
    per_image: dict[int, list[dict]] = {im["id"]: [] for im in doc["images"]}
    bad: dict[int, str] = {}
    for a in doc["annotations"]:
        if a["category_id"] not in cats:
            bad.setdefault(a["image_id"], f"{path}: annotation {a['id']}: unknown category {a['category_id']} (the "
                                          f"categories are {', '.join(map(str, sorted(cats)))}; or add it to "
                                          "'categories')")
            continue
        per_image[a["image_id"]].append(a)
    for im in doc["images"]:
        n = sum(1 for a in per_image[im["id"]] if not a.get("iscrowd", 0))
        if n > MAX_INSTANCES:
            bad.setdefault(im["id"], f"{path}: image {im['id']} ({im['file_name']}): {n:,} instances, past the "
                                     f"limit of {MAX_INSTANCES:,} per image (COCO's densest image has under 100)")
    return per_image, bad


def _decoded_bytes(images: dict[int, dict], per_image: dict[int, list[dict]], bad: dict[int, str],
                   channels: int | None) -> tuple[int, int]:
    """(bytes, masks): what the usable images (uint8, ``channels`` or 3) and their masks (one byte a pixel) take
    once decoded, at the sizes ``images`` gives."""
    total = masks = 0
    for image_id, im in images.items():
        if image_id not in bad:
            k = sum(1 for a in per_image[image_id] if not a.get("iscrowd", 0))
            total += (k + (channels or 3)) * im["height"] * im["width"]
            masks += k
    return total, masks


def _read_coco_image(root: Path, path: Path, im: dict[str, Any], anns: list[dict], channels: int | None
                     ) -> tuple[torch.Tensor, tuple[torch.Tensor, list[int]]]:
    """One image of a checked document and its (masks (K, H, W) bool, category ids), crowd regions left out."""
    file = image_path(root, im["file_name"])
    label = f"annotation {anns[0]['id']} (image {im['id']})" if anns else f"image {im['id']}"
    if not file.is_file():
        raise DataError(f"{path}: {label}: the image file {im['file_name']} is not in {root} (the image folder "
                        "searched); add it, or give --images DIR where the images are")
    try:
        x = decode_image(file, channels)
    except ValueError as err:
        raise DataError(f"{file}: cannot decode the image ({err})") from None
    h, w = x.shape[1:]
    if (h, w) != (im["height"], im["width"]):
        raise DataError(f"{path}: image {im['id']}: {im['file_name']} is {w}×{h} pixels but 'images' gives "
                        f"width {im['width']}, height {im['height']}; fix them")
    masks, cat_ids = [], []
    for a in anns:
        if not a.get("iscrowd", 0):
            masks.append(_decode_segmentation(a.get("segmentation"), h, w, f"{path}: annotation {a['id']}"))
            cat_ids.append(a["category_id"])
    m = torch.from_numpy(np.stack(masks)).bool() if masks else torch.zeros((0, h, w), dtype=torch.bool)
    return x, (m, cat_ids)


def read_coco(path: Path, images: Path | None, channels: int | None, skip_bad: bool,
              skipped: list[tuple[str, str]], categories: dict[int, str] | None = None,
              roots: list[Path] | None = None) -> tuple[list[torch.Tensor], list[tuple], dict[int, str]]:
    """Images and (masks, category ids) of the COCO file ``path``, and its categories {id: name}; the images
    are under ``images``, or the folder :func:`cnnlab.data.coco_layouts.image_root` finds.

    The document is checked whole first (always an error); then the RAM its masks need; then image by image
    (with ``skip_bad`` a bad image is left out and listed in ``skipped``)."""
    doc = read_json(path)
    validate_coco(doc, str(path))
    root = image_root(path, doc, images)
    if roots is not None:
        roots.append(root)
    images = {im["id"]: im for im in doc["images"]}
    cats = {c["id"]: c["name"] for c in doc["categories"]}
    if categories is not None and cats != categories:
        raise DataError(f"{path}: its categories differ from the train split's; every split needs the same list")
    per_image, bad = _group(doc, cats, path)
    need, n_masks = _decoded_bytes(images, per_image, bad, channels)
    require_ram(need, f"{path}: decoding its images and {n_masks:,} instance masks",
                "use fewer or smaller images, or a machine with more memory")
    xs, ys = [], []
    for image_id, im in sorted(images.items()):
        try:
            if image_id in bad:
                raise DataError(bad[image_id])
            x, y = _read_coco_image(root, path, im, per_image[image_id], channels)
        except DataError as err:
            if not skip_bad:
                raise DataError(f"{err}; fix it, or pass --skip-bad to leave that image out") from None
            skipped.append((str(image_path(root, im["file_name"])), str(err)))
            continue
        xs.append(x)
        ys.append(y)
    return xs, ys, cats


# -- label images ----------------------------------------------------------------------------------------------

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
    from PIL import UnidentifiedImageError

    try:
        with open_image(path) as im:
            if im.mode not in ("L", "P", "I", "I;16", "I;16B", "1"):
                raise ValueError(f"a label image holds one integer per pixel (mode L, I or I;16), this one is "
                                 f"mode {im.mode}")
            return np.asarray(im).astype(np.int64)
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(str(err) or type(err).__name__) from None


def read_label_folder(root: Path, channels: int | None, skip_bad: bool, skipped: list[tuple[str, str]]
                      ) -> tuple[list[torch.Tensor], list[tuple], dict[int, str]]:
    """Images and (masks, class ids) of ``root/images`` + ``root/instances`` (+ ``root/masks``)."""
    def bad(path: Path, why: str) -> None:
        if not skip_bad:
            raise DataError(f"{path}: {why}; fix it, or pass --skip-bad to leave it out")
        skipped.append((str(path), why))

    images, labels = image_files(root / "images", bad), image_files(root / "instances", bad)
    semantic = image_files(root / "masks", bad) if (root / "masks").is_dir() else None

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
        n = int(np.count_nonzero(np.unique(owner)))       # counted before (n, H, W) masks are built
        if n > MAX_INSTANCES:
            bad(labels[stem], f"{n:,} instances (distinct non-zero values), past the limit of {MAX_INSTANCES:,} per "
                              "image (an instance label image holds one integer per object; is it a photo?)")
            continue
        require_ram(n * owner.size, f"{labels[stem]}: building its {n:,} instance masks", "use smaller images")
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
    listed = next((p for p in (root / "classes.txt", root.parent / "classes.txt") if p.exists()), None)
    lines = read_class_names(listed) if listed else []
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
    if (root / "images").is_dir() and (root / "instances").is_dir():
        return read_label_folder(root, channels, skip_bad, skipped)
    raise DataError(f"{root}: no COCO annotations (annotations.json, annotations/instances_<split>.json, "
                    f"_annotations.coco.json) and no images/ + instances/ folders (instance label images); see "
                    "docs/segmentation.md for the layouts")


def _read_raw(root: Path, images: Path | None, channels: int | None, skip_bad: bool,
              skipped: list[tuple[str, str]]) -> tuple[dict[str, tuple], dict[int, str], str]:
    """{split: (images, (masks, category ids))} of a COCO layout or label-image folders, the categories, the
    layout's name."""
    layout = find_coco(root)
    if layout is None and images is not None:
        raise DataError(f"--images {images}: {root} holds no COCO annotations file; --images names the image "
                        "folder of a COCO file")
    parts: dict[str, Any] = dict(layout.parts) if layout else \
        {s: root / s for s in ("train", "val", "test") if (root / s).is_dir()} or {"all": root}
    if "train" not in parts and "all" not in parts:
        raise DataError(f"{root}: has {', '.join(parts)}/ but no train/ folder")
    raw: dict[str, tuple] = {}
    cats: dict[int, str] | None = None
    roots: list[Path] = []
    for name, part in parts.items():
        if layout is not None:
            xs, ys, found = read_coco(part.annotations, images, channels, skip_bad, skipped, cats, roots)
        else:
            xs, ys, found = _read_part(part, channels, skip_bad, skipped, cats)
        if not xs:
            raise DataError(f"{part.annotations if layout else part}: no images with annotations to read")
        cats = found if cats is None else {**cats, **found}
        raw[name] = (xs, ys)
    assert cats is not None
    if layout is None:
        return raw, cats, "images/ + instances/ label images"
    return raw, cats, f"{layout.name}; images in {', '.join(str(r) for r in dict.fromkeys(roots))}"


def _stack(root: Path, xs: list[torch.Tensor], ys: list[tuple], index: dict[int, int], channels: int,
           size: tuple[int, int] | None) -> InstSplit:
    """One split from decoded images and (masks, category ids): resized to ``size`` when given (masks
    nearest-neighbour), else each image at its own size on a shared canvas, its masks at that size."""
    from torchvision.transforms.v2 import functional as TF

    images, masks, labels = [], [], []
    for x, (m, cats) in zip(xs, ys):
        if x.shape[0] != channels:
            x = x.expand(3, -1, -1) if channels == 3 else x.float().mean(0, keepdim=True).round().to(torch.uint8)
        if size is not None and tuple(x.shape[1:]) != tuple(size):
            x = TF.resize(x, list(size), antialias=True)
            if m.shape[0]:
                m = TF.resize(m.to(torch.uint8), list(size), interpolation=TF.InterpolationMode.NEAREST_EXACT).bool()
            else:
                m = torch.zeros((0, *size), dtype=torch.bool)
        images.append(x)
        masks.append(m)
        labels.append(torch.tensor([index[c] for c in cats], dtype=torch.int64))
    canvas, _, sizes = make_canvas(images, None, str(root))
    return InstSplit(canvas, masks, labels, sizes)


def load_folder(root: Path, val_fraction: float, seed: int, channels: int | None = None,
                size: tuple[int, int] | None = None, skip_bad: bool = False, images: Path | None = None
                ) -> InstData:
    """Read ``root`` (a COCO file or folder, see :mod:`cnnlab.data.coco_layouts`, or label-image folders) into
    memory, split three ways; images keep their own sizes (on a canvas) unless ``size`` resizes them."""
    if not root.exists():
        raise DataError(f"{root}: no such file or folder; give scenes:fashion-mnist, scenes:digits, a COCO "
                        "annotations file or its folder, or a folder with images/ + instances/")
    skipped: list[tuple[str, str]] = []
    raw, cats, layout = _read_raw(root, images, channels, skip_bad, skipped)
    ids = sorted(cats)
    index = {cid: k + 1 for k, cid in enumerate(ids)}
    first = raw.get("train", raw.get("all"))
    c = channels or max(x.shape[0] for x in first[0])
    splits = {name: _stack(root, xs, ys, index, c, size) for name, (xs, ys) in raw.items()}
    train, val, test = three_way(splits, val_fraction, seed)
    if len(train) == 0 or len(val) == 0 or len(test) == 0:
        raise DataError(f"{root}: too few images to split into train, validation and test "
                        f"({len(train)} / {len(val)} / {len(test)})")
    name = root.stem if root.is_file() else root.name or str(root)
    return InstData(name, ["background", *(cats[i] for i in ids)], train, val, test,
                    category_ids=[0, *ids], skipped=skipped, layout=layout, resized=size)


def load_instances(source: str, data_dir: str | None = None, val_fraction: float = 0.1, seed: int = 0,
                   channels: int | None = None, size: tuple[int, int] | None = None,
                   skip_bad: bool = False, images: str | None = None) -> InstData:
    """``scenes:fashion-mnist`` / ``scenes:digits`` / ``scenes:FOLDER`` (the default scenes, drawn in memory)
    or a folder (COCO instances or instance label images, see the module notes)."""
    from cnnlab.data.scenes import SceneConfig, make_scenes, parse_scenes_source

    scene_source = parse_scenes_source(source)
    if scene_source is None:
        return load_folder(Path(source), val_fraction, seed, channels, size, skip_bad,
                           Path(images) if images else None)
    if images:
        raise DataError(f"--images {images}: names the image folder of a COCO file; {source} draws its own images")
    scenes = make_scenes(SceneConfig(source=scene_source, data_dir=data_dir))
    splits = {}
    for name, s in scenes.splits.items():
        pairs = [from_label_image(s.instances[i].numpy(), s.instance_classes[i]) for i in range(len(s))]
        splits[name] = InstSplit(s.images, [m for m, _ in pairs], [lab for _, lab in pairs])
    data = InstData(source, scenes.classes, splits["train"], splits["val"], splits["test"],
                    category_ids=list(range(len(scenes.classes))), flip_ok=scene_source.lower() != "digits",
                    layout="scenes drawn in memory")
    if channels is not None or size is not None:
        index = {k: k for k in range(1, len(scenes.classes))}
        for name in ("train", "val", "test"):
            sp = getattr(data, name)
            setattr(data, name, _stack(Path(source), list(sp.images), list(zip(sp.masks, [lab.tolist() for lab in sp.labels])),
                                       index, channels or data.shape[0], size))
    return data
