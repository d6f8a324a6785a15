"""What every segmentation network shares: dense output and the sizes it accepts."""

from __future__ import annotations

import torch
from torch import nn


class SegmentationModel(nn.Module):
    """A network whose output is per-pixel class scores ``(B, num_classes, H, W)`` for a ``(B, C, H, W)`` input.

    ``size_multiple``: height and width must be multiples of it (each
    stride-2 step halves them and the decoder doubles them back).
    """

    dense_prediction = True           # memory prediction and training use a per-pixel loss
    num_classes: int
    in_channels: int
    size_multiple: int = 1

    @property
    def min_input_size(self) -> int:
        return self.size_multiple

    def check_size(self, h: int, w: int) -> None:
        """A clear error when (h, w) does not fit the network."""
        m = self.size_multiple
        if h % m or w % m:
            name = type(self).__name__
            up = lambda v: -(-v // m) * m  # noqa: E731
            raise ValueError(f"{name} needs a height and width divisible by {m} (got {h}×{w}): each of its "
                             f"stride-2 steps halves the size; resize to {up(h)}×{up(w)} (--size {up(h)},{up(w)})")

    def _check(self, x: torch.Tensor) -> None:
        h, w = x.shape[-2], x.shape[-1]
        if isinstance(h, int) and isinstance(w, int):      # not while torch.fx traces (depth counting)
            self.check_size(h, w)
