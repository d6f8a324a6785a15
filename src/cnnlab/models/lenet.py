"""LeNet-5 (LeCun, Bottou, Bengio & Haffner, "Gradient-Based Learning Applied to Document
Recognition", Proc. IEEE 1998, §II.B and Fig. 2).

Conv–pool, conv–pool, then dense layers: the pattern every later CNN kept.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.models.base import ZooModel


class LeNet5(ZooModel):
    """C1 6@5×5 → S2 pool → C3 16@5×5 → S4 pool → C5 120@5×5 → F6 84 → output.

    On a 32×32 input C5's 5×5 kernels cover the whole 5×5 map of S4, so C5 is a
    dense layer that the paper wrote as a convolution; written that way here
    too, the network accepts any input of at least 32×32 (larger inputs give a
    larger C5 map, averaged before F6). 61,706 parameters for 10 classes:
    156 + 2,416 + 48,120 + 10,164 + 850.

    Differences from the 1998 network, which had about 60,000 parameters: its
    C3 connected each map to only some S2 maps (a connection table: 1,516
    parameters instead of 2,416), S2/S4 had a trainable coefficient and bias
    per map (+12, +32), the squashing function was ``1.7159·tanh(2x/3)`` and the
    output layer was 10 Euclidean RBF units (840 weights, no bias). Like most
    textbooks and Keras/PyTorch tutorials we use full connections, plain tanh
    and a dense output.

    ``modern=True`` swaps tanh/average pooling for ReLU/max pooling, the form
    people train today; the parameter count is the same.
    """

    min_input_size = 32

    def __init__(self, num_classes: int = 10, in_channels: int = 1, modern: bool = False) -> None:
        super().__init__()
        self.num_classes, self.in_channels = num_classes, in_channels
        act: type[nn.Module] = nn.ReLU if modern else nn.Tanh
        pool: type[nn.Module] = nn.MaxPool2d if modern else nn.AvgPool2d
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5), act(),  # C1: 32×32 → 6@28×28
            pool(2),                              # S2: → 6@14×14
            nn.Conv2d(6, 16, 5), act(),           # C3: → 16@10×10
            pool(2),                              # S4: → 16@5×5
            nn.Conv2d(16, 120, 5), act(),         # C5: → 120@1×1 (a dense layer on 32×32 inputs)
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(120, 84), act(),            # F6
            nn.Linear(84, num_classes),           # output (the paper's RBF units)
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, 32, 32)
        return self.features(x)                                   # (B, 120, 1, 1)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:      # (B, 120, h, w)
        return self.classifier(torch.flatten(self.pool(x), 1))    # (B, num_classes)


def lenet5(num_classes: int = 10, in_channels: int = 1) -> LeNet5:
    """LeNet-5 as in 1998: tanh and average pooling (61,706 parameters for 10 classes)."""
    return LeNet5(num_classes, in_channels)


def lenet5_relu(num_classes: int = 10, in_channels: int = 1) -> LeNet5:
    """LeNet-5 with ReLU and max pooling (same 61,706 parameters)."""
    return LeNet5(num_classes, in_channels, modern=True)
