"""Data as the field lays it out: COCO's own, CVAT-style, Roboflow and one-file layouts, the Pascal VOC devkit,
mixed-size image folders and labels CSVs — each built on disk in its real shape from small images made here.

Oracles: pycocotools decodes each COCO polygon (annToMask) and PIL reads each VOC palette mask; the split
lists of the layout say which image goes to which split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.data.instances import load_instances
from cnnlab.data.segmentation import load_segmentation
from cnnlab.data.sources import DataError
from cnnlab.data.voc import VOC_CLASSES
from tests.helpers import COCO_SIZES as SIZES
from tests.helpers import coco_images, make_voc


def write(path: Path, doc: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def truth_masks(doc: dict) -> set[tuple[tuple[int, ...], bytes]]:
    """pycocotools' masks of ``doc`` as (shape, bytes), to find them after the seeded split."""
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = json.loads(json.dumps(doc))
    coco.createIndex()
    return {(m.shape, m.astype(bool).tobytes()) for m in (coco.annToMask(a) for a in doc["annotations"])}


def check_masks(data, docs: list[dict]) -> None:  # type: ignore[no-untyped-def]
    """Every instance mask equals pycocotools' decoding at the image's own size (never resampled)."""
    truth = set().union(*(truth_masks(d) for d in docs))
    n = 0
    for split in (data.train, data.val, data.test):
        for i in range(len(split)):
            for m in split.masks[i]:
                assert (tuple(m.shape), m.numpy().tobytes()) in truth
                assert split.image(i).shape[1:] == m.shape
                n += 1
    assert n == sum(len(d["annotations"]) for d in docs)


def test_coco_official_layout_val2017_is_the_test_split(tmp_path):
    root = tmp_path / "coco"
    train = coco_images(root / "train2017", 10, lambda i: f"{i:012d}.png")
    val = coco_images(root / "val2017", 4, lambda i: f"{i:012d}.png", seed=1)
    write(root / "annotations" / "instances_train2017.json", train)
    write(root / "annotations" / "instances_val2017.json", val)
    data = load_instances(str(root), val_fraction=0.2)
    assert data.layout.startswith("COCO (annotations/instances_<split>.json")
    assert load_instances(str(root / "annotations"), val_fraction=0.2).layout == data.layout   # its folder named
    assert (len(data.train), len(data.val), len(data.test)) == (8, 2, 4)
    assert data.classes == ["background", "square", "bar"] and data.category_ids == [0, 3, 7]
    check_masks(data, [train, val])
    test_sizes = sorted(tuple(data.test.image(i).shape[1:]) for i in range(4))
    assert test_sizes == sorted((h, w) for w, h in (SIZES * 2)[:4])      # val2017's images, at their own sizes


def test_cvat_layout_annotations_json_beside_images_with_bare_names(tmp_path):
    root = tmp_path / "cvat"
    doc = coco_images(root / "images", 12, lambda i: f"img_{i:03d}.png")
    write(root / "annotations.json", doc)
    data = load_instances(str(root))
    assert data.layout == f"annotations.json + images; images in {root / 'images'}"
    assert len(data.train) + len(data.val) + len(data.test) == 12
    check_masks(data, [doc])


def test_roboflow_layout(tmp_path):
    root = tmp_path / "robo"
    docs = {s: coco_images(root / s, n, lambda i, s=s: f"{s}_{i}.jpg.rf.{i:04x}.png", seed=n)
            for s, n in (("train", 8), ("valid", 3), ("test", 3))}
    for s, d in docs.items():
        write(root / s / "_annotations.coco.json", d)
    data = load_instances(str(root))
    assert data.layout.startswith("Roboflow") and (len(data.train), len(data.val), len(data.test)) == (8, 3, 3)
    check_masks(data, list(docs.values()))


def test_one_file_with_sub_folders_in_file_name_and_windows_separators(tmp_path):
    root = tmp_path / "one"
    doc = coco_images(root, 10, lambda i: f"images/batch{i % 2}/{i}.png")
    doc["images"][0]["file_name"] = doc["images"][0]["file_name"].replace("/", "\\")
    data = load_instances(str(write(root / "labels.json", doc)))
    assert data.layout == f"one COCO file; images in {root}" and len(data.train) + len(data.val) + len(data.test) == 10


def test_images_elsewhere_need_images_dir_and_a_missing_one_names_the_folders_searched(tmp_path):
    doc = coco_images(tmp_path / "pictures", 10, lambda i: f"{i}.png")
    ann = write(tmp_path / "labels" / "annotations.json", doc)
    with pytest.raises(DataError, match=r"image 1 \(0.png\) is in none of the folders searched \(.*labels.*\); "
                                        r"give --images DIR"):
        load_instances(str(ann.parent))
    data = load_instances(str(ann.parent), images=str(tmp_path / "pictures"))
    assert len(data.train) + len(data.val) + len(data.test) == 10
    (tmp_path / "pictures" / "3.png").unlink()
    with pytest.raises(DataError, match=r"image file 3.png is not in .*pictures \(the image folder searched\)"):
        load_instances(str(ann.parent), images=str(tmp_path / "pictures"))


def test_two_folders_holding_the_images_are_ambiguous(tmp_path):
    root = tmp_path / "d"
    doc = coco_images(root / "images", 6, lambda i: f"{i}.png")
    coco_images(root, 6, lambda i: f"{i}.png")
    write(root / "annotations.json", doc)
    with pytest.raises(DataError, match=r"both .*/d and .*/d/images hold its images .*give --images DIR"):
        load_instances(str(root))


# -- Pascal VOC -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["year", "devkit", "above"])
def test_voc_devkit_as_downloaded(tmp_path, which):
    voc = make_voc(tmp_path)
    source = {"year": voc, "devkit": voc.parent, "above": tmp_path}[which]
    data = load_segmentation(str(source), val_fraction=0.25)
    assert data.classes == VOC_CLASSES and len(VOC_CLASSES) == 21
    assert data.layout.startswith("Pascal VOC devkit VOC2012") and "val.txt → test" in data.layout
    assert (len(data.train), len(data.val), len(data.test)) == (6, 2, 4)
    val_ids = (voc / "ImageSets/Segmentation/val.txt").read_text().split()
    truth = {i: np.array(Image.open(voc / "SegmentationClass" / f"{i}.png")) for i in val_ids}
    got = [data.test.pair(k)[1].numpy() for k in range(len(data.test))]
    assert all(any(g.shape == t.shape and np.array_equal(g, t) for t in truth.values()) for g in got)
    assert all(255 in g for g in got)                               # the borders stay "ignore"


def test_voc_a_listed_image_without_its_mask_names_the_list(tmp_path):
    voc = make_voc(tmp_path)
    (voc / "SegmentationClass" / "2007_000009.png").unlink()
    with pytest.raises(DataError, match=r"2007_000009.png: missing \(listed in .*val.txt\).*--skip-bad"):
        load_segmentation(str(voc))
    assert len(load_segmentation(str(voc), skip_bad=True).skipped) == 1


def test_two_voc_years_are_ambiguous(tmp_path):
    make_voc(tmp_path)
    (tmp_path / "VOCdevkit" / "VOC2007" / "JPEGImages").mkdir(parents=True)
    (tmp_path / "VOCdevkit" / "VOC2007" / "SegmentationClass").mkdir()
    with pytest.raises(DataError, match=r"holds 2 VOC folders \(VOC2007, VOC2012\); give --data .*VOC2012"):
        load_segmentation(str(tmp_path / "VOCdevkit"))


def test_a_voc_id_in_two_lists_is_refused(tmp_path):
    voc = make_voc(tmp_path)
    with open(voc / "ImageSets/Segmentation/val.txt", "a") as f:
        f.write("2007_000001\n")
    with pytest.raises(DataError, match=r"val.txt: 2007_000001 is listed in train.txt too"):
        load_segmentation(str(voc))


def test_images_dir_with_coco_splits_looks_in_its_split_folders(tmp_path):
    root, pics = tmp_path / "coco", tmp_path / "pictures"
    write(root / "annotations" / "instances_train2017.json", coco_images(pics / "train2017", 8, lambda i: f"{i}.png"))
    write(root / "annotations" / "instances_val2017.json", coco_images(pics / "val2017", 3, lambda i: f"{i}.png", 5))
    data = load_instances(str(root), images=str(pics))
    assert (len(data.train) + len(data.val), len(data.test)) == (8, 3)
