"""Figures of segmentation: the VOC colour map, mask overlays, scene previews, per-class IoU bars."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab.viz.common import plt, save_figure


def voc_palette(n: int = 256) -> np.ndarray:
    """(n, 3) uint8: PASCAL VOC's colour map (class *i*'s colour from the bits of *i*), as VOC's palette PNGs use.

    Index 0 is black (background), 255 (ignore) is cream (224, 224, 192) as in VOC.
    """
    pal = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[i] = (r, g, b)
    return pal


PALETTE = voc_palette()


def colour_mask(mask: np.ndarray) -> np.ndarray:
    """(H, W) class indices → (H, W, 3) uint8 colours."""
    return PALETTE[mask.astype(np.int64)]


def as_rgb(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """(C, H, W) uint8 tensor → (H, W, 3) uint8 array."""
    a = image.numpy() if isinstance(image, torch.Tensor) else image
    a = a.transpose(1, 2, 0)
    return np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a


def overlay(image: torch.Tensor | np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The image with the mask's colours blended in where the mask is not background (0)."""
    rgb = as_rgb(image).astype(np.float32)
    col = colour_mask(mask).astype(np.float32)
    fg = (mask != 0)[..., None]
    return np.where(fg, (1 - alpha) * rgb + alpha * col, rgb).round().astype(np.uint8)


def _legend(ax: Any, classes: list[str], present: set[int]) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(color=PALETTE[i] / 255, label=f"{i} {classes[i]}") for i in sorted(present) if i < len(classes)]
    if handles:
        ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, frameon=False)


def plot_scene_preview(split: Any, classes: list[str], path: Path, count: int = 8) -> Path:
    """Scenes (top row) and their masks overlaid (bottom row), with a class legend."""
    n = min(count, len(split))
    fig, axes = plt.subplots(2, max(n, 1), figsize=(1.6 * max(n, 1) + 1.6, 3.6), squeeze=False)
    present: set[int] = set()
    for i in range(n):
        mask = split.masks[i].numpy()
        present |= set(np.unique(mask).tolist()) - {0, 255}
        axes[0, i].imshow(as_rgb(split.images[i]), interpolation="nearest")
        axes[1, i].imshow(overlay(split.images[i], mask), interpolation="nearest")
    for ax in axes.ravel():
        ax.axis("off")
    axes[0, 0].set_title("scene", fontsize=8, loc="left")
    axes[1, 0].set_title("mask overlaid", fontsize=8, loc="left")
    _legend(axes[1, -1], classes, present)
    return save_figure(fig, path)


def plot_overlays(images: torch.Tensor, truth: torch.Tensor, preds: list[torch.Tensor], names: list[str],
                  classes: list[str], path: Path, title: str = "") -> Path:
    """One row per image: image | truth | each prediction (columns named by ``names``)."""
    n = images.shape[0]
    cols = 2 + len(preds)
    fig, axes = plt.subplots(n, cols, figsize=(1.8 * cols + 1.6, 1.8 * n + 0.4), squeeze=False)
    present: set[int] = set()
    for i in range(n):
        t = truth[i].numpy()
        present |= set(np.unique(t).tolist())
        axes[i, 0].imshow(as_rgb(images[i]), interpolation="nearest")
        axes[i, 1].imshow(colour_mask(t), interpolation="nearest")
        for j, p in enumerate(preds):
            axes[i, 2 + j].imshow(colour_mask(p[i].numpy()), interpolation="nearest")
            present |= set(np.unique(p[i].numpy()).tolist())
    for j, name in enumerate(["image", "truth", *names]):
        axes[0, j].set_title(name, fontsize=9)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    _legend(axes[n // 2, -1], classes, present - {255})
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def plot_iou_bars(iou: list[float | None], classes: list[str], path: Path, title: str = "") -> Path:
    """Per-class IoU as horizontal bars (classes absent from truth and prediction are left out)."""
    rows = [(f"{i} {c}", v, i) for i, (c, v) in enumerate(zip(classes, iou)) if v is not None]
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(rows) + 1.0))
    ax.barh(range(len(rows)), [v for _, v, _ in rows], color=[PALETTE[i] / 255 for _, _, i in rows],
            edgecolor="black", linewidth=0.5)
    ax.set_yticks(range(len(rows)), [c for c, _, _ in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set(xlim=(0, 1), xlabel="IoU", title=title or "per-class IoU (test)")
    for i, (_, v, k) in enumerate(rows):
        inside = v > 0.88                     # no room to the right: write it on the bar, in a colour it shows in
        light = PALETTE[k].astype(float) @ [0.299, 0.587, 0.114] > 128
        ax.text(v - 0.01 if inside else v + 0.01, i, f"{v:.3f}", va="center", ha="right" if inside else "left",
                fontsize=7, color=("black" if light else "white") if inside else "black")
    ax.grid(axis="x", alpha=0.3)
    return save_figure(fig, path)


def instance_colours(n: int) -> np.ndarray:
    """(n, 3) uint8: well-separated colours for instances (matplotlib's tab10 then tab20, cycled)."""
    import matplotlib

    cols = [*matplotlib.colormaps["tab10"].colors, *matplotlib.colormaps["tab20"].colors]
    return (np.array([cols[i % len(cols)] for i in range(n)]) * 255).round().astype(np.uint8)


def overlay_instances(image: torch.Tensor | np.ndarray, masks: torch.Tensor | np.ndarray,
                      alpha: float = 0.55) -> np.ndarray:
    """The image with each instance mask (K, H, W) blended in its own colour (later instances on top)."""
    rgb = as_rgb(image).astype(np.float32)
    m = masks.numpy() if isinstance(masks, torch.Tensor) else masks
    for k, col in enumerate(instance_colours(m.shape[0])):
        sel = m[k].astype(bool)[..., None]
        rgb = np.where(sel, (1 - alpha) * rgb + alpha * col.astype(np.float32), rgb)
    return rgb.round().astype(np.uint8)


def draw_instances(ax: Any, image: torch.Tensor | np.ndarray, det: dict[str, torch.Tensor], classes: list[str],
                   threshold: float | None = None) -> int:
    """Instances of ``det`` (boxes, labels, masks, optional scores ≥ ``threshold``) on ``ax``; returns how many."""
    from matplotlib.patches import Rectangle

    keep = torch.ones(len(det["labels"]), dtype=torch.bool)
    if "scores" in det and threshold is not None:
        keep = det["scores"] >= threshold
    masks, boxes, labels = det["masks"][keep], det["boxes"][keep], det["labels"][keep]
    ax.imshow(overlay_instances(image, masks.bool()), interpolation="nearest")
    cols = instance_colours(len(labels))
    scores = det["scores"][keep].tolist() if "scores" in det else [None] * len(labels)
    for (x1, y1, x2, y2), label, score, col in zip(boxes.tolist(), labels.tolist(), scores, cols):
        ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor=col / 255, linewidth=1))
        text = classes[label] if label < len(classes) else str(label)
        ax.text(x1 - 0.5, y1 - 1, text if score is None else f"{text} {score:.2f}", fontsize=5, color="white",
                va="bottom", bbox={"facecolor": col / 255, "pad": 0.5, "linewidth": 0})
    return int(keep.sum())


def plot_instances(images: torch.Tensor | list[torch.Tensor], truth: list[dict[str, torch.Tensor]],
                   preds: list[dict[str, torch.Tensor]], classes: list[str], path: Path, title: str = "",
                   threshold: float = 0.5) -> Path:
    """One row per image (a batch, or a list of images of their own sizes): image | true instances | predicted
    instances (scores ≥ ``threshold``)."""
    n = len(images)
    fig, axes = plt.subplots(n, 3, figsize=(7.2, 2.3 * n + 0.4), squeeze=False)
    for i in range(n):
        axes[i, 0].imshow(as_rgb(images[i]), interpolation="nearest")
        found = draw_instances(axes[i, 1], images[i], truth[i], classes)
        shown = draw_instances(axes[i, 2], images[i], preds[i], classes, threshold)
        axes[i, 1].set_xlabel(f"{found} instances", fontsize=7)
        axes[i, 2].set_xlabel(f"{shown} detections", fontsize=7)
    for j, name in enumerate(("image", "truth", "Mask R-CNN")):
        axes[0, j].set_title(name, fontsize=9)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)
