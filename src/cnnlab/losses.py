"""The training losses, defined once: the engine's tasks train with them and memory prediction runs them."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnlab.vocab import IGNORE_INDEX


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy of ``(N, classes)`` logits (computed in float32 under mixed precision)."""
    return F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)


def segmentation_loss(scores: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Per-pixel cross-entropy of ``(N, classes, H, W)`` scores against ``(N, H, W)`` masks, averaged over the
    labelled pixels (``IGNORE_INDEX`` = 255 left out; a batch with none gives 0, not NaN)."""
    total = F.cross_entropy(scores.float(), masks, ignore_index=IGNORE_INDEX, reduction="sum")
    return total / (masks != IGNORE_INDEX).sum().clamp_min(1)
