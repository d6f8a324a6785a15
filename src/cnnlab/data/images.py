"""Classification data: named sets and image folders, in memory, split train / val / test.

    from cnnlab.data import load_data
    data = load_data("digits", val_fraction=0.1, seed=0)
    data.train.images.shape     # (N, 1, 8, 8) uint8
"""

from __future__ import annotations

from pathlib import Path

import torch

from cnnlab.data.sources import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_DIR,
    DataError,
    ImageData,
    Split,
    load_digits,
    load_fashion_mnist,
    load_folder,
)
from cnnlab.data.splits import TEST_FRACTION, random_split, three_way
from cnnlab.machine import require_ram

NAMED = ("digits", "fashion-mnist")


def _folder_splits(root: Path, splits: dict[str, Split], val_fraction: float,
                   seed: int) -> tuple[Split, Split, Split]:
    """(train, val, test) of a folder: its own sub-folders where it has them, seeded disjoint draws otherwise.

    A split folder that is there but yields no image is an error: treating it as
    absent would silently move images between splits.
    """
    for name, part in splits.items():
        if len(part) == 0:
            where = root if name == "all" else root / name
            raise DataError(f"{where}: no readable images; add images or remove the folder")
    return three_way(splits, val_fraction, seed)


def _convert(s: Split, channels: int | None, size: tuple[int, int] | None) -> Split:
    from torchvision.transforms.v2 import functional as TF

    x = s.images
    if channels is not None and x.shape[1] != channels:
        if channels == 3 and x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1).contiguous()
        elif channels == 1:
            x = x.float().mean(1, keepdim=True).round().to(torch.uint8)
        else:
            raise DataError(f"cannot convert {x.shape[1]}-channel images to {channels} channels (use 1 or 3)")
    if size is not None and tuple(x.shape[-2:]) != tuple(size):
        # the resized uint8 stack, and the float copies the antialiased resize makes of input and output
        n, c, h, w = x.shape
        require_ram(n * c * (5 * size[0] * size[1] + 4 * h * w), f"resizing {n:,} images to "
                    f"{size[0]}×{size[1]}", "choose a smaller --size")
        x = TF.resize(x, list(size), antialias=True)
    return Split(x, s.labels)


def load_data(source: str, data_dir: str | Path | None = None, val_fraction: float = 0.1, seed: int = 0,
              channels: int | None = None, size: tuple[int, int] | None = None, strict: bool = False,
              images: str | None = None) -> ImageData:
    """Load ``digits``, ``fashion-mnist`` (from ``data_dir``, default Debian's location), a folder
    (``<class>/<image>``) or a labels CSV (``file,label``; its images in ``images`` or found beside it).

    Sets without a validation split lose a seeded ``val_fraction`` of their
    training images to one; sets without a test split (digits, a flat folder)
    keep a seeded 20 % for testing. ``channels``/``size`` convert and resize.
    """
    if not 0 < val_fraction < 1:
        raise DataError(f"--val-fraction must be between 0 and 1 (got {val_fraction})")
    key = source.lower().replace("_", "-")
    if images and key in ("digits", "fashion-mnist", "fashionmnist"):
        raise DataError(f"--images {images}: names the image folder of a labels CSV; {source} brings its own images")
    skipped: list[tuple[str, str]] = []
    if key == "digits":
        rest, test = random_split(load_digits(), TEST_FRACTION, seed)
        train, val = random_split(rest, val_fraction, seed + 1)
        data = ImageData("digits", [str(i) for i in range(10)], train, val, test, flip_ok=False,
                         layout="scikit-learn's digits", seen="8×8")
    elif key in ("fashion-mnist", "fashionmnist"):
        train_all, test = load_fashion_mnist(Path(data_dir) if data_dir else FASHION_MNIST_DIR)
        train, val = random_split(train_all, val_fraction, seed + 1)
        data = ImageData("fashion-mnist", list(FASHION_MNIST_CLASSES), train, val, test, flip_ok=True,
                         layout="Fashion-MNIST IDX files", seen="28×28")
    else:
        root = Path(source)
        if not root.exists() and "/" not in source and not source.startswith("."):
            raise DataError(f"unknown data set '{source}'; use {', '.join(NAMED)} or a folder of images "
                            "(<folder>/<class>/<image>)")
        if root.is_file() and root.suffix.lower() == ".csv":
            from cnnlab.data.tables import load_csv

            classes, splits, skipped, layout = load_csv(root, Path(images) if images else None, channels, size,
                                                        strict)
        elif images:
            raise DataError(f"--images {images}: names the image folder of a labels CSV (--data labels.csv); "
                            f"{source} is no CSV file")
        else:
            classes, splits, skipped, layout = load_folder(root, channels, size, strict)
        train, val, test = _folder_splits(root, splits, val_fraction, seed)
        data = ImageData(root.stem if root.is_file() else root.name or str(root), classes, train, val, test,
                         flip_ok=True, skipped=skipped, layout=layout.name, seen=layout.seen, note=layout.note)
    if len(data.train) == 0 or len(data.val) == 0:
        raise DataError(f"{source}: too few images to split into training and validation sets "
                        f"({len(data.train)} / {len(data.val)})")
    if channels is not None or size is not None:
        data.train, data.val, data.test = (_convert(s, channels, size) for s in (data.train, data.val, data.test))
    return data


