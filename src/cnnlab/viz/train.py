"""Figures of a training run: learning curves, confusion matrix, augmentation preview."""

from __future__ import annotations

from pathlib import Path

import torch

from cnnlab.viz.common import plt, save_figure


def plot_curves(history: list[dict[str, float]], path: Path, metric: str = "acc", label: str = "accuracy") -> Path:
    """Loss and the task's metric (``train_<metric>``, ``val_<metric>``) per epoch, training and validation
    (a series the history lacks is left out)."""
    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    def line(ax, key: str, style: str, label: str) -> None:  # type: ignore[no-untyped-def]
        if history and all(key in h for h in history):    # a task without it (Mask R-CNN: no val loss)
            ax.plot(epochs, [h[key] for h in history], style, label=label)

    line(ax1, "train_loss", "o-", "train")
    line(ax1, "val_loss", "s-", "validation")
    ax1.set(xlabel="epoch", ylabel="loss", title="loss")
    line(ax2, f"train_{metric}", "o-", "train")
    line(ax2, f"val_{metric}", "s-", "validation")
    ax2.set(xlabel="epoch", ylabel=label, title=label)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    return save_figure(fig, path)


def plot_confusion(cm: torch.Tensor, classes: list[str], path: Path, title: str = "") -> Path:
    """Confusion matrix (rows: true class, columns: predicted), counts in the cells."""
    n = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * n, 0.8 + 0.55 * n))
    ax.imshow(cm.numpy(), cmap="Blues")
    ax.set_xticks(range(n), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), classes, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=title or "confusion matrix")
    top = float(cm.max()) if cm.numel() else 0.0
    for i in range(n):
        for j in range(n):
            v = int(cm[i, j])
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                        color="white" if v > top / 2 else "black")
    return save_figure(fig, path)


def plot_augment_grid(originals: torch.Tensor, augmented: list[torch.Tensor], labels: list[str], path: Path,
                      title: str) -> Path:
    """Each row: an original image, then its augmented copies (uint8 (C, H, W) tensors)."""
    rows, cols = originals.shape[0], 1 + len(augmented)
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.3 * rows + 0.4), squeeze=False)

    def show(ax, img: torch.Tensor) -> None:  # type: ignore[no-untyped-def]
        if img.shape[0] == 1:
            ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=255)
        else:
            ax.imshow(img.permute(1, 2, 0).numpy())
        ax.set_xticks([])
        ax.set_yticks([])

    for r in range(rows):
        show(axes[r][0], originals[r])
        axes[r][0].set_ylabel(labels[r], fontsize=7)
        for c, batch in enumerate(augmented, start=1):
            show(axes[r][c], batch[r])
    axes[0][0].set_title("original", fontsize=8)
    for c in range(1, cols):
        axes[0][c].set_title(f"augmented {c}", fontsize=8)
    fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)
