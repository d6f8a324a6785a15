"""What every segmentation network shares: dense output for an input of any size.

A network whose stride-2 steps halve the size ``k`` times needs a height and
width divisible by ``2^k`` (its *output stride*, ``size_multiple``) for the
decoder to double them back to the input's size. Real images are rarely such
multiples (VOC's 500×375, a 40×40 crop), so :meth:`SegmentationModel.pad_input`
pads the input with zeros on the bottom and right — zero is the training images'
mean once standardised, the extra pad goes bottom/right as TensorFlow's "same"
rule puts it — to the next multiple, and :meth:`SegmentationModel.crop_output`
cuts the scores back to the input's own size. An input that already is a
multiple goes through untouched (no copy: memory predictions are unchanged).
Labels are never resampled, and the padded pixels have no score to be counted.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def padded_size(size: int, multiple: int) -> int:
    """The next multiple of ``multiple`` at or above ``size``."""
    return -(-size // multiple) * multiple


class SegmentationModel(nn.Module):
    """A network whose output is per-pixel class scores ``(B, num_classes, H, W)`` for a ``(B, C, H, W)`` input
    of any H and W (padded inside to a multiple of ``size_multiple``, the output stride, and cropped back)."""

    dense_prediction = True           # memory prediction and training use a per-pixel loss
    num_classes: int
    in_channels: int
    size_multiple: int = 1
    min_input_size = 1

    def pad_input(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int] | None]:
        """``(x padded with zeros to a multiple of size_multiple, (H, W) to crop back to)``; ``None`` when
        nothing was padded (or while torch.fx traces, when the sizes are symbols)."""
        h, w = x.shape[-2], x.shape[-1]
        if not (isinstance(h, int) and isinstance(w, int)):
            return x, None
        m = self.size_multiple
        ph, pw = padded_size(h, m) - h, padded_size(w, m) - w
        if not (ph or pw):
            return x, None
        return F.pad(x, (0, pw, 0, ph)), (h, w)

    @staticmethod
    def crop_output(out: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
        """The scores of the input's own pixels (``size`` from :meth:`pad_input`)."""
        return out if size is None else out[..., :size[0], :size[1]]
