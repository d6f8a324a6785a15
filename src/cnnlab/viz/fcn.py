"""Figures of an FCN scan: per-class heatmaps over the image and the top class per position."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cnnlab.viz.common import plt, save_figure


def plot_scan(image: torch.Tensor, probs: torch.Tensor, classes: list[str], window: tuple[int, int] | None, stride: int,
              path: Path, title: str = "") -> Path:
    """The image, the most likely class per window position, and one heatmap per class.

    Each grid cell is drawn over the centre of its window: cell (i, j) covers
    rows ``i·stride … i·stride + window`` of the image, so the heatmaps are
    placed with a margin of half a window minus half a stride. ``window=None``
    (a global-pooling head: the grid is the last feature map) places cell
    (i, j) over rows ``i·stride … (i + 1)·stride``.
    """
    img = image.permute(1, 2, 0).numpy()
    grey = img[..., 0] if img.shape[-1] == 1 else img
    k, rows, cols = probs.shape
    top_y = 0.0 if window is None else window[0] / 2 - stride / 2
    left_x = 0.0 if window is None else window[1] / 2 - stride / 2
    extent = (left_x, left_x + cols * stride, top_y + rows * stride, top_y)
    panels = 2 + k
    ncols = min(panels, 6)
    nrows = (panels + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.4 * ncols, 2.9 * nrows), squeeze=False)
    fig.subplots_adjust(hspace=0.5)
    axes = axes.ravel()
    cmap = "gray" if img.shape[-1] == 1 else None
    axes[0].imshow(grey, cmap=cmap)
    axes[0].set_title("image", fontsize=9)
    top = probs.argmax(0).numpy()
    axes[1].imshow(grey, cmap=cmap)
    axes[1].imshow(np.ma.masked_array(top, mask=probs.max(0).values.numpy() < 0.5), cmap="tab10", vmin=0,
                   vmax=9, alpha=0.55, extent=extent, interpolation="nearest")
    axes[1].set_title("top class (p ≥ 0.5)", fontsize=9)
    from matplotlib.patches import Patch

    shown = sorted({int(c) for c in np.unique(top[probs.max(0).values.numpy() >= 0.5])})
    cm = plt.get_cmap("tab10")
    axes[1].legend(handles=[Patch(color=cm(c / 9), label=classes[c]) for c in shown],
                   fontsize=5, loc="upper left", bbox_to_anchor=(0.0, -0.02), ncol=2, frameon=False)
    for c in range(k):
        ax = axes[2 + c]
        ax.imshow(grey, cmap=cmap)
        ax.imshow(probs[c].numpy(), cmap="inferno", vmin=0, vmax=1, alpha=0.6, extent=extent,
                  interpolation="nearest")
        ax.set_title(f"{classes[c]} (max {float(probs[c].max()):.2f})", fontsize=8)
    for ax in axes:
        ax.set_xlim(0, img.shape[1])
        ax.set_ylim(img.shape[0], 0)
        ax.axis("off")
    for ax in axes[panels:]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)
