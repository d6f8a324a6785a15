"""The padding rules, in one place and without torch (the NumPy ops and the torch layers share them).

"same" follows TensorFlow/Keras for every stride: ``out = ceil(in / stride)``,
total padding ``max((out - 1)·stride + k_eff - in, 0)``, the odd extra zero at
the bottom/right. "valid": ``out = floor((in - k_eff) / stride) + 1``, with
``k_eff = dilation·(k - 1) + 1``.
"""

from __future__ import annotations

import math


def same_out(size: int, stride: int) -> int:
    """Output length under "same": ``ceil(size / stride)``."""
    return math.ceil(size / stride)


def valid_out(size: int, kernel: int, stride: int, dilation: int = 1) -> int:
    """Output length under "valid" (may be <= 0 when the kernel does not fit)."""
    k_eff = dilation * (kernel - 1) + 1
    return (size - k_eff) // stride + 1


def same_pad_amounts(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """(before, after) zeros for "same": the extra one, if any, goes after."""
    k_eff = dilation * (kernel - 1) + 1
    total = max((same_out(size, stride) - 1) * stride + k_eff - size, 0)
    return total // 2, total - total // 2


def same_pad_2d(h: int, w: int, kernel: tuple[int, int], stride: tuple[int, int],
                dilation: tuple[int, int] = (1, 1)) -> tuple[int, int, int, int]:
    """``(left, right, top, bottom)`` in ``F.pad`` order for an ``h×w`` input."""
    top, bottom = same_pad_amounts(h, kernel[0], stride[0], dilation[0])
    left, right = same_pad_amounts(w, kernel[1], stride[1], dilation[1])
    return left, right, top, bottom
