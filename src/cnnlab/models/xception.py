"""Xception (Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions", CVPR 2017).

What it brought: the extreme version of the inception idea — map
cross-channel correlations and spatial correlations fully separately. Every
convolution after the stem is a depthwise separable one (a per-channel 3×3
followed by a 1×1 across channels), arranged in 14 residual modules: an entry
flow that downsamples, a middle flow of 8 identical 728-channel modules, and
an exit flow. It has as many parameters as Inception-v3 (22.9 M) and uses
them better (§4.3 of the paper).
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.layers.separable import SeparableConv2d
from cnnlab.models.base import ZooModel, init_kaiming


class XceptionBlock(nn.Module):
    """``reps`` × [ReLU → separable 3×3 → BN], a 3×3/2 max pool if strided, + a (projected) shortcut.

    The shortcut is registered first so the parameter order matches timm's
    ``legacy_xception`` (whose weights then load in order).
    """

    def __init__(self, in_channels: int, out_channels: int, reps: int, stride: int = 1,
                 start_with_relu: bool = True, grow_first: bool = True) -> None:
        super().__init__()
        self.skip: nn.Module | None = None
        if out_channels != in_channels or stride != 1:
            self.skip = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                      nn.BatchNorm2d(out_channels))
        layers: list[nn.Module] = []
        for i in range(reps):
            if grow_first:   # widen at the first separable conv (entry flow)
                c_in, c_out = (in_channels if i == 0 else out_channels), out_channels
            else:            # widen at the last one (exit flow)
                c_in, c_out = in_channels, (in_channels if i < reps - 1 else out_channels)
            if i > 0 or start_with_relu:
                # not in place: the block's input is still needed by the shortcut
                layers.append(nn.ReLU(inplace=i > 0))
            layers += [SeparableConv2d(c_in, c_out, 3), nn.BatchNorm2d(c_out)]
        if stride != 1:
            layers.append(nn.MaxPool2d(3, stride, 1))
        self.rep = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:        # (B, C_in, H, W)
        shortcut = x if self.skip is None else self.skip(x)
        return self.rep(x) + shortcut                          # (B, C_out, H/s, W/s)


class Xception(ZooModel):
    """Entry flow (stem + 3 strided modules), middle flow (8 × 728), exit flow, global pooling.

    Follows timm's ``legacy_xception`` (22,855,952 parameters for 1000
    classes), which is the Keras reference network: unpadded 3×3 stem
    convolutions, then 299×299 → 10×10 feature maps. The paper counts 36
    convolutional layers (a separable convolution counts as one).
    """

    min_input_size = 7

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, middle_blocks: int = 8,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.num_classes, self.in_channels = num_classes, in_channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, 2, 0, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
            nn.Conv2d(32, 64, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
        )                                                                   # 299 → 147
        self.entry = nn.Sequential(
            XceptionBlock(64, 128, 2, 2, start_with_relu=False),           # → 74
            XceptionBlock(128, 256, 2, 2),                                 # → 37
            XceptionBlock(256, 728, 2, 2),                                 # → 19
        )
        self.middle = nn.Sequential(*[XceptionBlock(728, 728, 3) for _ in range(middle_blocks)])
        self.exit = nn.Sequential(
            XceptionBlock(728, 1024, 2, 2, grow_first=False),              # → 10
            SeparableConv2d(1024, 1536, 3), nn.BatchNorm2d(1536), nn.ReLU(inplace=True),
            SeparableConv2d(1536, 2048, 3), nn.BatchNorm2d(2048), nn.ReLU(inplace=True),
        )
        self.num_features = 2048
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(2048, num_classes)
        init_kaiming(self)  # linear layers: normal(0, 0.01)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:   # (B, C, 299, 299)
        x = self.entry(self.stem(x))                               # (B, 728, 19, 19)
        return self.exit(self.middle(x))                           # (B, 2048, 10, 10)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:       # (B, 2048, h, w)
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))  # (B, num_classes)


def xception(num_classes: int = 1000, in_channels: int = 3) -> Xception:
    """Xception as timm's ``legacy_xception``: 22,855,952 parameters."""
    return Xception(num_classes, in_channels)
