"""A COCO instances document checked against the format before any of it is used.

    from cnnlab.data.coco_schema import validate_coco
    validate_coco(json.loads(text), "data/annotations.json")    # DataError naming the first mistake

The checks follow COCO's instances format (cocodataset.org/#format-data): a JSON object
with lists ``images``, ``annotations`` and ``categories``; every image an object with a
unique integer ``id``, a relative ``file_name`` and positive ``width`` / ``height``;
every category a unique integer ``id`` and a ``name``; every annotation a unique integer
``id``, the ``image_id`` of a listed image, an integer ``category_id``, and when given
``iscrowd`` 0 or 1, a ``bbox`` of 4 finite numbers, a finite ``area`` and a
``segmentation`` that is polygons or RLE. ``true`` and ``false`` are not integers here.

These are mistakes in the document itself, so they are always errors. What depends on
the image files — a file missing, a mask reaching outside its image, an RLE of another
size than the image — and an annotation whose category is not listed, are left to the
reader (``cnnlab.data.instances.read_coco``), where ``--skip-bad`` can leave that image out.

Each message is one line: ``PATH: annotation 7 (index 3): field 'image_id': must be the
integer id of a listed image (got [4])``; a value from the file is echoed as at most 40
characters of its ``repr``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any, NoReturn

from cnnlab.data.sources import DataError
from cnnlab.text import excerpt

MAX_SIDE = 65_535              # pixels per image side (JPEG's largest; Pillow refuses ~179 M pixels anyway)
INT64 = 2**63                  # ids must fit pycocotools' and numpy's int64
RLE_ALPHABET = re.compile(r"[0-o]*")   # compressed RLE: 6-bit values written as chr(48 + v), '0' … 'o'



MAX_CATEGORIES = 10_000      # classes of one instance-segmentation data set


def _is_int(v: Any) -> bool:
    """A JSON integer (not ``true``/``false``) that fits int64."""
    return type(v) is int and -INT64 <= v < INT64


def _finite_numbers(values: list[Any]) -> bool:
    """Every value an int or float (no bools, strings or nulls) and none NaN or ±inf."""
    if not set(map(type, values)) <= {int, float}:
        return False
    try:          # NaN or ±inf anywhere makes the sum non-finite; an int past float range overflows
        return math.isfinite(sum(values))
    except OverflowError:
        return False


class _Place:
    """Where in the document a check is: ``PATH: annotation 7 (index 3)``; ``fail`` raises the DataError."""

    __slots__ = ("where", "kind", "index", "item")

    def __init__(self, where: str, kind: str, index: int, item: Any) -> None:
        self.where, self.kind, self.index, self.item = where, kind, index, item

    def fail(self, field: str | None, why: str) -> NoReturn:
        ident = self.item.get("id") if isinstance(self.item, dict) else None
        at = f"{self.kind} {ident} (index {self.index})" if _is_int(ident) else f"{self.kind} at index {self.index}"
        raise DataError(f"{self.where}: {at}: " + (f"field '{field}': " if field else "") + why)

    def want(self, field: str, what: str) -> NoReturn:
        """Fail on ``field`` of the item: it must be ``what``; the value it has is echoed, or 'missing'."""
        got = f"got {excerpt(self.item[field])}" if field in self.item else "missing"
        self.fail(field, f"must be {what} ({got})")


def validate_coco(doc: Any, where: str) -> None:
    """Raise a one-line DataError for the first way ``doc`` breaks COCO's instances format (see the module notes);
    ``where`` (the file) starts the message."""
    lists = "a COCO instances file is a JSON object with 'images', 'annotations' and 'categories' lists"
    if not isinstance(doc, dict):
        raise DataError(f"{where}: {lists} (got {excerpt(doc)})")
    missing = [f"'{key}'" for key in ("images", "annotations", "categories") if key not in doc]
    if missing:
        raise DataError(f"{where}: {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing; {lists}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc[key], list):
            raise DataError(f"{where}: '{key}' must be a list (got {excerpt(doc[key])}); {lists}")
    if not doc["categories"]:
        raise DataError(f"{where}: 'categories' is empty; list each class as {{\"id\": 1, \"name\": \"cat\"}}")
    if len(doc["categories"]) > MAX_CATEGORIES:
        raise DataError(f"{where}: {len(doc['categories']):,} categories, past the limit of {MAX_CATEGORIES:,} (LVIS "
                        "has 1,203; a network's classifier grows with each); merge or drop categories")
    image_ids = _check_images(doc["images"], where)
    _check_categories(doc["categories"], where)
    _check_annotations(doc["annotations"], image_ids, where)


def _check_unique(seen: dict[int, int], ident: int, index: int, place: _Place, kind: str) -> None:
    """Record ``ident`` at ``index``; an id given twice is an error naming both entries."""
    if ident in seen:
        place.fail("id", f"{kind} {ident} is listed twice (indices {seen[ident]} and {index}); give each its own id")
    seen[ident] = index


def _entries(items: list[Any], where: str, kind: str, fields: str, seen: dict[int, int]
             ) -> Iterator[tuple[dict[str, Any], _Place]]:
    """Each of ``items`` (an image or a category) as an object with a unique integer ``id``, and its place."""
    for i, item in enumerate(items):
        place = _Place(where, kind, i, item)
        if not isinstance(item, dict):
            place.fail(None, f"must be an object with {fields} (got {excerpt(item)})")
        if not _is_int(item.get("id")):
            place.want("id", "an integer")
        _check_unique(seen, item["id"], i, place, kind)
        yield item, place


def _check_images(images: list[Any], where: str) -> dict[int, int]:
    """{image id: index} of well-formed ``images``."""
    seen: dict[int, int] = {}
    for im, place in _entries(images, where, "image", "'id', 'file_name', 'width' and 'height'", seen):
        _check_file_name(im.get("file_name"), place)
        for side in ("height", "width"):
            v = im.get(side)
            if not _is_int(v) or not 1 <= v <= MAX_SIDE:
                place.want(side, f"a whole number of pixels, 1 to {MAX_SIDE:,}")
    return seen


def _check_file_name(name: Any, place: _Place) -> None:
    """A non-empty path relative to the annotations file's folder that cannot climb out of it."""
    if not isinstance(name, str) or not name.strip():
        place.want("file_name", "the image's path relative to the folder")
    depth, climbs = 0, False
    for part in re.split(r"[/\\]", name):
        depth += -1 if part == ".." else 0 if part in ("", ".") else 1
        climbs = climbs or depth < 0
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name) or climbs or "\x00" in name:
        place.fail("file_name", f"must be a path inside the folder, like images/0001.png, that no '..' leads out "
                                f"of (got {excerpt(name)})")


def _check_categories(categories: list[Any], where: str) -> None:
    """Objects with a unique integer ``id`` and a string ``name``."""
    for cat, place in _entries(categories, where, "category", "'id' and 'name'", {}):
        if not isinstance(cat.get("name"), str) or not cat["name"].strip():
            place.want("name", "the class name, a non-empty string")


def _check_annotations(annotations: list[Any], image_ids: dict[int, int], where: str) -> None:
    """Each annotation: an object, unique id, listed image, integer category, optional fields well-formed."""
    seen: dict[int, int] = {}
    for i, a in enumerate(annotations):
        place = _Place(where, "annotation", i, a)
        if not isinstance(a, dict):
            place.fail(None, "must be an object with 'id', 'image_id', 'category_id' and 'segmentation' "
                             f"(got {excerpt(a)})")
        if not _is_int(a.get("id")):
            place.want("id", "an integer")
        _check_unique(seen, a["id"], i, place, "annotation")
        if not _is_int(a.get("image_id")) or a["image_id"] not in image_ids:
            place.want("image_id", "the integer id of an image that 'images' lists")
        if not _is_int(a.get("category_id")):
            place.want("category_id", "an integer category id")
        _check_optional(a, place)
        if a.get("segmentation") is not None:
            _check_segmentation(a["segmentation"], place)


def _check_optional(a: dict[str, Any], place: _Place) -> None:
    """``iscrowd`` 0 or 1, ``bbox`` [x, y, w, h] finite, ``area`` finite — each when given."""
    if "iscrowd" in a and not (_is_int(a["iscrowd"]) and a["iscrowd"] in (0, 1)):
        place.want("iscrowd", "0 or 1")
    if "bbox" in a and not (isinstance(a["bbox"], list) and len(a["bbox"]) == 4 and _finite_numbers(a["bbox"])):
        place.want("bbox", "[x, y, width, height], 4 finite numbers")
    if "area" in a and not _finite_numbers([a["area"]]):
        place.want("area", "a finite number")


def _check_segmentation(seg: Any, place: _Place) -> None:
    """Polygons ``[[x1, y1, x2, y2, x3, y3, ...], ...]`` or RLE ``{"size": [h, w], "counts": ...}``."""
    if isinstance(seg, list):
        for j, p in enumerate(seg):
            if not (isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0 and _finite_numbers(p)):
                place.fail("segmentation", f"polygon {j} must be [x1, y1, x2, y2, x3, y3, ...]: an even count, "
                                           f"at least 6, of finite numbers (got {excerpt(p)})")
    elif isinstance(seg, dict):
        _check_rle(seg, place)
    else:
        place.want("segmentation", "a list of polygons or an RLE object {\"size\": [h, w], \"counts\": ...}")


def _check_rle(seg: dict[str, Any], place: _Place) -> None:
    """``size`` [h, w] and ``counts``: run lengths summing to h·w, or pycocotools' compressed string."""
    size, counts = seg.get("size"), seg.get("counts")
    if not (isinstance(size, list) and len(size) == 2 and all(_is_int(v) and 1 <= v <= MAX_SIDE for v in size)):
        place.fail("segmentation", f"an RLE's 'size' must be [height, width], two whole numbers 1 to {MAX_SIDE:,} "
                                   f"(got {excerpt(size)})")
    pixels = size[0] * size[1]
    if isinstance(counts, list):
        if not (set(map(type, counts)) <= {int} and (not counts or min(counts) >= 0) and sum(counts) == pixels):
            place.fail("segmentation", f"an RLE's 'counts' must be run lengths, whole numbers ≥ 0 summing to "
                                       f"height × width = {pixels:,} (got {excerpt(counts)})")
    elif isinstance(counts, str):
        if len(counts) > pixels + 16 or not RLE_ALPHABET.fullmatch(counts):
            place.fail("segmentation", "an RLE's 'counts' string must be pycocotools' compressed RLE: characters "
                                       f"'0' to 'o', at most {pixels + 16:,} of them (got {excerpt(counts)})")
    else:
        place.fail("segmentation", f"an RLE's 'counts' must be a list of run lengths or a compressed RLE string "
                                   f"(got {excerpt(counts)})")
