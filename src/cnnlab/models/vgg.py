"""VGG (Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015).

What it brought: depth from a single, uniform recipe. Only 3×3 convolutions
(stride 1, "same" padding), 2×2 max pooling that halves the map while the
width doubles (64 → 512), then three dense layers. Two stacked 3×3 layers see
5×5 (three see 7×7) with fewer parameters (2·9C² vs 25C²) and one more ReLU
(§2.3). The cost: 138 M parameters for VGG-16, 74 % of them in the first
dense layer.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.models.base import ZooModel, init_kaiming

# Table 1 of the paper: output channels of each 3×3 convolution, "M" a 2×2 max pool.
CONFIGS: dict[str, tuple[int | str, ...]] = {
    "A": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),                  # VGG-11
    "D": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
          512, 512, 512, "M"),                                                              # VGG-16
    "E": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"),                                                         # VGG-19
}


class VGG(ZooModel):
    """A stack of 3×3 convolutions (optionally with batch norm) and five 2×2 max pools.

    An adaptive average pool to 7×7 (a no-op at 224×224, as in torchvision)
    lets any input of at least 32×32 through.
    """

    min_input_size = 32

    def __init__(self, config: tuple[int | str, ...], num_classes: int = 1000, in_channels: int = 3,
                 batch_norm: bool = False, dropout: float = 0.5) -> None:
        super().__init__()
        self.num_classes, self.in_channels = num_classes, in_channels
        layers: list[nn.Module] = []
        channels = in_channels
        for v in config:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))                  # halve H and W
            else:
                layers.append(nn.Conv2d(channels, int(v), 3, padding=1))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(int(v)))
                layers.append(nn.ReLU(inplace=True))
                channels = int(v)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(7)
        self.classifier = nn.Sequential(
            nn.Linear(channels * 7 * 7, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )
        init_kaiming(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:   # (B, C, 224, 224)
        return self.features(x)                                    # (B, 512, 7, 7)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:       # (B, 512, h, w)
        return self.classifier(torch.flatten(self.avgpool(x), 1))  # (B, num_classes)


def vgg11(num_classes: int = 1000, in_channels: int = 3) -> VGG:
    """VGG-11 (configuration A): 132,863,336 parameters."""
    return VGG(CONFIGS["A"], num_classes, in_channels)


def vgg11_bn(num_classes: int = 1000, in_channels: int = 3) -> VGG:
    """VGG-11 with batch norm: 132,868,840 parameters."""
    return VGG(CONFIGS["A"], num_classes, in_channels, batch_norm=True)


def vgg16(num_classes: int = 1000, in_channels: int = 3) -> VGG:
    """VGG-16 (configuration D): 138,357,544 parameters."""
    return VGG(CONFIGS["D"], num_classes, in_channels)


def vgg16_bn(num_classes: int = 1000, in_channels: int = 3) -> VGG:
    """VGG-16 with batch norm: 138,365,992 parameters."""
    return VGG(CONFIGS["D"], num_classes, in_channels, batch_norm=True)


def vgg19(num_classes: int = 1000, in_channels: int = 3) -> VGG:
    """VGG-19 (configuration E): 143,667,240 parameters."""
    return VGG(CONFIGS["E"], num_classes, in_channels)


def vgg19_bn(num_classes: int = 1000, in_channels: int = 3) -> VGG:
    """VGG-19 with batch norm: 143,678,248 parameters."""
    return VGG(CONFIGS["E"], num_classes, in_channels, batch_norm=True)
