"""Data sources: IDX files, digits, image folders; bad data gets one clear error."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.data import DataError, load_data
from cnnlab.data.augment import apply, make_augment
from cnnlab.data.sources import read_idx
from tests.helpers import make_folder


def write_idx(path: Path, array: np.ndarray, truncate: int = 0) -> None:
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    body = array.astype(np.uint8).tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + body[:len(body) - truncate])


def fake_fashion(folder: Path, n_train: int = 50, n_test: int = 20, truncate: int = 0) -> None:
    rng = np.random.default_rng(0)
    write_idx(folder / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (n_train, 28, 28)), truncate)
    write_idx(folder / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, n_train))
    write_idx(folder / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (n_test, 28, 28)))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, n_test))


def test_fashion_mnist_idx_files_from_any_folder(tmp_path):
    fake_fashion(tmp_path)
    data = load_data("fashion-mnist", data_dir=tmp_path, val_fraction=0.2)
    assert data.train.images.shape == (40, 1, 28, 28) and len(data.val) == 10 and len(data.test) == 20
    assert data.train.images.dtype == torch.uint8 and data.classes[0] == "T-shirt/top"


def test_missing_or_truncated_fashion_mnist_is_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load_data("fashion-mnist", data_dir=tmp_path)
    fake_fashion(tmp_path, truncate=100)
    with pytest.raises(DataError, match="truncated"):
        read_idx(tmp_path / "train-images-idx3-ubyte.gz")


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_the_real_fashion_mnist():
    data = load_data("fashion-mnist", val_fraction=0.1)
    assert (len(data.train), len(data.val), len(data.test)) == (54000, 6000, 10000)
    assert torch.bincount(data.test.labels).tolist() == [1000] * 10


def test_digits_split_is_seeded_and_complete():
    a, b = load_data("digits", seed=3), load_data("digits", seed=3)
    assert torch.equal(a.train.labels, b.train.labels)
    assert len(a.train) + len(a.val) + len(a.test) == 1797
    assert a.shape == (1, 8, 8) and not a.flip_ok
    assert load_data("digits", channels=3, size=(16, 16)).shape == (3, 16, 16)


def test_image_folder_with_a_seeded_split_and_skipped_bad_images(tmp_path):
    make_folder(tmp_path / "pets")
    (tmp_path / "pets" / "cat" / "broken.png").write_bytes(b"not a png")
    data = load_data(str(tmp_path / "pets"), val_fraction=0.25)
    assert data.classes == ["cat", "dog"] and data.shape == (3, 12, 10)
    assert len(data.train) + len(data.val) + len(data.test) == 12
    assert [Path(p).name for p, _ in data.skipped] == ["broken.png"]
    with pytest.raises(DataError, match="broken.png: cannot decode"):
        load_data(str(tmp_path / "pets"), strict=True)
    grey = load_data(str(tmp_path / "pets"), channels=1, size=(8, 8))
    assert grey.shape == (1, 8, 8)


def test_image_folder_with_train_val_test_subfolders(tmp_path):
    for split in ("train", "val", "test"):
        make_folder(tmp_path / "set" / split, per_class=3)
    data = load_data(str(tmp_path / "set"))
    assert (len(data.train), len(data.val), len(data.test)) == (6, 6, 6)


def make_unique_folder(root: Path, per_class: int = 10, start: int = 0) -> int:
    """Images whose first two pixels hold their id (start, start+1, ...); returns the next free id."""
    n = start
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
        for _ in range(per_class):
            arr = np.full((6, 6), 0, dtype=np.uint8)
            arr[0, 0], arr[0, 1] = n % 256, n // 256
            Image.fromarray(arr, "L").save(root / c / f"{n}.png")
            n += 1
    return n


def _ids(split) -> set[int]:
    x = split.images[:, 0, 0, :2].long()
    return set((x[:, 0] + 256 * x[:, 1]).tolist())


@pytest.mark.parametrize("layout", ["flat", "train", "train+val", "train+test", "train+val+test"])
def test_train_val_and_test_never_share_an_image(tmp_path, layout):
    total = 0
    for part in ([""] if layout == "flat" else layout.split("+")):
        total = make_unique_folder(tmp_path / "set" / part, start=total)
    data = load_data(str(tmp_path / "set"), channels=1, seed=5)
    train, val, test = _ids(data.train), _ids(data.val), _ids(data.test)
    assert len(train) == len(data.train) and len(val) == len(data.val) and len(test) == len(data.test)
    assert not (train & val) and not (train & test) and not (val & test)
    assert train | val | test == set(range(total))


def test_a_split_folder_without_readable_images_is_an_error(tmp_path):
    """An unreadable test/ folder used to give an empty test split, then test images drawn from train."""
    make_folder(tmp_path / "set" / "train")
    for c in ("cat", "dog"):
        (tmp_path / "set" / "test" / c).mkdir(parents=True)
        (tmp_path / "set" / "test" / c / "x.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"set/test: no readable images"):
        load_data(str(tmp_path / "set"))


def test_a_test_class_the_training_images_lack_is_an_error_not_dropped(tmp_path):
    make_folder(tmp_path / "set" / "train")
    make_folder(tmp_path / "set" / "test", classes=("cat", "dog", "bird"), per_class=2)
    with pytest.raises(DataError, match=r"set/test: class folder\(s\) bird not in .*set/train"):
        load_data(str(tmp_path / "set"))


@pytest.mark.parametrize("make, needle", [
    (lambda root: make_folder(root, classes=("only",)), "at least two"),
    (lambda root: [(root / c).mkdir(parents=True) for c in ("a", "b")], "no readable images"),
    (lambda root: None, "no such folder"),
])
def test_bad_folders(tmp_path, make, needle):
    make(tmp_path / "d")
    with pytest.raises(DataError, match=needle):
        load_data(str(tmp_path / "d"))


def test_unknown_name_and_bad_fraction():
    with pytest.raises(DataError, match="unknown data set 'cifar'"):
        load_data("cifar")
    with pytest.raises(DataError, match="between 0 and 1"):
        load_data("digits", val_fraction=1.5)


def test_augmentation_is_per_image_seeded_by_its_generator_and_keeps_shape():
    x = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    aug = make_augment("strong", (28, 28), flip=True)
    a = apply(aug, x, torch.Generator().manual_seed(0))
    torch.manual_seed(123)                       # the global generator plays no part
    b = apply(aug, x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and a.dtype == torch.uint8 and torch.equal(a, b)
    assert not torch.equal(a, x)
    assert not torch.equal(a[0], apply(aug, x, torch.Generator().manual_seed(1))[0])
    assert make_augment("none", (28, 28), flip=True) is None


def _warp(theta: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
    import torch.nn.functional as F

    grid = F.affine_grid(theta, list(img.shape), align_corners=False)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@pytest.mark.parametrize("size", [(28, 28), (20, 32)])
def test_the_affine_matrices_are_torchvisions_rotation_and_shift(size):
    """Oracle: torchvision.transforms.v2.functional.rotate / affine on the same parameters."""
    from torchvision.transforms.v2 import functional as TF

    from cnnlab.data.augment import compose

    h, w = size
    img = torch.rand(1, 1, h, w) * 255
    one, zero = torch.ones(1), torch.zeros(1)
    for degrees in (7.0, -9.5):
        theta = compose(size, one, one, zero, zero, torch.tensor([degrees]).deg2rad(), zero, zero, one)
        ref = TF.rotate(img, -degrees, interpolation=TF.InterpolationMode.BILINEAR)   # torchvision: counter-clockwise
        assert (_warp(theta, img) - ref).abs().max() < 0.01
    theta = compose(size, one, one, zero, zero, zero, torch.tensor([6 / w]), torch.tensor([-2 / h]), one)
    ref = TF.affine(img, angle=0.0, translate=[3, -1], scale=1.0, shear=[0.0, 0.0])
    assert (_warp(theta, img) - ref).abs().max() < 0.01
    flipped = compose(size, one, one, zero, zero, zero, zero, zero, -one)
    assert torch.allclose(_warp(flipped, img), img.flip(-1), atol=1e-3)


def test_basic_shifts_are_torchvisions_nearest_neighbour_affine():
    """Oracle: torchvision.transforms.v2.functional.affine with its default (nearest) interpolation."""
    from torchvision.transforms.v2 import functional as TF

    from cnnlab.data.augment import compose

    img = torch.randint(0, 256, (1, 1, 28, 28), dtype=torch.uint8)
    one, zero = torch.ones(1), torch.zeros(1)
    for px, py in ((2.3, -1.6), (-2.8, 2.2)):
        theta = compose((28, 28), one, one, zero, zero, zero, torch.tensor([2 * px / 28]), torch.tensor([2 * py / 28]),
                        one)
        import torch.nn.functional as F

        grid = F.affine_grid(theta, [1, 1, 28, 28], align_corners=False)
        ours = F.grid_sample(img.float(), grid, mode="nearest", padding_mode="zeros", align_corners=False)
        ref = TF.affine(img, angle=0.0, translate=[px, py], scale=1.0, shear=[0.0, 0.0])
        assert (ours.to(torch.uint8) == ref).float().mean() > 0.97     # rounding ties may differ on a row/column
    assert make_augment("basic", (28, 28), flip=True).mode == "nearest"
    assert make_augment("flip", (28, 28), flip=False) is None          # digits: nothing to do
    x = torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8)
    out = make_augment("flip", (28, 28), flip=True)(x, torch.Generator().manual_seed(0))
    assert all(torch.equal(o, i) or torch.equal(o, i.flip(-1)) for o, i in zip(out, x))


def test_flip_only_gives_each_image_or_its_mirror_and_a_slice_gets_the_whole_batch_draws():
    from cnnlab.data.augment import Augment

    x = torch.randint(0, 256, (64, 1, 8, 8), dtype=torch.uint8)
    flip = Augment((8, 8), flip=True, shift=0.0)
    out = flip(x, torch.Generator().manual_seed(3))
    mirrored = torch.tensor([torch.equal(o, i.flip(-1)) for o, i in zip(out, x)])
    kept = torch.tensor([torch.equal(o, i) for o, i in zip(out, x)])
    assert bool((mirrored | kept).all()) and 10 < int(mirrored.sum()) < 54
    strong = make_augment("strong", (8, 8), flip=True)
    whole = strong(x, torch.Generator().manual_seed(5))
    half = strong(x[32:], torch.Generator().manual_seed(5), first=32, total=64)   # torchrun rank 1 of 2
    assert torch.equal(whole[32:], half)


def test_random_erasing_draws_torchvisions_rectangles_on_half_the_images():
    """Oracle: torchvision.transforms.v2.RandomErasing's documented ranges (p 0.5, area 2–33 %, aspect 0.3–3.3):
    each erased region is one axis-aligned rectangle inside the image; everything else is the flipped or kept
    image; a mask's erased pixels become the ignore index; a torchrun slice gets the whole batch's draws."""
    from torchvision.transforms import v2

    ref = v2.RandomErasing()
    assert (ref.p, ref.scale, ref.ratio) == (0.5, (0.02, 0.33), (0.3, 3.3))
    x = torch.full((400, 1, 28, 28), 7, dtype=torch.uint8)     # a noise pixel is 7 too with chance 1/256
    aug = make_augment("erase", (28, 28), flip=False)
    images, masks = aug.warp(x, torch.zeros(400, 28, 28, dtype=torch.uint8), torch.Generator().manual_seed(0))
    changed = masks == 255
    assert torch.equal(changed, images[:, 0] != 7) or ((changed != (images[:, 0] != 7)).float().mean() < 0.01)
    erased = changed.flatten(1).any(1)
    assert 160 < int(erased.sum()) < 240                               # about half
    for m in changed[erased]:
        ys, xs = m.nonzero(as_tuple=True)
        h, w = int(ys.max() - ys.min() + 1), int(xs.max() - xs.min() + 1)
        assert int(m.sum()) == h * w                                    # one solid rectangle
        assert 0.02 * 784 * 0.8 <= h * w <= 0.33 * 784 * 1.2 and 0.3 / 1.5 <= h / w <= 3.3 * 1.5
    whole = aug(x, torch.Generator().manual_seed(5))
    assert torch.equal(whole[200:], aug(x[200:], torch.Generator().manual_seed(5), first=200, total=400))


def test_sixteen_bit_grey_pngs_are_scaled_not_saturated(tmp_path):
    from cnnlab.data.sources import decode_image

    a = np.array([[0, 257, 32896], [65535, 1000, 50000]], dtype=np.uint16)
    Image.fromarray(a).save(tmp_path / "w.png")
    assert Image.open(tmp_path / "w.png").mode.startswith("I")
    got = decode_image(tmp_path / "w.png", None)
    assert got.shape == (1, 2, 3)
    assert got[0].tolist() == np.clip(np.round(a / 257), 0, 255).astype(np.uint8).tolist()
    assert decode_image(tmp_path / "w.png", 3).shape == (3, 2, 3)


def test_a_decompression_bomb_is_skipped_like_any_undecodable_image(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)          # 10,000 pixels: past twice the limit
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(5):
            Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(tmp_path / cls / f"{i}.png")
    Image.fromarray(np.zeros((100, 100), np.uint8)).save(tmp_path / "a" / "bomb.png")
    data = load_data(str(tmp_path))
    assert [Path(p).name for p, _ in data.skipped] == ["bomb.png"] and "too large" in data.skipped[0][1]
    with pytest.raises(DataError, match="bomb.png: cannot decode the image"):
        load_data(str(tmp_path), strict=True)
