"""The inception module (Szegedy et al., "Going Deeper with Convolutions", CVPR 2015, Fig. 2b)."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from cnnlab.layers.conv_norm_act import ConvNormAct, LayerFactory

# torchvision's GoogLeNet puts batch norm (eps 0.001) after every convolution,
# which the 2014 network did not have; we follow it so the counts match.
InceptionConv = partial(ConvNormAct, norm_layer=partial(nn.BatchNorm2d, eps=0.001))


class Inception(nn.Module):
    """Four parallel branches concatenated along channels.

    1×1 | 1×1→3×3 | 1×1→5×5 | 3×3 max-pool→1×1. The 1×1 "reduce" convolutions
    before the expensive 3×3 and 5×5 ones are the point: they cut the channels
    those see, which is how GoogLeNet is 22 layers deep with 12× fewer
    parameters than AlexNet. ``big_kernel`` is 5 in the paper; torchvision's
    implementation (whose weights and parameter count people quote) uses 3.
    """

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int,
                 ch5x5: int, pool_proj: int, big_kernel: int = 5,
                 conv: LayerFactory = InceptionConv) -> None:
        super().__init__()
        self.branch1 = conv(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(conv(in_channels, ch3x3red, kernel_size=1),
                                     conv(ch3x3red, ch3x3, kernel_size=3))
        self.branch3 = nn.Sequential(conv(in_channels, ch5x5red, kernel_size=1),
                                     conv(ch5x5red, ch5x5, kernel_size=big_kernel))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                     conv(in_channels, pool_proj, kernel_size=1))
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:   # (B, C_in, H, W)
        branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return torch.cat(branches, 1)                     # (B, out_channels, H, W)
