"""AlexNet (Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep Convolutional
Neural Networks", NeurIPS 2012).

What it brought: a much bigger and deeper CNN trained on GPUs, convolutional
layers stacked directly on each other, ReLU (§3.1: several times faster to
train than tanh), dropout in the dense layers (§4.2), overlapping max pooling
(§3.4), data augmentation, and local response normalization (§3.3).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cnnlab.layers.lrn import paper_lrn
from cnnlab.models.base import ZooModel


@dataclass(frozen=True)
class AlexNetConfig:
    """One row per variant: the five convolutions' widths and what sits between them."""

    widths: tuple[int, int, int, int, int]  # conv1..conv5 output channels
    lrn: bool                               # LRN after conv1 and conv2 (paper §3.3)
    groups: tuple[int, int, int, int, int]  # 2 where the paper split a layer across its two GPUs


# The paper's Fig. 2: 96-256-384-384-256 kernels. torchvision follows the later
# "one weird trick" single-GPU version (Krizhevsky 2014): 64-192-384-256-256, no LRN.
PAPER = AlexNetConfig((96, 256, 384, 384, 256), lrn=True, groups=(1, 1, 1, 1, 1))
PAPER_TWO_GPU = AlexNetConfig((96, 256, 384, 384, 256), lrn=True, groups=(1, 2, 1, 2, 2))
TORCHVISION = AlexNetConfig((64, 192, 384, 256, 256), lrn=False, groups=(1, 1, 1, 1, 1))


class AlexNet(ZooModel):
    """Five convolutions (11×11/4, 5×5, 3×3 ×3), three overlapping 3×3/2 max pools, three dense layers.

    conv1 pads by 2 so a 224×224 input gives the paper's 55×55 maps (the paper's
    arithmetic really needs 227×227 without padding). An adaptive average pool
    to 6×6 before the dense layers (a no-op at 224×224) lets any input of at
    least 63×63 through, as in torchvision.

    Parameters for 1000 classes: 61,100,840 for ``alexnet`` (torchvision's
    layout); 62,378,344 for ``alexnet_paper`` (the paper's widths on one
    device); 60,965,224 with the paper's two-GPU split (``groups``), the
    "60 million parameters" of its abstract.
    """

    min_input_size = 63

    def __init__(self, num_classes: int = 1000, in_channels: int = 3,
                 config: AlexNetConfig = TORCHVISION, dropout: float = 0.5) -> None:
        super().__init__()
        self.num_classes, self.in_channels, self.config = num_classes, in_channels, config
        c1, c2, c3, c4, c5 = config.widths
        g1, g2, g3, g4, g5 = config.groups
        lrn = paper_lrn if config.lrn else nn.Identity
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 11, stride=4, padding=2, groups=g1),  # 224 → 55
            nn.ReLU(inplace=True), lrn(),
            nn.MaxPool2d(3, stride=2),                                         # 55 → 27 (overlapping)
            nn.Conv2d(c1, c2, 5, padding=2, groups=g2),                        # 27
            nn.ReLU(inplace=True), lrn(),
            nn.MaxPool2d(3, stride=2),                                         # 27 → 13
            nn.Conv2d(c2, c3, 3, padding=1, groups=g3), nn.ReLU(inplace=True),  # 13: conv3..5 stacked
            nn.Conv2d(c3, c4, 3, padding=1, groups=g4), nn.ReLU(inplace=True),  #     with no pooling
            nn.Conv2d(c4, c5, 3, padding=1, groups=g5), nn.ReLU(inplace=True),  #     in between
            nn.MaxPool2d(3, stride=2),                                         # 13 → 6
        )
        self.avgpool = nn.AdaptiveAvgPool2d(6)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(c5 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:   # (B, C, 224, 224)
        return self.features(x)                                    # (B, c5, 6, 6)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:       # (B, c5, h, w)
        x = torch.flatten(self.avgpool(x), 1)                      # (B, c5·36)
        return self.classifier(x)                                  # (B, num_classes)


def alexnet(num_classes: int = 1000, in_channels: int = 3) -> AlexNet:
    """torchvision's AlexNet (64-192-384-256-256, no LRN): 61,100,840 parameters."""
    return AlexNet(num_classes, in_channels, TORCHVISION)


def alexnet_paper(num_classes: int = 1000, in_channels: int = 3, two_gpu: bool = False) -> AlexNet:
    """The 2012 paper's AlexNet with LRN: 62,378,344 parameters (60,965,224 with ``two_gpu``)."""
    return AlexNet(num_classes, in_channels, PAPER_TWO_GPU if two_gpu else PAPER)
