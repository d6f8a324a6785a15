"""Augmentation presets on ``torchvision.transforms.v2``, applied image by image to uint8 batches.

``none``    nothing.
``basic``   shift up to 10 % of the size; horizontal flip where the data allows it.
``strong``  random resized crop (70–100 % of the area), rotation up to ±10°, shift up to 10 %,
            brightness/contrast ±30 %; horizontal flip where the data allows it.

Randomness comes from torch's global generator, so a seeded run (and a resumed
one, whose generator state is restored) draws the same transformations.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.transforms import v2

from cnnlab.errors import CnnlabError
from cnnlab.vocab import AUGMENT_PRESETS

PRESETS = AUGMENT_PRESETS


def make_augment(preset: str, size: tuple[int, int], flip: bool) -> nn.Module | None:
    """The transformation of one image (C, H, W) uint8 for ``preset``; ``None`` for ``none``."""
    if preset not in PRESETS:
        raise CnnlabError(f"unknown augmentation preset '{preset}'; use one of {', '.join(PRESETS)}")
    if preset == "none":
        return None
    steps: list[nn.Module] = []
    if preset == "strong":
        steps.append(v2.RandomResizedCrop(list(size), scale=(0.7, 1.0), ratio=(0.85, 1.18), antialias=True))
        steps.append(v2.RandomAffine(degrees=10, translate=(0.1, 0.1)))
    else:
        steps.append(v2.RandomAffine(degrees=0, translate=(0.1, 0.1)))
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    if preset == "strong":
        steps.append(v2.ColorJitter(brightness=0.3, contrast=0.3))
    return v2.Compose(steps)


def apply(augment: nn.Module | None, images: torch.Tensor) -> torch.Tensor:
    """Augment every image of a uint8 batch independently."""
    if augment is None:
        return images
    return torch.stack([augment(img) for img in images])
