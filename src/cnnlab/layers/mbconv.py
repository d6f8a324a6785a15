"""Mobile inverted bottleneck with squeeze-excitation (MobileNetV2 §3.3; EfficientNet §4)."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from cnnlab.layers.conv_norm_act import ConvNormAct, LayerFactory
from cnnlab.layers.drop_path import DropPath
from cnnlab.layers.squeeze_excite import SqueezeExcite, make_divisible

# EfficientNet's batch norm: TensorFlow's ε = 10⁻³ and momentum 0.99 (PyTorch's 0.01).
BatchNormTF = partial(nn.BatchNorm2d, eps=1e-3, momentum=0.01)


class MBConv(nn.Module):
    """Expand (1×1) → depthwise k×k → squeeze-excite → project (1×1, linear) [+ input].

    The block is "inverted": thin at its ends (where the residual connects)
    and ``expand_ratio``× wide in the middle, where a cheap depthwise
    convolution does the spatial work. The projection has no activation
    (MobileNetV2 §3.2: a ReLU there destroys information in a thin layer).
    The SE bottleneck is a quarter of the block's *input* channels, as in the
    EfficientNet reference code. With a residual, whole blocks are dropped at
    random in training (stochastic depth, Huang et al. 2016) with probability
    ``drop_prob``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 expand_ratio: float, se_ratio: float = 0.25, drop_prob: float = 0.0,
                 norm_layer: LayerFactory = BatchNormTF,
                 act_layer: LayerFactory = nn.SiLU) -> None:
        super().__init__()
        mid = make_divisible(in_channels * expand_ratio, 8)
        self.use_residual = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if mid != in_channels:
            layers.append(ConvNormAct(in_channels, mid, 1, norm_layer=norm_layer, act_layer=act_layer))
        layers += [
            ConvNormAct(mid, mid, kernel_size, stride, groups=mid, norm_layer=norm_layer,
                        act_layer=act_layer),
            SqueezeExcite(mid, max(1, int(in_channels * se_ratio)), act_layer=act_layer),
            ConvNormAct(mid, out_channels, 1, norm_layer=norm_layer, act_layer=None),
        ]
        self.block = nn.Sequential(*layers)
        self.drop_path = DropPath(drop_prob)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:   # (B, C_in, H, W)
        out = self.block(x)                               # (B, C_out, H/stride, W/stride)
        if self.use_residual:
            out = self.drop_path(out) + x
        return out
