"""GoogLeNet / Inception-v1 (Szegedy et al., "Going Deeper with Convolutions", CVPR 2015).

What it brought: the inception module — parallel 1×1, 3×3, 5×5 convolutions
and a pooling branch, concatenated, with 1×1 "reduce" convolutions in front
of the expensive ones. The network is 22 weight layers deep yet has about a
tenth of AlexNet's parameters, and ends with global average pooling instead
of big dense layers. Two auxiliary classifiers fed gradient to the middle of
the network during training (weight 0.3 in the loss).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.layers.inception import Inception, InceptionConv
from cnnlab.fake import is_meta
from cnnlab.models.base import ZooModel


@dataclass(frozen=True)
class InceptionRow:
    """One row of Table 1 of the paper (channel counts of one inception module)."""

    ch1x1: int
    ch3x3red: int
    ch3x3: int
    ch5x5red: int
    ch5x5: int
    pool_proj: int


TABLE1: dict[str, InceptionRow] = {
    "3a": InceptionRow(64, 96, 128, 16, 32, 32),
    "3b": InceptionRow(128, 128, 192, 32, 96, 64),
    "4a": InceptionRow(192, 96, 208, 16, 48, 64),
    "4b": InceptionRow(160, 112, 224, 24, 64, 64),
    "4c": InceptionRow(128, 128, 256, 24, 64, 64),
    "4d": InceptionRow(112, 144, 288, 32, 64, 64),
    "4e": InceptionRow(256, 160, 320, 32, 128, 128),
    "5a": InceptionRow(256, 160, 320, 32, 128, 128),
    "5b": InceptionRow(384, 192, 384, 48, 128, 128),
}


class InceptionAux(nn.Module):
    """Auxiliary classifier (§5): average pool to 4×4 (the paper's 5×5/3 on 14×14) → 1×1 conv 128 → FC 1024 → dropout 0.7 → FC."""

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.7) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.conv = InceptionConv(in_channels, 128, kernel_size=1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:          # (B, C, 14, 14)
        x = torch.flatten(self.conv(self.pool(x)), 1)            # (B, 2048)
        return self.fc2(self.dropout(F.relu(self.fc1(x), inplace=True)))  # (B, num_classes)


class GoogLeNet(ZooModel):
    """Stem (7×7/2, 1×1, 3×3), nine inception modules in three stages, global average pooling.

    As torchvision's ``googlenet`` (6,624,904 parameters without the auxiliary
    classifiers; 13,004,888 with them): batch norm after every convolution and
    a 3×3 kernel in the "5×5" branch. ``paper_kernels=True`` restores the
    paper's 5×5 kernels (7,005,832 parameters; torchvision cannot load its
    weights then). The paper's network had no batch norm (published in 2015,
    after GoogLeNet) and had local response normalization in the stem.
    """

    min_input_size = 15

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, aux_logits: bool = False,
                 paper_kernels: bool = False, dropout: float = 0.2) -> None:
        super().__init__()
        self.num_classes, self.in_channels, self.aux_logits = num_classes, in_channels, aux_logits
        pool = partial(nn.MaxPool2d, 3, stride=2, ceil_mode=True)
        inception = partial(Inception, big_kernel=5 if paper_kernels else 3)
        t = TABLE1
        self.conv1 = InceptionConv(in_channels, 64, kernel_size=7, stride=2)   # 224 → 112
        self.maxpool1 = pool()                                                # → 56
        self.conv2 = InceptionConv(64, 64, kernel_size=1)
        self.conv3 = InceptionConv(64, 192, kernel_size=3)
        self.maxpool2 = pool()                                                # → 28
        self.inception3a = inception(192, *_row(t["3a"]))                     # → 256
        self.inception3b = inception(256, *_row(t["3b"]))                     # → 480
        self.maxpool3 = pool()                                                # → 14
        self.inception4a = inception(480, *_row(t["4a"]))                     # → 512
        self.inception4b = inception(512, *_row(t["4b"]))
        self.inception4c = inception(512, *_row(t["4c"]))
        self.inception4d = inception(512, *_row(t["4d"]))                     # → 528
        self.inception4e = inception(528, *_row(t["4e"]))                     # → 832
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)             # → 7
        self.inception5a = inception(832, *_row(t["5a"]))
        self.inception5b = inception(832, *_row(t["5b"]))                     # → 1024
        self.aux1 = InceptionAux(512, num_classes) if aux_logits else None    # after 4a
        self.aux2 = InceptionAux(528, num_classes) if aux_logits else None    # after 4d
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(1024, num_classes)
        for m in ([] if is_meta(self) else self.modules()):  # torchvision's initialisation
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        aux: list[torch.Tensor] = []
        x = self.maxpool1(self.conv1(x))                          # (B, 64, 56, 56)
        x = self.maxpool2(self.conv3(self.conv2(x)))              # (B, 192, 28, 28)
        x = self.maxpool3(self.inception3b(self.inception3a(x)))  # (B, 480, 14, 14)
        x = self.inception4a(x)                                   # (B, 512, 14, 14)
        if self.aux1 is not None:
            aux.append(self.aux1(x))
        x = self.inception4d(self.inception4c(self.inception4b(x)))  # (B, 528, 14, 14)
        if self.aux2 is not None:
            aux.append(self.aux2(x))
        x = self.maxpool4(self.inception4e(x))                    # (B, 832, 7, 7)
        x = self.inception5b(self.inception5a(x))                 # (B, 1024, 7, 7)
        return x, aux

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, 224, 224)
        return self._features(x)[0]                               # (B, 1024, 7, 7)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:      # (B, 1024, h, w)
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))  # (B, num_classes)

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Main logits and the auxiliary classifiers' logits (empty without ``aux_logits``).

        The paper's training loss is ``loss(main) + 0.3 · Σ loss(aux)``; at
        inference time the auxiliary classifiers are discarded, which is why
        ``forward`` returns the main logits only.
        """
        features, aux = self._features(x)
        return self.forward_head(features), aux


def _row(r: InceptionRow) -> tuple[int, ...]:
    return r.ch1x1, r.ch3x3red, r.ch3x3, r.ch5x5red, r.ch5x5, r.pool_proj


def googlenet(num_classes: int = 1000, in_channels: int = 3, aux_logits: bool = False,
              paper_kernels: bool = False) -> GoogLeNet:
    """GoogLeNet as torchvision builds it: 6,624,904 parameters (13,004,888 with ``aux_logits``);
    ``paper_kernels=True``: the paper's 5×5 kernels in the "5×5" branches."""
    return GoogLeNet(num_classes, in_channels, aux_logits=aux_logits, paper_kernels=paper_kernels)
