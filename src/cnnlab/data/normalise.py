"""Image normalisation, defined once: the training images' per-channel statistics and the standardised input.

Every path from a uint8 image to a network's input — training batches, validation, evaluation, prediction, the
FCN scan, the page's feature maps — goes through :func:`normalise` with the statistics :func:`standardiser` took
from the training split (and a run's ``config.json`` records).
"""

from __future__ import annotations

from typing import Any

import torch


def normalise(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) → float, per-channel standardised with the training set's statistics."""
    return (images.float().div_(255) - mean) / std


def channel_stats(train: Any) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of the training images, in [0, 1] units.

    Images of different sizes (``train.sizes``, :mod:`cnnlab.data.canvas`) count their own pixels only, never
    the canvas padding: sums in float64 over each image's own area, the unbiased standard deviation."""
    sizes = getattr(train, "sizes", None)
    if sizes is None:
        x = train.images.float().div_(255)
        mean = x.mean(dim=(0, 2, 3))
        std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)
        return [round(float(v), 6) for v in mean], [round(float(v), 6) for v in std]
    c = train.images.shape[1]
    total, squares, n = torch.zeros(c, dtype=torch.float64), torch.zeros(c, dtype=torch.float64), 0
    for i, (h, w) in enumerate(sizes.tolist()):
        x = train.images[i, :, :h, :w].double().div_(255)
        total += x.sum(dim=(1, 2))
        squares += x.square().sum(dim=(1, 2))
        n += h * w
    mean = total / n
    std = ((squares - n * mean.square()) / max(n - 1, 1)).clamp_min(0).sqrt().clamp_min(1e-3)
    return [round(float(v), 6) for v in mean], [round(float(v), 6) for v in std]


def standardiser(train: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) of the training images as (1, C, 1, 1) tensors, for :func:`normalise`."""
    mean, std = channel_stats(train)
    return torch.tensor(mean).view(1, -1, 1, 1), torch.tensor(std).view(1, -1, 1, 1)
