"""U-Net (Ronneberger, Fischer & Brox, MICCAI 2015), the "same"-padded variant.

A contracting path of ``depth`` levels — two 3×3 convolutions, then a 2×2 max
pool that halves H and W and a doubling of the channels (64 → 1024 in the
paper's Fig. 1 at ``width=64, depth=4``) — and an expanding path that mirrors
it: a 2×2 transposed convolution doubles H and W and halves the channels, the
encoder's map of the same size is concatenated (the skip that brings the
spatial detail back), two 3×3 convolutions follow. A 1×1 convolution scores
each pixel.

The paper pads nothing ("valid" convolutions: a 572×572 input gives a
388×388 output and the input is tiled with mirrored borders); here every 3×3
convolution is "same"-padded so the output has the input's size; an input whose sizes are
not multiples of 2^depth is padded to the next one and the scores cropped back
(:class:`~cnnlab.models.segmentation.base.SegmentationModel`). Batch normalisation after each
convolution (``norm``, as most implementations add) speeds training from
scratch; ``norm=False`` is the paper's network (31,030,658 parameters for one
input channel and two classes at the paper's widths).
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.layers.conv_norm_act import ConvNormAct
from cnnlab.models.base import init_kaiming
from cnnlab.models.segmentation.base import SegmentationModel


class DoubleConv(nn.Sequential):
    """Two 3×3 "same" convolutions, each followed by (batch norm and) ReLU."""

    def __init__(self, in_channels: int, out_channels: int, norm: bool) -> None:
        norm_layer = nn.BatchNorm2d if norm else None
        super().__init__(ConvNormAct(in_channels, out_channels, 3, norm_layer=norm_layer),
                         ConvNormAct(out_channels, out_channels, 3, norm_layer=norm_layer))


class Up(nn.Module):
    """2× transposed convolution (channels halved), concatenation with the skip, DoubleConv."""

    def __init__(self, in_channels: int, out_channels: int, norm: bool) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        self.conv = DoubleConv(2 * out_channels, out_channels, norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:   # (B, 2c, h, w), (B, c, 2h, 2w)
        return self.conv(torch.cat([skip, self.up(x)], dim=1))             # (B, c, 2h, 2w)


class UNet(SegmentationModel):
    """U-Net with ``depth`` poolings and ``width`` channels at full resolution."""

    def __init__(self, num_classes: int = 2, in_channels: int = 1, width: int = 64, depth: int = 4,
                 norm: bool = True) -> None:
        super().__init__()
        if not 1 <= depth <= 8:
            raise ValueError(f"U-Net depth must be 1..8, not {depth}")
        if width < 1:
            raise ValueError(f"U-Net width must be at least 1, not {width}")
        self.num_classes, self.in_channels, self.depth = num_classes, in_channels, depth
        self.size_multiple = 2 ** depth
        chans = [width * 2 ** i for i in range(depth + 1)]            # 64, 128, 256, 512, 1024
        self.inc = DoubleConv(in_channels, chans[0], norm)
        self.down = nn.ModuleList(DoubleConv(chans[i], chans[i + 1], norm) for i in range(depth))
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(Up(chans[i + 1], chans[i], norm) for i in reversed(range(depth)))
        self.head = nn.Conv2d(chans[0], num_classes, 1)
        init_kaiming(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:              # (B, C, H, W)
        x, size = self.pad_input(x)                                  # to a multiple of 2^depth
        skips = [self.inc(x)]                                        # (B, w, H, W)
        for down in self.down:
            skips.append(down(self.pool(skips[-1])))                 # (B, 2^i·w, H/2^i, W/2^i)
        x = skips.pop()                                              # the bottleneck
        for up in self.up:
            x = up(x, skips.pop())                                   # back up one level
        return self.crop_output(self.head(x), size)                  # (B, K, H, W)


def unet(num_classes: int = 2, in_channels: int = 1, width: int = 64, depth: int = 4, norm: bool = True) -> UNet:
    """U-Net at the paper's widths (64 → 1024) with batch norm, "same" padding."""
    return UNet(num_classes, in_channels, width, depth, norm)
