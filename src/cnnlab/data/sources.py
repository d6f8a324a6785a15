"""Image data held in memory: Fashion-MNIST (original IDX files), scikit-learn's digits, a folder of images.

Every source gives ``uint8`` images shaped ``(N, C, H, W)`` and ``int64``
labels, split into train / validation / test. Nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import struct
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab.errors import CnnlabError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte",
}
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot"]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class DataError(CnnlabError):
    """A data set is missing, empty or unreadable."""


@dataclass
class Split:
    """Images ``(N, C, H, W)`` uint8 and labels ``(N,)`` int64."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, idx: torch.Tensor) -> Split:
        return Split(self.images[idx], self.labels[idx])


@dataclass
class ImageData:
    """A data set in memory, split three ways."""

    name: str
    classes: list[str]
    train: Split
    val: Split
    test: Split
    flip_ok: bool = True                 # is a horizontal flip a valid augmentation?
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (path, reason) of undecodable images
    layout: str = ""                     # what was read, e.g. "image folders <class>/<image>"
    seen: str = ""                       # the sizes found in the files, e.g. "H 28–96 × W 28–120"
    note: str | None = None              # what was done about them, e.g. resized to the median size

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])  # type: ignore[return-value]


DECODE_RAM_FACTOR = 4             # bytes of RAM per decoded sample: decoded, converted, copied
DECODE_CHECK_BYTES = 64 << 20     # images that need less are decoded without asking for the RAM available

# ----------------------------------------------------------------------------- IDX (Fashion-MNIST)

MAX_IDX_BYTES = 1 << 30     # an IDX file's data once decompressed: Fashion-MNIST's training images are 47 MB


def read_idx(path: Path, ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (gzipped or not): the header (magic, ``ndim`` dimensions) is checked first, the data
    is read only up to the size it announces (a gzip bomb cannot inflate past it) and must be exactly that."""
    if path.exists() and not path.is_file():    # a FIFO would block forever
        raise DataError(f"{path}: not a regular file (a FIFO, device or folder); reinstall the data set")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[:3] != b"\x00\x00\x08":
                raise DataError(f"{path}: not an unsigned-byte IDX file")
            if ndim is not None and head[3] != ndim:
                raise DataError(f"{path}: {head[3]} dimensions where {ndim} are expected; reinstall the data set")
            raw_dims = f.read(4 * head[3])
            if len(raw_dims) != 4 * head[3]:
                raise DataError(f"{path}: its header is truncated; reinstall the data set")
            dims = struct.unpack(f">{head[3]}I", raw_dims)
            size = math.prod(dims)
            if size > MAX_IDX_BYTES:
                raise DataError(f"{path}: the header announces {size:,} bytes of data, over {MAX_IDX_BYTES:,}; "
                                "not a Fashion-MNIST file")
            body = f.read(size + 1)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: cannot read it ({err}); reinstall the data set") from None
    if len(body) != size:
        raise DataError(f"{path}: {len(body):,} bytes of data where the header says {size:,}; reinstall the data set")
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def _idx_file(folder: Path, stem: str) -> Path:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.exists():
            return candidate
    raise DataError(f"Fashion-MNIST not found in {folder} (missing {stem}.gz); install it with "
                    "'apt-get install dataset-fashion-mnist' or pass --data-dir with the four IDX files")


def load_fashion_mnist(folder: Path | None = None) -> tuple[Split, Split]:
    """The 60,000 training and 10,000 test images of Fashion-MNIST from the original IDX files."""
    folder = Path(folder or FASHION_MNIST_DIR)
    parts = {k: read_idx(_idx_file(folder, v), 3 if k.endswith("images") else 1)
             for k, v in FASHION_MNIST_FILES.items()}
    out = []
    for split in ("train", "test"):
        x, y = parts[f"{split}_images"], parts[f"{split}_labels"]
        if x.shape[0] != y.shape[0]:
            raise DataError(f"{folder}: {split} has {x.shape[0]} images but {y.shape[0]} labels")
        if x.shape[1:] != parts["train_images"].shape[1:] or min(x.shape[1:]) < 1:
            raise DataError(f"{folder}: the {split} images are {x.shape[1]}×{x.shape[2]}, the training images "
                            f"{parts['train_images'].shape[1]}×{parts['train_images'].shape[2]}; reinstall the data set")
        if y.size and int(y.max()) >= len(FASHION_MNIST_CLASSES):
            raise DataError(f"{folder}: a {split} label is {int(y.max())}; Fashion-MNIST's are 0 to "
                            f"{len(FASHION_MNIST_CLASSES) - 1}: reinstall the data set")
        out.append(Split(torch.from_numpy(x.copy()).unsqueeze(1), torch.from_numpy(y.astype(np.int64))))
    return out[0], out[1]


# ----------------------------------------------------------------------------- digits

def load_digits() -> Split:
    """scikit-learn's 1,797 8×8 handwritten digits (0–16 grey levels, scaled to 0–255)."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    images = torch.from_numpy(np.round(d.images * (255 / 16)).astype(np.uint8)).unsqueeze(1)
    return Split(images, torch.from_numpy(d.target.astype(np.int64)))


# ----------------------------------------------------------------------------- folders

WIDE_GREY = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")   # 16/32-bit grey: scaled, not saturated


def _wide_grey(im) -> np.ndarray:  # type: ignore[no-untyped-def]
    """A 16-bit (or 32-bit int / float) grey image as 8 bits: 0…65535 → 0…255 (÷ 257), clipped."""
    a = np.asarray(im, dtype=np.float64)
    return np.clip(np.round(a / 257.0), 0, 255).astype(np.uint8)


def require_regular_file(path: Path) -> None:
    """ValueError for a path that exists but is not a regular file: opening a FIFO waits for a writer forever."""
    if path.exists() and not path.is_file():
        raise ValueError("not a regular file (a directory, FIFO or device); give an image file")


@contextlib.contextmanager
def open_image(path: Path) -> Iterator[Any]:
    """``PIL.Image.open(path)``, loaded, for a regular file whose decoded pixels fit in the RAM available.

    Pillow warns (two raw lines on stderr) for images past half its decompression-bomb limit; cnnlab
    silences that warning and checks the decoded size against the RAM available instead (ValueError);
    past the limit itself Pillow refuses the file (ValueError too)."""
    from PIL import Image

    from cnnlab.machine import available_ram

    require_regular_file(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as im:
                need = im.width * im.height * max(len(im.getbands()), 1) * DECODE_RAM_FACTOR
                free = available_ram() if need > DECODE_CHECK_BYTES else None     # small images: no /proc read
                if free is not None and need > free:
                    raise ValueError(f"{im.width}×{im.height} pixels need about {need:,} B to decode but "
                                     f"{free:,} B of RAM is available")
                im.load()
                yield im
        except Image.DecompressionBombError as err:
            raise ValueError(f"too large to decode safely ({err})") from None


def decode_image(path: Path, channels: int | None) -> torch.Tensor:
    """An image file as uint8 (C, H, W): 1 channel (grey), 3 (RGB), or its own (None); ValueError if undecodable.

    16-bit grey PNGs are scaled to 8 bits (÷ 257) instead of Pillow's saturating
    conversion; images past Pillow's decompression-bomb limit (about 179 M
    pixels) are refused like undecodable ones.
    """
    from PIL import UnidentifiedImageError

    try:
        with open_image(path) as im:
            grey = im.mode in ("1", "L", *WIDE_GREY)
            mode = {1: "L", 3: "RGB"}.get(channels or 0) or ("L" if grey else "RGB")
            if im.mode in WIDE_GREY:
                arr = _wide_grey(im)
                if mode == "RGB":
                    arr = np.repeat(arr[..., None], 3, axis=2)
            else:
                arr = np.asarray(im.convert(mode), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise ValueError(str(err) or type(err).__name__) from None
    return torch.from_numpy(arr.copy()).unsqueeze(0) if arr.ndim == 2 else torch.from_numpy(arr.copy()).permute(2, 0, 1)


def read_mask(path: Path) -> np.ndarray:
    """A mask PNG as (H, W) uint8 class indices; palette PNGs give their indices. ValueError if unusable."""
    from PIL import UnidentifiedImageError

    try:
        with open_image(path) as im:
            if im.mode not in ("L", "P", "1"):
                raise ValueError(f"a mask must be an 8-bit index PNG (mode L or P), this one is mode {im.mode}; "
                                 "convert colour masks to class indices")
            return np.asarray(im, dtype=np.uint8).copy()    # mode 1 (bi-level): 0 and 1, not 0 and 255
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(str(err) or type(err).__name__) from None


MAX_CLASS_LIST_BYTES = 1 << 20    # a classes.txt of 255 names is a few KB


def read_lines(path: Path, what: str = "a class list holds one name per line",
               limit: int = MAX_CLASS_LIST_BYTES) -> list[str]:
    """The non-empty stripped lines of a small UTF-8 text file (BOM allowed), or a DataError naming the file and
    the fix; ``what`` says what the file holds."""
    if not path.is_file():
        raise DataError(f"{path}: not a regular file (a folder, FIFO or device); {what}")
    try:
        if path.stat().st_size > limit:
            raise DataError(f"{path}: over {limit:,} bytes; {what}")
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset {err.start}); "
                        "save it as UTF-8 (e.g. iconv -f latin1 -t utf-8)") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read it ({err.strerror})") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_class_names(path: Path) -> list[str]:
    """The non-empty lines of a ``classes.txt`` (UTF-8, BOM allowed), or a DataError naming the file and fix."""
    return read_lines(path)


def not_a_file(path: Path) -> str:
    """Why a name with an image suffix is no readable file: a link to nothing, a loop of links, a folder, a FIFO."""
    if path.is_symlink():
        try:
            path.resolve(strict=True)
        except RuntimeError:
            return "a loop of symbolic links"
        except OSError:
            return "a symbolic link to nothing (dangling)"
    return "not a regular file (a directory, FIFO or device)"


def image_files(folder: Path, bad: Callable[[Path, str], None]) -> dict[str, Path]:
    """``{stem: path}`` of the image files in ``folder`` (sorted); a name with an image suffix that is no
    readable file (dangling or looping link, folder, FIFO) is reported to ``bad(path, why)``, not dropped."""
    found = {}
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if not p.is_file():
            bad(p, not_a_file(p))
        elif p.stem in found:          # 0.png and 0.jpg: which one pairs with 0.png in masks/ is not ours to guess
            bad(p, f"has the same stem as {found[p.stem].name}; rename one of them")
        else:
            found[p.stem] = p
    return found


def read_images(names: list[str], channels: int | None) -> Iterator[tuple[str, torch.Tensor | str]]:
    """``(name, image)`` for each file in turn, or ``(name, reason)`` for one that cannot be read: predict
    commands name those and go on with the rest (one image in memory at a time)."""
    for name in names:
        try:
            yield name, decode_image(Path(name), channels)
        except FileNotFoundError:
            yield name, "no such file"
        except (ValueError, IsADirectoryError) as err:
            yield name, str(err) or "cannot open"


def _class_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _class_items(root: Path, classes: list[str], strict: bool, skipped: list[tuple[str, str]]
                 ) -> list[tuple[Path, int]]:
    """``(image file, class index)`` of ``root/<class>/…`` (sub-folders included), sorted per class."""
    items = []
    for label, name in enumerate(classes):
        folder = root / name
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() not in IMAGE_SUFFIXES or path.is_dir():
                continue
            if not path.is_file():          # a dangling or looping link: listed with the skipped images
                if strict:
                    raise DataError(f"{path}: {not_a_file(path)}; fix or remove it, or drop --strict to skip it")
                skipped.append((str(path), not_a_file(path)))
                continue
            items.append((path, label))
    return items


def median_size(images: list[torch.Tensor]) -> tuple[int, int]:
    """The median height and the median width of ``images`` (each the lower middle value: a size that occurs)."""
    import statistics

    return (statistics.median_low(int(i.shape[1]) for i in images),
            statistics.median_low(int(i.shape[2]) for i in images))


def read_items(root: Path, items: list[tuple[Path, int]], channels: int | None, size: tuple[int, int] | None,
               strict: bool, skipped: list[tuple[str, str]], seen: list[tuple[int, int]] | None = None
               ) -> tuple[Split, str | None]:
    """The images of ``items`` decoded and stacked, and what was done about their sizes (None: nothing); each
    file's own (H, W) is added to ``seen``.

    Images of different sizes without ``size`` are resized to their median size (said in the run's log);
    grey, RGB, RGBA and palette images become ``channels`` (default: RGB if any image has colour)."""
    from torchvision.transforms.v2 import functional as TF

    from cnnlab.machine import available_ram

    images, labels = [], []
    free, held = available_ram(), 0
    for path, label in items:
        try:
            img = decode_image(path, channels)
        except ValueError as err:
            if strict:
                raise DataError(f"{path}: cannot decode the image ({err}); fix or remove it, "
                                "or drop --strict to skip it") from None
            skipped.append((str(path), str(err)))
            continue
        if seen is not None:
            seen.append((int(img.shape[1]), int(img.shape[2])))
        if size is not None and tuple(img.shape[1:]) != tuple(size):   # one image at a time, not all at full size
            img = TF.resize(img, list(size), antialias=True)
        held += img.numel()
        if free is not None and 2 * held > free:       # the images, and their stacked copy
            raise DataError(f"{root}: its images{'' if size else ' at full size'} need more than "
                            f"{2 * held:,} B of RAM with the copy that stacks them, and {free:,} B are "
                            f"available; {'give a smaller --size' if size else 'give --size H,W to resize them as they are read'}")
        images.append(img)
        labels.append(label)
    if not images:
        return Split(torch.zeros((0, channels or 3, *(size or (1, 1))), dtype=torch.uint8),
                     torch.zeros(0, dtype=torch.int64)), None
    if channels is None:
        channels = max(i.shape[0] for i in images)
    note = None
    if size is None:
        shapes = {tuple(i.shape[1:]) for i in images}
        size = median_size(images) if len(shapes) > 1 else next(iter(shapes))  # type: ignore[assignment]
        if len(shapes) > 1:
            note = (f"{len(shapes)} sizes: resized to {size[0]}×{size[1]}, their median height × median width "
                    "(choose with --size H,W)")
    out = []
    for img in images:
        if img.shape[0] != channels:
            img = img.expand(3, -1, -1) if channels == 3 else img.float().mean(0, keepdim=True).round().to(torch.uint8)
        if tuple(img.shape[1:]) != tuple(size):  # type: ignore[arg-type]
            img = TF.resize(img, list(size), antialias=True)  # type: ignore[arg-type]
        out.append(img)
    return Split(torch.stack(out), torch.tensor(labels, dtype=torch.int64)), note


def size_range(sizes: list[tuple[int, int]]) -> str:
    """``'H 28–96 × W 28–120'`` (or the one size ``'28×28'``) of (H, W) sizes."""
    if not sizes:
        return "none readable"
    hs, ws = [h for h, _ in sizes], [w for _, w in sizes]
    if len(set(sizes)) == 1:
        return f"{hs[0]}×{ws[0]}"
    return f"H {min(hs)}–{max(hs)} × W {min(ws)}–{max(ws)}"


@dataclass(frozen=True)
class FolderLayout:
    """What was read: the layout's name, the sizes seen in the files, and what was done about them."""

    name: str
    seen: str = ""
    note: str | None = None


def load_folder(root: Path, channels: int | None, size: tuple[int, int] | None, strict: bool
                ) -> tuple[list[str], dict[str, Split], list[tuple[str, str]], FolderLayout]:
    """``root/<class>/<image>`` or ``root/{train,val,test}/<class>/<image>``; undecodable images skipped."""
    if not root.is_dir():
        raise DataError(f"{root}: no such folder; give a data set name (digits, fashion-mnist) or a folder "
                        "of images laid out as <folder>/<class>/<image>")
    subsets = {s: root / s for s in ("train", "val", "test") if (root / s).is_dir()}
    if "train" in subsets:
        class_root = subsets["train"]
    else:
        subsets, class_root = {"all": root}, root
    classes = [p.name for p in _class_dirs(class_root)]
    if {"images", "masks"} <= set(classes):
        raise DataError(f"{class_root}: holds images/ and masks/, a segmentation data set; train on it with "
                        f"'cnnlab segment train --data {root}'")
    if len(classes) < 2:
        raise DataError(f"{class_root}: found {len(classes)} class folder(s); a classifier needs at least two "
                        "(<folder>/<class>/<image>)")
    for name, path in subsets.items():
        extra = sorted({p.name for p in _class_dirs(path)} - set(classes))
        if extra:   # a class the network never trains on cannot be predicted: its images would vanish
            raise DataError(f"{path}: class folder(s) {', '.join(extra[:5])} not in {class_root}; add training "
                            "images for them or remove them")
    skipped: list[tuple[str, str]] = []
    items = {name: _class_items(path, classes, strict, skipped) for name, path in subsets.items()}
    first_name = "train" if "train" in items else "all"
    splits: dict[str, Split] = {}
    sizes: list[tuple[int, int]] = []
    first, note = read_items(subsets[first_name], items[first_name], channels, size, strict, skipped, sizes)
    if len(first) == 0:
        raise DataError(f"{class_root}: no readable images (looked for {', '.join(IMAGE_SUFFIXES)})")
    c, h, w = first.images.shape[1:]
    for name in items:        # every split at the training images' channels and size
        splits[name] = first if name == first_name else \
            read_items(subsets[name], items[name], c, (h, w), strict, skipped, sizes)[0]
    seen = size_range(sizes)
    layout = FolderLayout(f"image folders <class>/<image>{' in ' + '/, '.join(subsets) + '/' if first_name == 'train' else ''}",
                          seen, note)
    return classes, splits, skipped, layout
