"""Semantic segmentation: a class per pixel, per-pixel cross-entropy, IoU from a confusion matrix.

Metrics (all from one pixel confusion matrix, rows = true class, columns =
predicted, ignored pixels (255) left out — the way the FCN paper and
torchmetrics' ``MulticlassJaccardIndex`` count):

- pixel accuracy = Σ diagonal / Σ all;
- IoU of class *c* = TP / (TP + FP + FN); **mIoU** = mean over the classes that
  occur in the truth or the prediction, **background included** (a class absent
  from both has no IoU and is left out of the mean);
- **boundary mIoU**: the same, counted only on pixels within :data:`BAND` pixels of
  a class boundary of the truth (the "trimap" band of Kohli et al. 2009 that
  DeepLab, Chen et al. 2017, uses to show how well a net keeps object edges).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.data.augment import make_augment
from cnnlab.data.canvas import by_size, extent, pad_with_mean, size_order
from cnnlab.data.segmentation import IGNORE, SegData, SegSplit, load_segmentation
from cnnlab.errors import CnnlabError
from cnnlab.files import atomic_write_text
from cnnlab.losses import segmentation_loss
from cnnlab.train.tasks.base import Task
from cnnlab.data.normalise import normalise, standardiser
from cnnlab.train.tasks.classification import best_epoch

BAND = 2                # pixels either side of a truth boundary for the boundary mIoU


def pixel_confusion(truth: torch.Tensor, pred: torch.Tensor, classes: int,
                    where: torch.Tensor | None = None) -> torch.Tensor:
    """(classes, classes) int64 pixel counts, rows = true class, columns = predicted; 255 left out."""
    keep = truth != IGNORE
    if where is not None:
        keep &= where
    t, p = truth[keep].long(), pred[keep].long()
    return torch.bincount(t * classes + p, minlength=classes * classes).reshape(classes, classes)


def iou_per_class(cm: torch.Tensor) -> list[float | None]:
    """IoU = TP / (TP + FP + FN) per class; ``None`` for a class in neither truth nor prediction."""
    cm = cm.double()
    tp = cm.diag()
    union = cm.sum(0) + cm.sum(1) - tp
    return [float(t / u) if u > 0 else None for t, u in zip(tp, union)]


def scores(cm: torch.Tensor) -> dict[str, Any]:
    """Pixel accuracy, per-class IoU and mIoU (background included) of a confusion matrix."""
    iou = iou_per_class(cm)
    present = [v for v in iou if v is not None]
    total = float(cm.sum())
    return {"pixel_accuracy": float(cm.diag().sum()) / total if total else 0.0, "iou": iou,
            "miou": sum(present) / len(present) if present else 0.0}


def boundary_band(masks: torch.Tensor, width: int = BAND) -> torch.Tensor:
    """(N, H, W) bool: pixels within ``width`` pixels (chessboard distance) of a class change in ``masks``."""
    m = masks.long().unsqueeze(1).float()
    k = 2 * width + 1
    hi = F.max_pool2d(m, k, stride=1, padding=width)
    lo = -F.max_pool2d(-m, k, stride=1, padding=width)
    return (hi != lo).squeeze(1)


@torch.no_grad()
def predict_masks(model: nn.Module, images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, device: str,
                  batch: int = 64, channels_last: bool = False, masks: torch.Tensor | None = None,
                  sizes: torch.Tensor | None = None) -> tuple[torch.Tensor, float]:
    """(predicted masks (N, H, W) uint8, mean per-pixel cross-entropy against ``masks`` or NaN).

    Images of different sizes (``sizes``, :mod:`cnnlab.data.canvas`) are predicted size by size at their own
    size, as each would be alone; their padding is predicted 0 and never scored (its masks hold 255)."""
    was = model.training
    model.eval()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    preds = torch.zeros((images.shape[0], *images.shape[2:]), dtype=torch.uint8)
    loss_sum, counted = 0.0, 0
    for group in by_size(sizes, images.shape[0]):
        h, w = extent(images, sizes, group[:1])
        for chunk in group.split(batch):
            x = normalise(images[chunk, :, :h, :w], mean, std).to(device, memory_format=fmt)
            out = model(x).float()
            if masks is not None:
                y = masks[chunk, :h, :w].long().to(device)
                loss_sum += float(F.cross_entropy(out, y, ignore_index=IGNORE, reduction="sum"))
                counted += int((y != IGNORE).sum())
            preds[chunk, :h, :w] = out.argmax(1).to(torch.uint8).cpu()
    model.train(was)
    return preds, loss_sum / counted if counted else math.nan


def evaluate(model: nn.Module, split: SegSplit, classes: int, mean: torch.Tensor, std: torch.Tensor,
             device: str, channels_last: bool = False) -> dict[str, Any]:
    """Loss, confusion matrices (all pixels, boundary band), scores and predictions on ``split``; images of
    different sizes are scored on their own pixels only."""
    preds, loss = predict_masks(model, split.images, mean, std, device, channels_last=channels_last,
                                masks=split.masks, sizes=split.sizes)
    cm = pixel_confusion(split.masks, preds, classes)
    band = pixel_confusion(split.masks, preds, classes, split_band(split))
    return {"loss": loss, "confusion": cm, "band_confusion": band, "preds": preds, **scores(cm),
            "boundary_miou": scores(band)["miou"]}


def split_band(split: SegSplit) -> torch.Tensor:
    """:func:`boundary_band` of each mask at its own size (a canvas's padding edge is no class boundary)."""
    if split.sizes is None:
        return boundary_band(split.masks)
    band = torch.zeros(split.masks.shape, dtype=torch.bool)
    for group in by_size(split.sizes, len(split)):
        h, w = extent(split.images, split.sizes, group[:1])
        band[group, :h, :w] = boundary_band(split.masks[group][..., :h, :w])
    return band


class Semantic(Task):
    """A class for every pixel."""

    name = "semantic"
    metric = "miou"
    monitor = "val_miou"
    any_size = True

    def load_data(self) -> SegData:
        c = self.cfg
        if c.images:
            raise CnnlabError(f"--images {c.images}: names the image folder of a COCO file (--task instance) or of a "
                              "labels CSV (cnnlab train); a semantic-segmentation folder holds images/ and masks/ "
                              "(or is the VOC devkit): drop --images")
        data = load_segmentation(c.data, c.data_dir, c.val_fraction, c.seed, c.channels, c.size, c.skip_bad)
        for name in ("train", "val", "test"):
            if not bool((getattr(data, name).masks != IGNORE).any()):
                raise CnnlabError(f"{c.data}: every mask pixel of the {name} split is {IGNORE} (ignore): there is no "
                                  "labelled pixel to learn from or score; label the masks (0 = background, 1… the "
                                  f"classes, {IGNORE} only where a pixel is not to be scored)")
        self.mean, self.std = standardiser(data.train)  # type: ignore[arg-type]
        pad_with_mean(data, self.mean)
        self.classes = len(data.classes)
        self.augment = make_augment(c.augment, data.shape[1:], data.flip_ok)
        return data

    def describe_data(self, data: SegData) -> dict[str, Any]:
        return {"name": data.name, "classes": data.classes, "shape": list(data.shape),
                "sizes": {"train": len(data.train), "val": len(data.val), "test": len(data.test)},
                "mean": self.mean.flatten().tolist(), "std": self.std.flatten().tolist(),
                "skipped_images": len(data.skipped), "ignore_index": IGNORE}

    def build_model(self, data: SegData, saved: dict[str, Any] | None = None) -> tuple[nn.Module, dict[str, Any]]:
        options = dict(saved.get("options", {})) if saved else dict(self.cfg.model_args)
        return build_semantic_model(saved["name"] if saved else self.cfg.model, data.shape, len(data.classes),
                                    options)

    def batch(self, split: SegSplit, indices: torch.Tensor, rows: slice,
              generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        idx = indices[rows]
        h, w = extent(split.images, split.sizes, idx)            # the batch's largest image
        images, masks = split.images[idx, :, :h, :w], split.masks[idx, :h, :w]
        if self.augment is not None:
            images, masks = self.augment.warp(images, masks, generator, first=rows.start or 0, total=len(indices))
        return normalise(images, self.mean, self.std), masks.long()

    def size_line(self, data: SegData, model: nn.Module) -> str:
        return segmentation_sizes(data, model, "padding is never scored")

    def order(self, split: SegSplit, order: torch.Tensor, batch: int) -> torch.Tensor:
        return size_order(order, split.sizes, batch)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return segmentation_loss(outputs, targets)

    def step_stats(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        cm = pixel_confusion(targets.cpu(), outputs.detach().argmax(1).cpu(), self.classes)
        k = self.classes      # every entry, zeros too: torchrun processes reduce the same keys
        return {f"cm{i // k}_{i % k}": float(v) for i, v in enumerate(cm.flatten().tolist())}

    def _cm(self, sums: dict[str, float]) -> torch.Tensor:
        cm = torch.zeros(self.classes, self.classes, dtype=torch.float64)
        for key, v in sums.items():
            if key.startswith("cm"):
                i, j = key[2:].split("_")
                cm[int(i), int(j)] = v
        return cm

    def train_metrics(self, sums: dict[str, float], seen: float) -> dict[str, float]:
        s = scores(self._cm(sums))
        return {"train_miou": s["miou"], "train_pixel_acc": s["pixel_accuracy"]}

    def validate(self, model: nn.Module, split: SegSplit, device: str) -> dict[str, float]:
        r = evaluate(model, split, self.classes, self.mean, self.std, device, self.cfg.channels_last)
        return {"val_loss": r["loss"], "val_miou": r["miou"], "val_pixel_acc": r["pixel_accuracy"]}

    def test_report(self, folder: Path, model: nn.Module, data: SegData, device: str,
                    history: list[dict[str, float]]) -> dict[str, Any]:
        from cnnlab.viz.segmentation import plot_iou_bars, plot_overlays
        from cnnlab.viz.train import plot_curves

        r = evaluate(model, data.test, self.classes, self.mean, self.std, device, self.cfg.channels_last)
        report = report_of(r, data.classes, len(data.test))
        report["best_epoch"] = best_epoch(history, self.monitor)
        atomic_write_text(folder / "test.json", json.dumps(report, indent=2))
        plot_curves(history, folder / "curves.png", metric="miou", label="mIoU")
        plot_iou_bars(report["iou"], data.classes, folder / "iou.png",
                      f"per-class IoU on the test split (mIoU {report['miou']:.3f}, background included)")
        n = min(6, len(data.test))
        h, w = extent(data.test.images, data.test.sizes, torch.arange(n))
        plot_overlays(data.test.images[:n, :, :h, :w], data.test.masks[:n, :h, :w], [r["preds"][:n, :h, :w]],
                      ["prediction"], data.classes,
                      folder / "overlays.png", f"{self.cfg.model}: test images")
        return report

    def rebuild_model(self, doc: dict[str, Any]) -> nn.Module:
        m = doc["model"]
        return build_semantic_model(m["name"], tuple(doc["data"]["shape"]), len(doc["data"]["classes"]),
                                    m.get("options", {}))[0]

    def summary(self, report: dict[str, Any]) -> str:
        return (f"test mIoU {report['miou']:.4f} (background included), pixel accuracy "
                f"{report['pixel_accuracy']:.4f}, boundary mIoU {report['boundary_miou']:.4f} "
                f"(best epoch {report['best_epoch']})")


def report_of(r: dict[str, Any], classes: list[str], images: int) -> dict[str, Any]:
    """The JSON report of an :func:`evaluate` result."""
    return {"images": images, "classes": classes, "loss": r["loss"], "pixel_accuracy": r["pixel_accuracy"],
            "miou": r["miou"], "iou": r["iou"], "boundary_miou": r["boundary_miou"], "boundary_band_px": BAND,
            "confusion": r["confusion"].tolist(), "ignore_index": IGNORE}


def build_semantic_model(name: str, shape: tuple[int, int, int], classes: int, options: dict[str, Any]
                         ) -> tuple[nn.Module, dict[str, Any]]:
    """A zoo segmentation network for images of ``shape`` and ``classes`` classes, and how to rebuild it."""
    from cnnlab.models import ZOO, create_model, get_entry

    entry = get_entry(name)
    if entry.task != "semantic":
        seg = ", ".join(n for n, e in ZOO.items() if e.task == "semantic")
        raise CnnlabError(f"--model {entry.name} is a classifier, not a segmentation network; use one of {seg}")
    if entry.family == "FCN" and options.get("backbone", "vgg") == "vgg" and "fc_kernel" not in options:
        # fc6 no larger than pool5's map (+ "same" padding): a 7×7 kernel on a 2×2 map trains only its 3×3 centre
        side = min(shape[1], shape[2]) // 32
        options = {**options, "fc_kernel": max(1, min(7, side + 1 - side % 2))}
    from cnnlab.train.model import require_weights_fit

    require_weights_fit(lambda: create_model(entry.name, num_classes=classes, in_channels=shape[0], **options),
                        entry.name)
    model = create_model(entry.name, num_classes=classes, in_channels=shape[0], **options)
    return model, {"kind": "zoo", "name": entry.name, "options": options}


def segmentation_sizes(data: Any, model: nn.Module, why: str) -> str:
    """The sizes of a segmentation data set's images and what is done about them (the start-of-run line)."""
    splits = (data.train, data.val, data.test)
    hw = [tuple(s.sizes[i].tolist()) if s.sizes is not None else tuple(s.images.shape[-2:])
          for s in splits for i in range(len(s))]
    hs, ws = [h for h, _ in hw], [w for _, w in hw]
    seen = f"{hs[0]}×{ws[0]}" if len(set(hw)) == 1 else \
        f"H {min(hs)}–{max(hs)} × W {min(ws)}–{max(ws)} ({len(set(hw))} sizes)"
    if data.resized is not None:
        return f"sizes {seen}, resized to {data.resized[0]}×{data.resized[1]} (--size; masks nearest-neighbour)"
    m = getattr(model, "size_multiple", 1)
    padded = any(h % m or w % m for h, w in set(hw))
    inside = (f", padded to a multiple of {m} inside {type(model).__name__} and cropped back ({why})" if padded
              else "")
    mixed = ", batched by size" if len(set(hw)) > 1 else ""
    return f"sizes {seen}: each image at its own size{inside}{mixed}"
