"""What every zoo model shares: a features/head split and the smallest input it accepts."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

from cnnlab.fake import is_meta


class ZooModel(nn.Module, ABC):
    """A classifier split into ``forward_features`` (the backbone) and ``forward_head``.

    ``forward_features`` returns the last feature map ``(B, C, H, W)`` (a
    vector ``(B, F)`` for the MLP), so the model serves as a backbone for
    detection or segmentation; ``forward_head`` pools it and classifies.
    ``min_input_size`` is the smallest height/width the network accepts: below
    it some layer would produce an empty map.
    """

    num_classes: int
    in_channels: int
    min_input_size: int = 1

    @abstractmethod
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone: input batch -> last feature map."""

    @abstractmethod
    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Pooling and classifier: feature map -> logits."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:     # (B, C, H, W)
        return self.forward_head(self.forward_features(x))  # (B, num_classes)


def init_kaiming(model: nn.Module, linear_std: float = 0.01) -> None:
    """He initialisation (He et al., 2015) for ReLU networks, as torchvision's VGG/ResNet do.

    Convolutions: normal with std ``sqrt(2 / fan_out)``; batch norm: γ = 1, β = 0;
    linear layers: normal(0, ``linear_std``); every bias 0.
    """
    if is_meta(model):
        return
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, linear_std)
            nn.init.zeros_(m.bias)
