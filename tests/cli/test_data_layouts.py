"""Each layout end to end from the command line: train 1 epoch, evaluate, predict at the image's own size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers import coco_images, make_voc, run

def build(kind: str, root: Path) -> tuple[Path, Path]:
    """(what --data names, one image) for a layout built in its real shape."""
    if kind == "coco":
        (root / "annotations").mkdir(parents=True)
        for split, n in (("train2017", 12), ("val2017", 4)):
            doc = coco_images(root / split, n, lambda i: f"{i:012d}.png", n)
            (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(doc))
        return root, root / "val2017" / "000000000001.png"
    if kind == "cvat":
        doc = coco_images(root / "images", 16, lambda i: f"img_{i:03d}.png", 0)
        (root / "annotations.json").write_text(json.dumps(doc))
        return root, root / "images" / "img_001.png"
    for split, n in (("train", 12), ("valid", 2), ("test", 2)):
        doc = coco_images(root / split, n, lambda i, s=split: f"{s}_{i}_png.rf.{i:04x}.png", n)
        (root / split / "_annotations.coco.json").write_text(json.dumps(doc))
    return root, root / "test" / "test_1_png.rf.0001.png"


@pytest.mark.parametrize("kind, layout", [("coco", "read COCO (annotations/instances_<split>.json"),
                                          ("cvat", "read annotations.json + images"),
                                          ("roboflow", "read Roboflow")])
def test_instance_layouts_train_evaluate_and_predict(tmp_path, capsys, kind, layout):
    data, image = build(kind, tmp_path / kind)
    out = tmp_path / "run"
    code, _, err = run(capsys, "segment", "train", "--task", "instance", "--data", str(data), "--epochs", "1",
                       "--batch", "2", "--out", str(out), "--no-progress")
    assert code == 0, err
    assert layout in err and "3 classes: 0 background, 1 square (id 3), 2 bar (id 7)" in err
    assert "sizes H 40–56 × W 40–64 (3 sizes): each image at its own size" in err
    code, text, err = run(capsys, "segment", "eval", str(out), "--json")
    assert code == 0, err
    assert json.loads(text)["images"] == json.loads((out / "test.json").read_text())["images"]
    code, _, err = run(capsys, "segment", "predict", str(out), str(image), "--score-threshold", "0",
                       "--out", str(tmp_path / "p"))
    assert code == 0, err
    assert Image.open(tmp_path / "p" / f"{image.stem}_instances.png").size == Image.open(image).size


def test_the_voc_devkit_trains_and_evaluates(tmp_path, capsys):
    voc = make_voc(tmp_path, 16, 4)
    out = tmp_path / "run"
    code, _, err = run(capsys, "segment", "train", "--data", str(voc.parent), "--model", "unet", "--width", "4",
                       "--epochs", "1", "--batch", "4", "--out", str(out), "--no-progress")
    assert code == 0, err
    assert "read Pascal VOC devkit VOC2012 (ImageSets/Segmentation: train.txt → train, val.txt → test)" in err
    assert "21 classes: 0 background, 1 aeroplane" in err
    code, text, err = run(capsys, "segment", "eval", str(out), "--json")
    assert code == 0, err
    report = json.loads(text)
    assert report["images"] == 4 and len(report["iou"]) == 21
