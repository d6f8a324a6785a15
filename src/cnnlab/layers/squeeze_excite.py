"""Squeeze-and-excitation (Hu, Shen & Sun, "Squeeze-and-Excitation Networks", CVPR 2018)."""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.layers.conv_norm_act import LayerFactory


class SqueezeExcite(nn.Module):
    """Recalibrate channels: ``x · σ(W₂ δ(W₁ · GAP(x)))``.

    *Squeeze*: global average pooling summarises each channel in one number.
    *Excitation*: a bottleneck of two fully connected layers (here 1×1
    convolutions, which are the same thing on a 1×1 map) with ``rd_channels``
    in the middle learns a weight in (0, 1) per channel, and the block scales
    the feature maps by it. For ``C`` channels it costs ``2·C·rd + rd + C``
    parameters and almost no MACs; SENet used ``rd = C / 16``.
    """

    def __init__(self, channels: int, rd_channels: int, act_layer: LayerFactory = nn.ReLU,
                 gate_layer: LayerFactory = nn.Sigmoid) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, rd_channels, 1)   # squeeze → bottleneck
        self.act = act_layer(inplace=True) if act_layer in (nn.ReLU, nn.SiLU) else act_layer()
        self.fc2 = nn.Conv2d(rd_channels, channels, 1)   # bottleneck → one weight per channel
        self.gate = gate_layer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:      # (B, C, H, W)
        s = x.mean((2, 3), keepdim=True)                     # (B, C, 1, 1)  squeeze
        s = self.gate(self.fc2(self.act(self.fc1(s))))       # (B, C, 1, 1)  excitation
        return x * s                                         # (B, C, H, W)  recalibrated


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None,
                   round_limit: float = 0.9) -> int:
    """Round ``value`` to a multiple of ``divisor`` without going below ``round_limit · value``.

    Hardware runs channel counts that are multiples of 8 faster; MobileNet and
    EfficientNet (and timm's SE reduction) round every width this way.
    """
    min_value = min_value or divisor
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < round_limit * value:
        new += divisor
    return new
