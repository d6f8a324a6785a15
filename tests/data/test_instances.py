"""Instance data: COCO folders (as 'scenes make' writes them, and hand-made bad ones), label-image folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.data.instances import load_instances, make_target
from cnnlab.data.sources import DataError

from tests.zygote import run_cnnlab


def test_a_scenes_folder_reads_back_the_instances_it_was_drawn_with(tmp_path):
    from cnnlab.data.scenes import SceneConfig, make_scenes, write_scenes

    scenes = make_scenes(SceneConfig(source="digits", count=40, size=(48, 48), objects=(1, 3), item_px=(16, 24)))
    write_scenes(scenes, tmp_path / "s")
    data = load_instances(str(tmp_path / "s"))
    assert data.classes == scenes.classes and data.category_ids == list(range(11))
    for name in ("train", "val", "test"):
        drawn, read = scenes.splits[name], getattr(data, name)
        assert torch.equal(read.images, drawn.images)
        for i in range(len(drawn)):
            owner = drawn.instances[i]
            ids = [j for j in range(1, len(drawn.instance_classes[i]) + 1) if bool((owner == j).any())]
            assert torch.equal(read.masks[i], torch.stack([owner == j for j in ids]))        # pycocotools' RLE
            assert read.labels[i].tolist() == [drawn.instance_classes[i][j - 1] for j in ids]


def test_boxes_cover_the_mask_pixels_as_coco_counts_them():
    m = torch.zeros(1, 10, 10, dtype=torch.bool)
    m[0, 2:5, 3:9] = True                     # rows 2..4, columns 3..8: COCO bbox [3, 2, 6, 3]
    assert make_target(m, torch.tensor([1]))["boxes"].tolist() == [[3.0, 2.0, 9.0, 5.0]]


def coco_folder(root: Path, annotations: list[dict], files: tuple[str, ...] = ("a.png", "b.png"),
                categories: tuple = ((3, "cat"), (17, "dog"))) -> Path:
    (root / "images").mkdir(parents=True)
    for name in files:
        Image.fromarray(np.full((20, 30), 90, np.uint8)).save(root / "images" / name)
    doc = {"images": [{"id": 1, "file_name": "images/a.png", "height": 20, "width": 30},
                      {"id": 2, "file_name": "images/b.png", "height": 20, "width": 30}],
           "annotations": annotations, "categories": [{"id": i, "name": n} for i, n in categories]}
    (root / "annotations.json").write_text(json.dumps(doc))
    return root


def poly(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


GOOD = [{"id": 5, "image_id": 1, "category_id": 3, "segmentation": poly(2, 2, 10, 8), "iscrowd": 0},
        {"id": 6, "image_id": 2, "category_id": 17, "segmentation": poly(5, 5, 25, 15), "iscrowd": 0}]


def test_category_ids_with_gaps_become_contiguous_classes_and_map_back(tmp_path):
    from cnnlab.train.tasks.instance import coco_results

    for s in ("train", "val", "test"):
        coco_folder(tmp_path / s, GOOD)
    data = load_instances(str(tmp_path))
    assert data.classes == ["background", "cat", "dog"] and data.category_ids == [0, 3, 17]
    assert [lab.tolist() for lab in data.train.labels] == [[1], [2]]
    area = int(data.train.masks[0].sum())
    assert 48 <= area <= 63                   # pycocotools rasterises the 8×6 polygon: about 48 pixels
    det = {**make_target(data.train.masks[1], data.train.labels[1]), "scores": torch.tensor([0.5])}
    det["masks"] = det["masks"].bool()
    assert coco_results([det], data.category_ids)[0]["category_id"] == 17


@pytest.mark.parametrize("bad, message", [
    ({"id": 7, "image_id": 2, "category_id": 42, "segmentation": poly(1, 1, 5, 5)},
     "annotation 7: unknown category 42"),
    ({"id": 8, "image_id": 2, "category_id": 3, "segmentation": poly(1, 1, 35, 5)},
     "annotation 8: the polygon reaches outside the 30×20 image"),
    ({"id": 9, "image_id": 2, "category_id": 3, "segmentation": {"size": [10, 10], "counts": "0"}},
     "annotation 9: the RLE mask is 10×10 but the image is 20×30"),
    ({"id": 10, "image_id": 99, "category_id": 3, "segmentation": poly(1, 1, 5, 5)},
     r"annotation 10 \(index 1\): field 'image_id': must be the integer id of an image that 'images' lists \(got 99\)"),
])
def test_a_bad_annotation_is_named_by_its_id(tmp_path, bad, message):
    root = coco_folder(tmp_path / "d", [GOOD[0], bad])
    with pytest.raises(DataError, match=message):
        load_instances(str(root))


def test_skip_bad_leaves_the_image_out_and_lists_it(tmp_path):
    for s in ("train", "val", "test"):
        coco_folder(tmp_path / s, [*GOOD, {"id": 7, "image_id": 2, "category_id": 42,
                                           "segmentation": poly(1, 1, 5, 5)}], files=("a.png", "b.png"))
    with pytest.raises(DataError, match="pass --skip-bad"):
        load_instances(str(tmp_path))
    data = load_instances(str(tmp_path), skip_bad=True)
    assert len(data.train) == 1 and len(data.skipped) == 3 and "unknown category 42" in data.skipped[0][1]


def test_a_missing_image_names_the_annotation(tmp_path):
    root = coco_folder(tmp_path / "d", GOOD, files=("a.png",))
    with pytest.raises(DataError, match=r"annotation 6 \(image 2\): the image file images/b.png is not in "
                                        r".*/d \(the image folder searched\).*--images DIR"):
        load_instances(str(root))


def test_the_cli_reports_a_bad_annotation_in_one_line(tmp_path):
    root = coco_folder(tmp_path / "d", [GOOD[0], {"id": 7, "image_id": 2, "category_id": 42,
                                                  "segmentation": poly(1, 1, 5, 5)}])
    p = run_cnnlab("segment", "train", "--task", "instance", "--data", str(root),
                   "--out", str(tmp_path / "run"))
    assert p.returncode == 2 and "annotation 7: unknown category 42" in p.stderr and p.stderr.count("\n") == 1
    assert not (tmp_path / "run").exists()


def label_folder(root: Path, with_classes: bool) -> Path:
    for sub in ("images", "instances", *(("masks",) if with_classes else ())):
        (root / sub).mkdir(parents=True)
    for k in range(5):
        owner = np.zeros((16, 16), np.uint16)
        owner[1:6, 1:6] = 7
        owner[8:14, 2:12] = 300 + k             # ids above 255 need a 16-bit label image
        Image.fromarray(np.full((16, 16), 60 + k, np.uint8)).save(root / "images" / f"{k}.png")
        Image.fromarray(owner).save(root / "instances" / f"{k}.png")
        if with_classes:
            cls = np.where(owner == 7, 2, np.where(owner > 0, 1, 0)).astype(np.uint8)
            cls[8, 2] = 2                       # one stray pixel: the majority decides
            Image.fromarray(cls).save(root / "masks" / f"{k}.png")
    return root


def test_label_images_give_one_instance_per_integer(tmp_path):
    data = load_instances(str(label_folder(tmp_path / "a", with_classes=False)), val_fraction=0.25)
    assert data.classes == ["background", "object"]
    everything = [*data.train.masks, *data.val.masks, *data.test.masks]
    assert len(everything) == 5 and all(m.shape == (2, 16, 16) for m in everything)
    assert sorted(int(v) for v in everything[0].sum((1, 2))) == [25, 60]
    data = load_instances(str(label_folder(tmp_path / "b", with_classes=True)), val_fraction=0.25)
    assert data.classes == ["background", "class 1", "class 2"]
    assert data.train.labels[0].tolist() == [2, 1]           # id 7 (class 2), then id 30x (class 1)


def test_an_instance_on_background_only_is_named_and_ignored_pixels_do_not_vote(tmp_path):
    root = label_folder(tmp_path / "a", with_classes=True)
    cls = np.asarray(Image.open(root / "masks" / "0.png")).copy()
    cls[8:14, 2:12] = 255                        # the second instance: ignored pixels only
    Image.fromarray(cls).save(root / "masks" / "0.png")
    with pytest.raises(DataError, match="0.png: an instance lies on background or ignored pixels only"):
        load_instances(str(root), val_fraction=0.25)
    data = load_instances(str(root), val_fraction=0.25, skip_bad=True)
    assert len(data.skipped) == 1 and data.classes == ["background", "class 1", "class 2"]


def test_images_of_different_sizes_keep_their_own_size(tmp_path):
    root = coco_folder(tmp_path / "d", GOOD)
    Image.fromarray(np.full((40, 30), 90, np.uint8)).save(root / "images" / "b.png")
    doc = json.loads((root / "annotations.json").read_text())
    doc["images"][1]["height"] = 40
    (root / "annotations.json").write_text(json.dumps(doc))
    from cnnlab.data.instances import _stack, read_coco

    xs, ys, _ = read_coco(root / "annotations.json", None, None, False, [])
    own = _stack(root, xs, ys, {3: 1, 17: 2}, 1, None)                 # no --size: a canvas, masks untouched
    assert own.images.shape == (2, 1, 40, 30) and own.sizes.tolist() == [[20, 30], [40, 30]]
    assert [tuple(m.shape[1:]) for m in own.masks] == [(20, 30), (40, 30)]
    assert torch.equal(own.image(1), xs[1]) and torch.equal(own.masks[1], ys[1][0])
    from cnnlab.data.instances import _stack, read_coco

    split = _stack(root, xs, ys, {3: 1, 17: 2}, 1, (20, 30))        # what --size 20,30 does
    assert split.images.shape == (2, 1, 20, 30) and split.masks[1].shape == (1, 20, 30)
    assert split.masks[1].sum() > 0                                    # nearest-neighbour keeps the object
