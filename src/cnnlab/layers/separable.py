"""Depthwise separable convolution (Chollet, "Xception", CVPR 2017; Sifre 2014)."""

from __future__ import annotations

import torch
from torch import nn


class SeparableConv2d(nn.Module):
    """A depthwise ``k×k`` convolution (one filter per input channel) then a pointwise 1×1.

    A regular ``k×k`` convolution from ``C_in`` to ``C_out`` channels has
    ``k²·C_in·C_out`` weights; the separable one has ``k²·C_in + C_in·C_out``:
    spatial and cross-channel correlations are learned separately. For
    728→728 channels and 3×3 (Xception's middle flow) that is 536,536 weights
    instead of 4,769,856 — 8.9× fewer, and as many times fewer MACs.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int | None = None, dilation: int = 1, bias: bool = False) -> None:
        super().__init__()
        if padding is None:
            padding = (kernel_size - 1) // 2 * dilation
        self.depthwise = nn.Conv2d(in_channels, in_channels, kernel_size, stride, padding,
                                   dilation=dilation, groups=in_channels, bias=bias)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:   # (B, C_in, H, W)
        return self.pointwise(self.depthwise(x))          # (B, C_out, H', W')
