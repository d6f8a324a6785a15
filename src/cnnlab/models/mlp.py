"""A multilayer perceptron: the dense network (DNN) CNNs are compared against."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cnnlab.models.base import ZooModel


class MLP(ZooModel):
    """Flatten the image, then dense layers with ReLU: every pixel connects to every unit.

    Its first layer alone has ``C·H·W·hidden[0]`` weights, and it knows nothing
    of locality: shifting the image by one pixel changes every input it sees.
    That is what convolution's weight sharing and local receptive fields fix.

    A dense network needs a fixed input size: ``input_size`` (H = W). Other
    sizes are adaptively average-pooled to it first (no parameters; a no-op at
    ``input_size``; a smaller image has its pixels repeated), so the MLP
    accepts any input, but it only ever sees ``input_size``² pixels.
    The default, 300 and 100 hidden units on 28×28 images, is Géron's
    Fashion-MNIST MLP (266,610 parameters for 10 classes).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 28,
                 hidden: Sequence[int] = (300, 100), dropout: float = 0.0) -> None:
        super().__init__()
        self.num_classes, self.in_channels = num_classes, in_channels
        self.resize = nn.AdaptiveAvgPool2d(input_size)
        layers: list[nn.Module] = []
        width = in_channels * input_size * input_size
        for units in hidden:
            layers += [nn.Linear(width, units), nn.ReLU(inplace=True)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = units
        self.hidden = nn.Sequential(*layers)
        self.num_features = width
        self.classifier = nn.Linear(width, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:   # (B, C, H, W)
        x = torch.flatten(self.resize(x), 1)                        # (B, C·s·s)
        return self.hidden(x)                                      # (B, hidden[-1])

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:       # (B, hidden[-1])
        return self.classifier(x)                                  # (B, num_classes)


def mlp(num_classes: int = 10, in_channels: int = 1, input_size: int = 28) -> MLP:
    """The dense baseline: 300 → 100 → classes on ``input_size``² images."""
    return MLP(num_classes, in_channels, input_size)
