"""Reading segmentation folders: images/ + masks/, VOC palette masks, splits, and one-line errors for bad data."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.cli.main import main
from cnnlab.data.scenes import SceneConfig, make_scenes, write_scenes
from cnnlab.data.segmentation import load_segmentation, read_mask
from cnnlab.errors import CnnlabError
from cnnlab.viz.segmentation import voc_palette

CFG = SceneConfig(source="digits", count=30, size=(32, 32), item_px=(12, 16), seed=1)


@pytest.fixture(scope="module")
def scenes_dir(tmp_path_factory) -> Path:
    return write_scenes(make_scenes(CFG), tmp_path_factory.mktemp("seg") / "s")


def test_a_written_scenes_folder_reads_back_as_the_scenes_in_memory(scenes_dir):
    data = load_segmentation(str(scenes_dir))
    mem = make_scenes(CFG).splits
    for name in ("train", "val", "test"):
        assert torch.equal(getattr(data, name).images, mem[name].images)
        assert torch.equal(getattr(data, name).masks, mem[name].masks)
    assert data.classes[0] == "background" and len(data.classes) == 11


def test_voc_palette_pngs_are_read_as_their_indices(tmp_path):
    idx = np.array([[0, 1, 2], [15, 20, 255]], dtype=np.uint8)
    im = Image.fromarray(idx, "P")
    im.putpalette(voc_palette().flatten().tolist())
    im.save(tmp_path / "m.png")
    assert np.array_equal(read_mask(tmp_path / "m.png"), idx)
    # the colours VOC uses for these indices (PASCAL VOC devkit's colour map)
    assert voc_palette()[1].tolist() == [128, 0, 0] and voc_palette()[15].tolist() == [192, 128, 128]
    assert voc_palette()[255].tolist() == [224, 224, 192]


def flat_folder(tmp_path: Path, n: int = 10, classes_txt: bool = True) -> Path:
    root = tmp_path / "flat"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(root / "images" / f"im{i}.jpg")
        Image.fromarray(rng.integers(0, 3, (16, 16), dtype=np.uint8)).save(root / "masks" / f"im{i}.png")
    if classes_txt:
        (root / "classes.txt").write_text("background\ncat\ndog\n")
    return root


def test_a_flat_folder_is_split_three_ways_without_sharing_an_image(tmp_path):
    data = load_segmentation(str(flat_folder(tmp_path)), val_fraction=0.2, seed=0)
    assert data.classes == ["background", "cat", "dog"] and data.shape == (3, 16, 16)
    sizes = (len(data.train), len(data.val), len(data.test))
    assert sum(sizes) == 10 and min(sizes) >= 1
    keys = [{x.numpy().tobytes() for x in getattr(data, s).images} for s in ("train", "val", "test")]
    assert not (keys[0] & keys[1]) and not (keys[0] & keys[2]) and not (keys[1] & keys[2])


def cli_error(capsys, *argv: str) -> str:
    code = main(list(argv))
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    return err


def test_a_mask_without_its_image_is_named_or_skipped(tmp_path, capsys):
    root = flat_folder(tmp_path)
    (root / "images" / "im3.jpg").unlink()
    with pytest.raises(CnnlabError, match=r"masks/im3.png: has no image"):
        load_segmentation(str(root))
    data = load_segmentation(str(root), skip_bad=True)
    assert [Path(p).name for p, _ in data.skipped] == ["im3.png"]
    err = cli_error(capsys, "segment", "train", "--data", str(root), "--out", str(tmp_path / "r"), "--no-progress")
    assert "im3.png: has no image" in err and "--skip-bad" in err


def test_size_mismatch_rgb_mask_and_out_of_range_index_name_the_file(tmp_path):
    root = flat_folder(tmp_path)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "masks" / "im1.png")
    with pytest.raises(CnnlabError, match=r"im1.png: is 8×8 but its image is 16×16"):
        load_segmentation(str(root))
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(root / "masks" / "im1.png")
    with pytest.raises(CnnlabError, match=r"im1.png: a mask must be an 8-bit index PNG .* mode RGB"):
        load_segmentation(str(root))
    Image.fromarray(np.full((16, 16), 7, np.uint8)).save(root / "masks" / "im1.png")
    with pytest.raises(CnnlabError, match=r"im1.png: class index 7 is outside the 3 classes"):
        load_segmentation(str(root))
    Image.fromarray(np.full((16, 16), 255, np.uint8)).save(root / "masks" / "im1.png")
    assert len(load_segmentation(str(root)).classes) == 3      # 255 is "ignore", never out of range


def test_without_classes_txt_the_classes_are_the_indices_seen(tmp_path):
    data = load_segmentation(str(flat_folder(tmp_path, classes_txt=False)))
    assert data.classes == ["background", "class 1", "class 2"]


def test_split_folders_are_used_as_they_are(scenes_dir, tmp_path):
    root = tmp_path / "nosplitval"
    shutil.copytree(scenes_dir / "train", root / "train")
    shutil.copytree(scenes_dir / "test", root / "test")
    data = load_segmentation(str(root), val_fraction=0.25)
    assert len(data.test) == 3 and len(data.train) + len(data.val) == 24 and len(data.val) == 6


def test_not_a_segmentation_folder(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    err = cli_error(capsys, "segment", "train", "--data", str(tmp_path / "x"), "--out", str(tmp_path / "r"))
    assert "no 'images' folder" in err


def test_bi_level_masks_keep_their_indices(tmp_path):
    Image.fromarray(np.array([[0, 1], [1, 0]], dtype=bool)).save(tmp_path / "m.png")   # mode "1"
    assert Image.open(tmp_path / "m.png").mode == "1"
    assert read_mask(tmp_path / "m.png").tolist() == [[0, 1], [1, 0]]


def test_skip_bad_also_leaves_out_masks_with_unknown_classes(tmp_path):
    root = flat_folder(tmp_path)
    Image.fromarray(np.full((16, 16), 7, np.uint8)).save(root / "masks" / "im1.png")
    data = load_segmentation(str(root), skip_bad=True)
    assert [Path(p).name for p, _ in data.skipped] == ["im1.png"]
    assert len(data.train) + len(data.val) + len(data.test) == 9


def test_a_segmentation_folder_given_to_cnnlab_train_points_to_segment_train(tmp_path, capsys):
    root = flat_folder(tmp_path)
    err = cli_error(capsys, "train", "--data", str(root), "--out", str(tmp_path / "r"))
    assert "cnnlab segment train --data" in err


def test_a_segmentation_network_given_to_cnnlab_train_points_to_segment_train(tmp_path, capsys):
    err = cli_error(capsys, "train", "--model", "unet", "--out", str(tmp_path / "r"))
    assert "cnnlab segment train --model unet" in err


def test_masks_move_exactly_with_their_images():
    """Oracle: an image whose pixel values are its mask's classes must come out equal to its mask."""
    from cnnlab.data.augment import make_augment

    g = torch.Generator().manual_seed(0)
    masks = torch.randint(0, 9, (16, 20, 24), generator=g, dtype=torch.uint8)
    for preset in ("flip", "shift", "basic"):
        aug = make_augment(preset, (20, 24), True)
        images, out = aug.warp(masks.unsqueeze(1) + 1, masks, torch.Generator().manual_seed(1))
        inside = out != 255
        assert torch.equal(images[:, 0][inside], out[inside] + 1)          # same pixels moved the same way
        assert (images[:, 0][~inside] == 0).all()                          # ignore exactly where outside
    aug = make_augment("strong", (20, 24), True)
    _, out = aug.warp(masks.unsqueeze(1), masks, torch.Generator().manual_seed(2))
    assert set(out.unique().tolist()) <= set(range(9)) | {255}
