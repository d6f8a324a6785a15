"""Scenes for segmentation: real item images pasted onto a canvas, with exact masks.

    from cnnlab.data.scenes import SceneConfig, make_scenes, write_scenes
    scenes = make_scenes(SceneConfig(source="fashion-mnist", count=3000))
    write_scenes(scenes, "data/scenes")     # images/, masks/, instances/, annotations.json per split

How a scene is made (one seeded NumPy generator per scene, so scene *i* is the
same whatever ``count`` is):

1. a black canvas of ``size`` (H, W);
2. ``objects`` MIN..MAX items drawn from the split's own item pool, each
   resized (bilinear) to a side of ``item_px`` MIN..MAX pixels (aspect kept),
   at a random position fully inside the canvas;
3. an item's **mask is its pixels whose grey level is at least**
   :data:`THRESHOLD` (of 255) after resizing — Fashion-MNIST and digits are
   bright items on a black background. Only those pixels are pasted: a later
   item covers an earlier one exactly where its mask is, so every pixel of
   class *k* in the mask shows a pixel of an item of class *k*;
4. an item is placed only where at least :data:`MIN_VISIBLE` of its own
   pixels stay visible and it hides at most that share of each earlier item's
   (up to :data:`TRIES` positions, else it is left out): occlusion, not burial.

Splits never share an item image: Fashion-MNIST's test scenes use its 10,000
test images; train and validation scenes use disjoint parts of its 60,000
training images (a seeded 10 % for validation). Sources without a test split
(digits, a folder) keep a seeded 20 % of their items for test scenes and 10 %
of the rest for validation scenes, as ``cnnlab train`` splits them. ``count``
scenes are divided 80/10/10 into train/val/test (at least one each). A
folder's items may differ in size: they are first resized to ``item_px`` MAX
square, then to each draw's size.

Class index 0 is the background; source class *k* is index *k* + 1. 255
(ignore) never occurs in generated masks: it is kept for users' own data.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from typing import TYPE_CHECKING

from cnnlab.errors import CnnlabError
from cnnlab.vocab import IGNORE_INDEX

if TYPE_CHECKING:          # the CLI reads SceneConfig's defaults without importing NumPy or torch
    import numpy as np
    import torch

THRESHOLD = 16          # grey level (of 255) from which an item pixel belongs to the object
MIN_VISIBLE = 0.5       # share of an item's pixels that must stay visible
TRIES = 20              # positions tried per item before it is left out
SPLITS = ("train", "val", "test")
SPLIT_SHARE = (0.8, 0.1, 0.1)


@dataclass(frozen=True)
class SceneConfig:
    """What ``cnnlab scenes make`` draws; the defaults are the documented scenes data set."""

    source: str = "fashion-mnist"            # fashion-mnist, digits or a folder <dir>/<class>/<image>
    count: int = 20000                       # scenes in all, 80/10/10 train/val/test
    size: tuple[int, int] = (64, 64)         # canvas (H, W)
    objects: tuple[int, int] = (1, 3)        # items per scene, MIN..MAX
    item_px: tuple[int, int] = (24, 36)      # longer side of a pasted item, MIN..MAX pixels
    seed: int = 0
    same_class: float = 0.0                  # chance that each item after the first repeats the first one's class
    data_dir: str | None = None              # where fashion-mnist's IDX files are

    def check(self) -> None:
        h, w = self.size
        problems = [
            (self.count < 3, f"--count must be at least 3 (one scene per split; got {self.count})"),
            (self.count > 1_000_000, f"--count must be at most 1,000,000 (got {self.count})"),
            (min(self.size) < 8 or max(self.size) > 4096, f"--size must be 8..4096 pixels a side (got {h},{w})"),
            (not 1 <= self.objects[0] <= self.objects[1] <= 50,
             f"--objects must be MIN..MAX with 1 ≤ MIN ≤ MAX ≤ 50 (got {self.objects[0]}..{self.objects[1]})"),
            (not 2 <= self.item_px[0] <= self.item_px[1],
             f"--item-px must be MIN..MAX with 2 ≤ MIN ≤ MAX (got {self.item_px[0]}..{self.item_px[1]})"),
            (self.item_px[1] > min(self.size),
             f"--item-px MAX {self.item_px[1]} is larger than the canvas {h}×{w}; use a smaller item or a "
             "larger --size"),
            (not 0 <= self.seed < 2**32, f"--seed must be between 0 and {2**32 - 1} (got {self.seed})"),
            (not 0 <= self.same_class <= 1, f"--same-class must be a chance from 0 to 1 (got {self.same_class})"),
        ]
        for bad, message in problems:
            if bad:
                raise CnnlabError(message)


@dataclass
class SceneSplit:
    """The scenes of one split: images (N, C, H, W) uint8, masks (N, H, W) uint8 class indices,
    instances (N, H, W) uint8 ids (0 = background, 1.. in paste order), and each scene's instance classes."""

    images: torch.Tensor
    masks: torch.Tensor
    instances: torch.Tensor
    instance_classes: list[list[int]] = field(default_factory=list)   # class index of instance id 1, 2, …

    def __len__(self) -> int:
        return int(self.images.shape[0])


@dataclass
class Scenes:
    """Scenes of three splits and the class names (index 0: background)."""

    config: SceneConfig
    classes: list[str]
    splits: dict[str, SceneSplit]


@dataclass
class _Pool:
    images: np.ndarray      # (n, h, w) or (n, h, w, 3) uint8 items
    labels: np.ndarray      # (n,) source class

    @functools.cached_property
    def by_class(self) -> dict[int, np.ndarray]:
        """Each source class's item indices."""
        import numpy as np

        return {int(c): np.flatnonzero(self.labels == c) for c in np.unique(self.labels)}


def _item_pools(cfg: SceneConfig) -> tuple[list[str], dict[str, _Pool]]:
    """The source's class names and its item images, split three ways (no image in two splits)."""
    import numpy as np

    from cnnlab.data import load_data

    key = cfg.source.lower().replace("_", "-")
    if key in ("fashion-mnist", "fashionmnist", "digits"):
        data = load_data(key, cfg.data_dir, val_fraction=0.1, seed=cfg.seed)
    else:
        root = Path(cfg.source)
        if not root.is_dir():
            raise CnnlabError(f"{cfg.source}: not a scene source; use fashion-mnist, digits or a folder of "
                              "single-object images laid out as <folder>/<class>/<image>")
        side = cfg.item_px[1]
        data = load_data(str(root), None, val_fraction=0.1, seed=cfg.seed, size=(side, side))
    pools = {}
    for name, split in (("train", data.train), ("val", data.val), ("test", data.test)):
        x = split.images.numpy()
        x = x[:, 0] if x.shape[1] == 1 else x.transpose(0, 2, 3, 1)
        pools[name] = _Pool(np.ascontiguousarray(x), split.labels.numpy())
    return list(data.classes), pools


def _resize(item: np.ndarray, longer: int) -> np.ndarray:
    import numpy as np
    from PIL import Image

    h, w = item.shape[:2]
    scale = longer / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(item).resize(size, Image.BILINEAR))


def _draw_item(cfg: SceneConfig, pool: _Pool, rng: np.random.Generator, classes: list[int]) -> int:
    """The index of the next item to paste: any item, or (with chance ``same_class``, once the scene has an item) an
    item of the first item's class. Scenes drawn with ``same_class`` 0 draw exactly what they always did."""
    if cfg.same_class > 0 and classes and rng.random() < cfg.same_class:
        same = pool.by_class[classes[0] - 1]
        return int(same[rng.integers(len(same))])
    return int(rng.integers(len(pool.labels)))


def _scene(cfg: SceneConfig, pool: _Pool, rng: np.random.Generator, channels: int
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    import numpy as np

    h, w = cfg.size
    canvas = np.zeros((h, w, channels), dtype=np.uint8)
    owner = np.zeros((h, w), dtype=np.uint8)            # instance id that shows at each pixel (≤ 50 objects)
    classes: list[int] = []
    sizes: list[int] = []                               # each instance's own pixel count
    for _ in range(int(rng.integers(cfg.objects[0], cfg.objects[1] + 1))):
        k = _draw_item(cfg, pool, rng, classes)
        item = _resize(pool.images[k], int(rng.integers(cfg.item_px[0], cfg.item_px[1] + 1)))
        grey = item if item.ndim == 2 else item.mean(axis=2)
        mask = grey >= THRESHOLD
        area = int(mask.sum())
        if area == 0:
            continue
        ih, iw = mask.shape
        visible = np.bincount(owner.ravel(), minlength=len(classes) + 1)[1:]
        for _try in range(TRIES):
            y, x = int(rng.integers(0, h - ih + 1)), int(rng.integers(0, w - iw + 1))
            under = owner[y:y + ih, x:x + iw][mask]
            hidden = np.bincount(under, minlength=len(classes) + 1)[1:]
            if all(visible[i] - hidden[i] >= MIN_VISIBLE * sizes[i] for i in range(len(classes))):
                break
        else:
            continue
        ident = len(classes) + 1
        owner[y:y + ih, x:x + iw][mask] = ident
        pixels = item[..., None] if item.ndim == 2 else item      # (ih, iw, channels)
        canvas[y:y + ih, x:x + iw][mask] = pixels[mask]
        classes.append(int(pool.labels[k]) + 1)
        sizes.append(area)
    lookup = np.array([0, *classes], dtype=np.uint8)
    return canvas, lookup[owner], owner, classes


def make_scenes(cfg: SceneConfig = SceneConfig(), progress: bool = False) -> Scenes:
    """Draw the scenes of ``cfg`` in memory (same config, same scenes)."""
    import numpy as np
    import torch

    cfg.check()
    names, pools = _item_pools(cfg)
    if len(names) + 1 >= IGNORE_INDEX:
        raise CnnlabError(f"{cfg.source}: {len(names)} classes do not fit 8-bit masks (at most 254)")
    channels = 1 if pools["train"].images.ndim == 3 else 3
    h, w = cfg.size
    from cnnlab.machine import require_ram

    # image, class mask and instance ids (uint8 each) per scene, drawn as lists, then stacked: twice
    require_ram(2 * cfg.count * h * w * (channels + 2), f"{cfg.count:,} scenes of {h}×{w}",
                "make fewer (--count) or smaller (--size) scenes")
    counts = [0, *(max(1, int(cfg.count * s)) for s in SPLIT_SHARE[1:])]   # val and test: at least one
    counts[0] = cfg.count - counts[1] - counts[2]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.count, unit="scene", desc="scenes", mininterval=0.5)
    splits = {}
    for s, (name, n) in enumerate(zip(SPLITS, counts)):
        if len(pools[name].labels) == 0:
            raise CnnlabError(f"{cfg.source}: no {name} items to draw scenes from; add images")
        images, masks, owners, inst = [], [], [], []
        for i in range(n):
            rng = np.random.default_rng([cfg.seed, s, i])
            img, mask, owner, classes = _scene(cfg, pools[name], rng, channels)
            images.append(img)
            masks.append(mask)
            owners.append(owner)
            inst.append(classes)
            if bar is not None:
                bar.update(1)
        splits[name] = SceneSplit(torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(),
                                  torch.from_numpy(np.stack(masks)), torch.from_numpy(np.stack(owners)), inst)
    if bar is not None:
        bar.close()
    return Scenes(cfg, ["background", *names], splits)


def coco_instances(split: SceneSplit, classes: list[str]) -> dict:
    """The split's instances in COCO's format: run-length-encoded masks, boxes, areas (pycocotools' RLE)."""
    import numpy as np
    from pycocotools import mask as mask_utils

    n, h, w = split.masks.shape
    doc: dict = {"info": {"description": "cnnlab scenes", "version": "1"},
                 "images": [], "annotations": [],
                 "categories": [{"id": i, "name": name, "supercategory": "object"}
                                for i, name in enumerate(classes) if i > 0]}
    ann_id = 1
    for i in range(n):
        doc["images"].append({"id": i + 1, "file_name": f"images/{i:05d}.png", "height": h, "width": w})
        owner = split.instances[i].numpy()
        for ident, category in enumerate(split.instance_classes[i], start=1):
            m = np.asfortranarray((owner == ident).astype(np.uint8))
            rle = mask_utils.encode(m)
            area = int(mask_utils.area(rle))
            if area == 0:
                continue
            bbox = [float(v) for v in mask_utils.toBbox(rle)]
            doc["annotations"].append({"id": ann_id, "image_id": i + 1, "category_id": category,
                                       "segmentation": {"size": [h, w], "counts": rle["counts"].decode("ascii")},
                                       "area": area, "bbox": bbox, "iscrowd": 0})
            ann_id += 1
    return doc


def write_scenes(scenes: Scenes, out: str | Path, progress: bool = False) -> Path:
    """Write ``scenes`` as ``out/{train,val,test}/{images,masks,instances}/NNNNN.png`` + ``annotations.json``,
    ``out/classes.txt`` and ``out/preview.png``. The folder appears whole or not at all: it is written
    beside ``out`` and renamed into place at the end."""
    import os
    import shutil
    import tempfile

    final = Path(out)
    check_out(final)
    # everything goes to a sibling folder first: an interrupted run leaves no half-written data set
    out = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(out, 0o777 & ~umask)        # mkdtemp's 0700 would hide the data set from other users
    try:
        _write(scenes, out, progress)
        if final.is_dir():
            final.rmdir()            # empty (checked above)
        os.replace(out, final)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    return final


def check_out(out: Path) -> None:
    """A clear error, before any work, when ``out`` cannot become the new data set's folder."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CnnlabError(f"{out}: exists and is not an empty folder; choose another --out")
    from cnnlab.files import temporary_name

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        probe = out.parent / temporary_name(out.name)     # a new file of cnnlab's own: no user file is touched
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
        probe.unlink()
    except OSError as err:
        raise CnnlabError(f"{out}: cannot write there ({err.strerror}); choose another --out") from None


def _write(scenes: Scenes, out: Path, progress: bool) -> None:
    import numpy as np
    from PIL import Image

    from cnnlab.files import atomic_write_text

    for name in scenes.splits:
        for sub in ("images", "masks", "instances"):
            (out / name / sub).mkdir(parents=True)

    def save(array: np.ndarray, path: Path) -> None:     # the folder is renamed into place whole at the end
        Image.fromarray(array).save(path, format="PNG")

    total = sum(len(s) for s in scenes.splits.values())
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="scene", desc="write", mininterval=0.5)
    for name, split in scenes.splits.items():
        for i in range(len(split)):
            img = split.images[i].permute(1, 2, 0).numpy()
            save(img[..., 0] if img.shape[2] == 1 else img, out / name / "images" / f"{i:05d}.png")
            save(split.masks[i].numpy(), out / name / "masks" / f"{i:05d}.png")
            save(split.instances[i].numpy().astype(np.uint16), out / name / "instances" / f"{i:05d}.png")
            if bar is not None:
                bar.update(1)
        atomic_write_text(out / name / "annotations.json", json.dumps(coco_instances(split, scenes.classes)))
    if bar is not None:
        bar.close()
    atomic_write_text(out / "classes.txt", "\n".join(scenes.classes) + "\n")
    from dataclasses import asdict

    atomic_write_text(out / "scenes.json", json.dumps({"config": asdict(scenes.config), "threshold": THRESHOLD,
                                                       "min_visible": MIN_VISIBLE,
                                                       "sizes": {k: len(v) for k, v in scenes.splits.items()}},
                                                      indent=2))
    from cnnlab.viz.segmentation import plot_scene_preview

    plot_scene_preview(scenes.splits["train"], scenes.classes, out / "preview.png")


def parse_scenes_source(data: str) -> str | None:
    """``scenes:SOURCE`` → ``SOURCE`` (scenes drawn in memory with the default config); else ``None``."""
    return data.split(":", 1)[1] if data.lower().startswith("scenes:") else None
