"""TensorFlow/Keras "same" padding for any stride, kernel and dilation.

PyTorch's ``padding="same"`` only exists for stride 1 and pads symmetrically.
Keras defines "same" for every stride as ``out = ceil(in / stride)`` and puts
the odd extra zero at the bottom/right. These helpers reproduce that rule so a
spec network has exactly the shapes the textbooks state (e.g. 200×300 with a
3×3, stride-2 convolution gives 100×150).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.padding import same_out, same_pad_2d, same_pad_amounts, valid_out

__all__ = ["SameAvgPool2d", "SamePad2d", "conv2d_keras", "same_out", "same_pad_2d", "same_pad_amounts",
           "valid_out"]

Pair = tuple[int, int]


class SamePad2d(nn.Module):
    """Pads its input by the "same" rule, computed from the input size at run time.

    ``value`` is the fill: 0 before a convolution, ``-inf`` before max pooling
    (so padding never wins the max, as in TensorFlow).
    """

    def __init__(self, kernel: tuple[int, int], stride: tuple[int, int],
                 dilation: tuple[int, int] = (1, 1), value: float = 0.0) -> None:
        super().__init__()
        self.kernel, self.stride, self.dilation, self.value = kernel, stride, dilation, value

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C, H', W')
        pad = same_pad_2d(x.shape[-2], x.shape[-1], self.kernel, self.stride, self.dilation)
        if not any(pad):
            return x
        return F.pad(x, pad, value=self.value)

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, stride={self.stride}, dilation={self.dilation}, value={self.value}"


class SameAvgPool2d(nn.Module):
    """Average pooling with TensorFlow "same" padding.

    TensorFlow averages only over the real (unpadded) elements of each window.
    We pool the zero-padded input and divide by the pooled count of real
    elements, which gives exactly that.
    """

    def __init__(self, kernel: tuple[int, int], stride: tuple[int, int]) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W)
        pad = same_pad_2d(x.shape[-2], x.shape[-1], self.kernel, self.stride)
        if not any(pad):
            return F.avg_pool2d(x, self.kernel, self.stride)
        summed = F.avg_pool2d(F.pad(x, pad), self.kernel, self.stride, divisor_override=1)
        ones = torch.ones((1, 1, x.shape[-2], x.shape[-1]), dtype=x.dtype, device=x.device)
        count = F.avg_pool2d(F.pad(ones, pad), self.kernel, self.stride, divisor_override=1)
        return summed / count

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, stride={self.stride}, padding='same'"


def conv2d_keras(c_in: int, c_out: int, kernel: Pair, stride: Pair, padding: str | Pair,
                 dilation: Pair, groups: int, bias: bool) -> list[nn.Module]:
    """The modules of a Keras-style 2-D convolution: ``padding`` is "same" (TensorFlow's rule), "valid", or
    explicit ``(rows, cols)``; a ``SamePad2d`` only where PyTorch's symmetric padding cannot do it."""
    odd = all((d * (k - 1)) % 2 == 0 for k, d in zip(kernel, dilation))
    if padding == "same" and stride == (1, 1) and odd:
        pad: Pair | int = tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation))  # type: ignore[assignment]
        return [nn.Conv2d(c_in, c_out, kernel, stride, pad, dilation, groups, bias)]
    if padding == "same":
        return [SamePad2d(kernel, stride, dilation),
                nn.Conv2d(c_in, c_out, kernel, stride, 0, dilation, groups, bias)]
    pad = 0 if padding == "valid" else padding
    return [nn.Conv2d(c_in, c_out, kernel, stride, pad, dilation, groups, bias)]
