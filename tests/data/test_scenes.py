"""Scenes: determinism, masks consistent with what is visible, COCO annotations that decode to the instance PNGs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from cnnlab.cli.main import main
from cnnlab.data.scenes import THRESHOLD, SceneConfig, _item_pools, make_scenes, write_scenes

DIGITS = SceneConfig(source="digits", count=40, size=(32, 32), objects=(1, 3), item_px=(12, 18), seed=3)


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    return write_scenes(make_scenes(DIGITS), tmp_path_factory.mktemp("scenes") / "d")


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_same_files_other_seed_other_scenes(written, tmp_path):
    again = write_scenes(make_scenes(DIGITS), tmp_path / "again")
    assert digest(again) == digest(written)
    other = make_scenes(SceneConfig(**{**DIGITS.__dict__, "seed": 4}))
    assert not np.array_equal(other.splits["train"].masks.numpy(), make_scenes(DIGITS).splits["train"].masks.numpy())


def test_layout_splits_and_classes(written):
    assert (written / "classes.txt").read_text().splitlines() == ["background", *[str(i) for i in range(10)]]
    counts = {s: len(list((written / s / "images").glob("*.png"))) for s in ("train", "val", "test")}
    assert counts == {"train": 32, "val": 4, "test": 4}
    for s in counts:
        stems = {sub: sorted(p.stem for p in (written / s / sub).glob("*.png")) for sub in ("images", "masks", "instances")}
        assert stems["images"] == stems["masks"] == stems["instances"]
    assert (written / "preview.png").stat().st_size > 0


def test_masks_are_exactly_the_visible_item_pixels(written):
    for s in ("train", "val", "test"):
        for path in sorted((written / s / "images").glob("*.png")):
            image = np.asarray(Image.open(path))
            mask = np.asarray(Image.open(written / s / "masks" / path.name))
            inst = np.asarray(Image.open(written / s / "instances" / path.name))
            assert Image.open(written / s / "instances" / path.name).mode.startswith("I")   # 16-bit ids
            assert mask.dtype == np.uint8 and set(np.unique(mask)) <= set(range(11))
            assert (image[mask == 0] == 0).all()                 # black canvas wherever no item shows
            assert (image[mask > 0] >= THRESHOLD).all()         # an item pixel wherever a class shows
            assert ((mask > 0) == (inst > 0)).all()


def test_every_coco_rle_decodes_to_the_instance_png(written):
    classes = (written / "classes.txt").read_text().splitlines()
    for s in ("train", "val", "test"):
        coco = COCO(str(written / s / "annotations.json"))           # pycocotools reads our file
        assert {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())} == dict(enumerate(classes[1:], 1))
        for img in coco.loadImgs(coco.getImgIds()):
            inst = np.asarray(Image.open(written / s / img["file_name"].replace("images/", "instances/"))).astype(int)
            mask = np.asarray(Image.open(written / s / img["file_name"].replace("images/", "masks/")))
            anns = coco.loadAnns(coco.getAnnIds(imgIds=img["id"]))
            assert len(anns) == len(set(np.unique(inst)) - {0})
            seen = np.zeros_like(inst)
            for k, a in enumerate(anns, start=1):
                m = coco.annToMask(a).astype(bool)
                assert (m == (inst == k)).all()
                assert set(np.unique(mask[m])) == {a["category_id"]}
                ys, xs = np.nonzero(m)
                assert a["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
                assert a["area"] == int(m.sum()) == int(mask_utils.area(a["segmentation"]))
                assert a["iscrowd"] == 0
                seen += m
            assert seen.max() <= 1                                  # instances never overlap


def test_splits_draw_from_disjoint_item_images():
    _, pools = _item_pools(DIGITS)
    keys = {s: {p.tobytes() for p in pool.images} for s, pool in pools.items()}
    # digits has a few duplicated images; at most those may look shared
    assert len(keys["train"] & keys["test"]) <= 2 and len(keys["train"] & keys["val"]) <= 2


def test_scene_i_does_not_depend_on_the_count():
    small = make_scenes(SceneConfig(**{**DIGITS.__dict__, "count": 20}))
    big = make_scenes(DIGITS)
    assert np.array_equal(small.splits["train"].images[:10].numpy(), big.splits["train"].images[:10].numpy())


@pytest.mark.parametrize("argv, message", [
    (["--objects", "3..1"], "--objects must be MIN..MAX"),
    (["--item-px", "10..40"], "larger than the canvas"),
    (["--source", "no/such/folder"], "not a scene source"),
    (["--count", "2"], "--count must be at least 3"),
])
def test_bad_options_are_one_line_errors(tmp_path, capsys, argv, message):
    code = main(["scenes", "make", "--source", "digits", "--size", "32,32", "--item-px", "12..18", "--count", "9", "--no-progress",
                 "--out", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_an_existing_folder_is_never_overwritten(written, capsys):
    before = digest(written)
    assert main(["scenes", "make", "--source", "digits", "--out", str(written), "--no-progress"]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert digest(written) == before


def test_a_small_count_still_gives_every_split_a_scene():
    s = make_scenes(SceneConfig(**{**DIGITS.__dict__, "count": 3}))
    assert [len(v) for v in s.splits.values()] == [1, 1, 1]


def test_each_item_shows_its_own_class_and_at_least_half_of_itself(tmp_path):
    """Oracle: items are uniform 10×10 squares whose grey level encodes their class (40 + 50·k)."""
    from cnnlab.data.scenes import MIN_VISIBLE

    for k in range(3):
        (tmp_path / f"c{k}").mkdir()
        for j in range(10):
            Image.fromarray(np.full((10, 10), 40 + 50 * k, np.uint8)).save(tmp_path / f"c{k}" / f"{j}.png")
    s = make_scenes(SceneConfig(source=str(tmp_path), count=30, size=(24, 24), objects=(2, 4), item_px=(10, 10),
                                seed=0)).splits["train"]
    overlapped = 0
    for i in range(len(s)):
        owner, image, mask = s.instances[i].numpy(), s.images[i, 0].numpy(), s.masks[i].numpy()
        for ident, cls in enumerate(s.instance_classes[i], start=1):
            visible = owner == ident
            assert set(np.unique(image[visible])) == {40 + 50 * (cls - 1)}      # its own pixels, its own class
            assert set(np.unique(mask[visible])) == {cls}
            assert visible.sum() >= MIN_VISIBLE * 100
            overlapped += visible.sum() < 100
    assert overlapped > 0                                                        # occlusion does happen


def test_scenes_json_records_the_recipe(written):
    doc = json.loads((written / "scenes.json").read_text())
    assert doc["threshold"] == THRESHOLD and doc["config"]["seed"] == 3 and doc["sizes"]["train"] == 32


# sha256 of DIGITS' images, masks and instance ids (train, val, test), computed with the code before same_class
# existed (commit 83573b7): scenes drawn with same_class 0 must stay byte-identical
DIGITS_SHA256 = "42348c4a5fce338fca7da8a7a73bc942d48cb5a1df8d94aee4de244be0501516"


def test_same_class_repeats_the_first_items_class_and_zero_changes_nothing():
    """same_class 1: every scene holds one class only; 0 (the default) draws the scenes it always drew."""
    ones = make_scenes(SceneConfig(**{**DIGITS.__dict__, "same_class": 1.0}))
    for split in ones.splits.values():
        assert all(len(set(classes)) <= 1 for classes in split.instance_classes)
    mixed = make_scenes(DIGITS)
    assert any(len(set(c)) > 1 for c in mixed.splits["train"].instance_classes)
    h = hashlib.sha256()
    for name in ("train", "val", "test"):
        for t in (mixed.splits[name].images, mixed.splits[name].masks, mixed.splits[name].instances):
            h.update(t.numpy().tobytes())
    assert h.hexdigest() == DIGITS_SHA256

    def one_class_share(scenes) -> float:                  # of the scenes with two items or more
        many = [c for c in scenes.splits["train"].instance_classes if len(c) > 1]
        return sum(len(set(c)) == 1 for c in many) / len(many)

    half = make_scenes(SceneConfig(**{**DIGITS.__dict__, "same_class": 0.5, "count": 400}))
    independent = make_scenes(SceneConfig(**{**DIGITS.__dict__, "count": 400}))
    # two items: 0.5 + 0.5 / 10 = 0.55 one class with same_class 0.5, 1/10 drawn independently
    assert one_class_share(half) > 0.35 and one_class_share(independent) < 0.2


def test_same_class_must_be_a_chance(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["scenes", "make", "--source", "digits", "--count", "9", "--same-class", "1.5", "--no-progress",
              "--out", str(tmp_path / "o")])
    assert exit_.value.code == 2 and "must be a number from 0 to 1" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
