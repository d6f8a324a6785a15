"""Where a COCO data set's annotation files and images are, in the layouts the field's tools write.

``--data`` names a COCO JSON file or a folder; the folder's layout is recognised in this order:

=====================  ==============================================================  =======================
layout                 files                                                           splits
=====================  ==============================================================  =======================
COCO's own             ``annotations/instances_train2017.json`` + ``train2017/``, …     train2017 → train,
                       (CVAT: ``annotations/instances_default.json`` + ``images/``)    val2017 → test
Roboflow               ``train/_annotations.coco.json`` with its images beside it,     train, valid → val,
                       ``valid/``, ``test/``                                           test
one folder             ``annotations.json`` + the images (``images/…`` or bare names)  split at random
split folders          ``train/annotations.json``, ``val/…``, ``test/…``               train, val, test
=====================  ==============================================================  =======================

COCO's ``val2017`` is the split papers report; it becomes cnnlab's **test** split (scored once, at the
end) and the validation split that picks the best weights is ``--val-fraction`` of the training images,
so no image is in two splits. ``file_name`` may hold sub-folders (``train2017/000000000009.jpg``,
Windows ``\\`` separators too) but never climbs out of the image folder.

The image folder of each annotation file is the one place among the usual candidates (beside the file,
its ``images/``, the split's own folder ``train2017/`` or ``images/train2017/`` next to ``annotations/``,
the data set's root) that holds its images, or with ``--images DIR`` the one of ``DIR/<split>/`` (e.g.
``DIR/train2017/``, Roboflow's ``DIR/valid/``) and ``DIR`` that does. Two candidates that both hold them are
ambiguous: a one-line error names both. A missing image names the folder searched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnlab.data import locate
from cnnlab.data.locate import unique_folders
from cnnlab.data.sources import DataError

ROBOFLOW_FILE = "_annotations.coco.json"


@dataclass(frozen=True)
class CocoPart:
    """One annotation file and the folder its ``file_name`` paths are relative to."""

    annotations: Path
    images: Path | None = None          # None until :func:`image_root` has found it


@dataclass(frozen=True)
class CocoLayout:
    """A recognised COCO layout: its name (said at the start of training) and its parts by cnnlab split."""

    name: str
    parts: dict[str, CocoPart]


def _official_split(stem: str) -> str | None:
    """cnnlab's split of ``instances_<name>.json``: train2017 → train, val2017 → test, default → all."""
    name = stem.removeprefix("instances_").lower()
    if name.startswith("train"):
        return "train"
    if name.startswith(("val", "minival")):
        return "test"           # the split papers report: scored once; validation comes from train
    if name.startswith("test"):
        return "test"
    if name in ("default", "all", "instances"):
        return "all"
    return None


def _official(root: Path) -> CocoLayout | None:
    """COCO's own layout at ``root`` (or ``root`` is its ``annotations/`` folder)."""
    files = sorted((root / "annotations").glob("instances_*.json")) if (root / "annotations").is_dir() else []
    files = files or sorted(root.glob("instances_*.json"))
    if not files:
        return None
    parts: dict[str, CocoPart] = {}
    for f in files:
        split = _official_split(f.stem)
        if split is None or split in parts:
            raise DataError(f"{files[0].parent}: cannot tell the splits of {', '.join(p.name for p in files)}; "
                            "name them instances_train….json, instances_val….json (or give --data FILE.json)")
        parts[split] = CocoPart(f)
    if "all" in parts and len(parts) > 1:
        raise DataError(f"{files[0].parent}: {parts['all'].annotations.name} beside split files; give --data "
                        "one of the files")
    if "test" in parts and "train" not in parts and "all" not in parts:
        parts = {"all": parts["test"]}
    if "all" in parts:
        return CocoLayout(f"COCO ({parts['all'].annotations.name}, splits drawn at random)", parts)
    return CocoLayout("COCO (annotations/instances_<split>.json + <split>/ images)", parts)


def find_coco(source: Path) -> CocoLayout | None:
    """The COCO layout of ``source`` (a JSON file or a folder), or None when it is no COCO layout."""
    if source.is_file():
        if source.suffix.lower() != ".json":
            raise DataError(f"{source}: not a COCO JSON file nor a folder; give the annotations .json or its folder")
        return CocoLayout("one COCO file", {"all": CocoPart(source)})
    if not source.is_dir():
        return None
    official = _official(source)
    if official is not None:
        return official
    robo = {("val" if s == "valid" else s): CocoPart(source / s / ROBOFLOW_FILE)
            for s in ("train", "valid", "test") if (source / s / ROBOFLOW_FILE).is_file()}
    if robo:
        if "train" not in robo:
            raise DataError(f"{source}: has {', '.join(robo)} but no train/{ROBOFLOW_FILE}")
        return CocoLayout(f"Roboflow (train/ valid/ test/ with {ROBOFLOW_FILE})", robo)
    if (source / "annotations.json").is_file():
        return CocoLayout("annotations.json + images", {"all": CocoPart(source / "annotations.json")})
    split_files = {s: CocoPart(source / s / "annotations.json") for s in ("train", "val", "test")
                   if (source / s / "annotations.json").is_file()}
    if split_files:
        if "train" not in split_files:
            raise DataError(f"{source}: has {', '.join(split_files)}/annotations.json but no train/annotations.json")
        return CocoLayout("train/ val/ test/ folders with annotations.json", split_files)
    return None


def image_path(root: Path, file_name: str) -> Path:
    """``file_name`` (checked relative by :func:`cnnlab.data.coco_schema.validate_coco`) under ``root``;
    Windows separators read as ``/``."""
    return root.joinpath(*[p for p in re.split(r"[/\\]", file_name) if p not in ("", ".")])


def candidates(annotations: Path) -> list[Path]:
    """The folders the usual layouts keep an annotation file's images in, nearest first."""
    here, up = annotations.parent, annotations.parent.parent
    split = annotations.stem.removeprefix("instances_")
    return unique_folders([here, here / "images", up / split, up / "images" / split, up / "images", up])


def image_root(annotations: Path, doc: dict[str, Any], images: Path | None) -> Path:
    """The folder ``doc``'s (checked) file names are relative to: the one candidate (:func:`candidates`, or with
    ``--images DIR`` the split's ``DIR/train2017/`` and ``DIR`` itself) that holds them
    (:func:`cnnlab.data.locate.image_root`)."""
    first = f"image {doc['images'][0]['id']}" if doc["images"] else "image"
    where = candidates(annotations)
    if images is not None:
        if not images.is_dir():
            raise DataError(f"--images {images}: no such folder; give the folder the file names in {annotations} "
                            "are relative to")
        split = annotations.stem.removeprefix("instances_")
        where = unique_folders([images / split, images / annotations.parent.name, images])
    fix = ("check --images: the file names must be relative to it or to its split folder" if images is not None
           else "give --images DIR, the folder the file names are relative to")
    return locate.image_root(annotations, [im["file_name"] for im in doc["images"]], where, None,
                             lambda root, name: p if (p := image_path(root, name)).is_file() else None, first, fix)
