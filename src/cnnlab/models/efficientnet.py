"""EfficientNet (Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks", ICML 2019).

What it brought: scale depth, width and input resolution *together*, by one
compound coefficient φ (§3.3): depth × α^φ, width × β^φ, resolution × γ^φ,
with α·β²·γ² ≈ 2 so that each step of φ doubles the FLOPs (α = 1.2, β = 1.1,
γ = 1.15 from a grid search on B0). B0 itself came from a neural
architecture search over MBConv blocks (MobileNetV2's inverted bottleneck
with squeeze-excitation and SiLU/"swish").

B1–B7 are *derived* here from B0's table by their (width, depth) multipliers:
channels × width rounded to a multiple of 8, layers per stage × depth rounded
up. The multipliers are those of the reference implementation, which rounded
the φ formula by hand (e.g. B7 = width 2.0, depth 3.1, 600 px, where
α^φ, β^φ, γ^φ with φ = 6 would give 3.0, 1.8, 2.3 × 224 = 518 px).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from cnnlab.layers.conv_norm_act import ConvNormAct
from cnnlab.layers.mbconv import BatchNormTF, MBConv
from cnnlab.layers.squeeze_excite import make_divisible
from cnnlab.fake import is_meta
from cnnlab.models.base import ZooModel


@dataclass(frozen=True)
class StageRow:
    """One row of Table 1 of the paper (stages 2–8 of EfficientNet-B0)."""

    expand_ratio: int   # MBConv1 or MBConv6
    kernel: int
    stride: int         # of the stage's first block
    in_channels: int
    out_channels: int
    layers: int


B0_STAGES: tuple[StageRow, ...] = (
    StageRow(1, 3, 1, 32, 16, 1),     # 112×112
    StageRow(6, 3, 2, 16, 24, 2),     # 112 → 56
    StageRow(6, 5, 2, 24, 40, 2),     # 56 → 28
    StageRow(6, 3, 2, 40, 80, 3),     # 28 → 14
    StageRow(6, 5, 1, 80, 112, 3),    # 14
    StageRow(6, 5, 2, 112, 192, 4),   # 14 → 7
    StageRow(6, 3, 1, 192, 320, 1),   # 7
)


@dataclass(frozen=True)
class Scaling:
    """A variant's compound-scaling coefficients (reference implementation, ``efficientnet_params``)."""

    width: float
    depth: float
    resolution: int
    dropout: float


COMPOUND: dict[str, Scaling] = {
    "b0": Scaling(1.0, 1.0, 224, 0.2),
    "b1": Scaling(1.0, 1.1, 240, 0.2),
    "b2": Scaling(1.1, 1.2, 260, 0.3),
    "b3": Scaling(1.2, 1.4, 300, 0.3),
    "b4": Scaling(1.4, 1.8, 380, 0.4),
    "b5": Scaling(1.6, 2.2, 456, 0.4),
    "b6": Scaling(1.8, 2.6, 528, 0.5),
    "b7": Scaling(2.0, 3.1, 600, 0.5),
}


def scale_stages(scaling: Scaling, stages: tuple[StageRow, ...] = B0_STAGES) -> list[StageRow]:
    """B0's table with channels × width (multiples of 8) and layers × depth (rounded up)."""
    def width(c: int) -> int:
        return make_divisible(c * scaling.width, 8)
    return [StageRow(r.expand_ratio, r.kernel, r.stride, width(r.in_channels), width(r.out_channels),
                     math.ceil(r.layers * scaling.depth)) for r in stages]


class EfficientNet(ZooModel):
    """3×3/2 stem, seven stages of MBConv blocks, 1×1 conv to 4× the last width, pool, dropout, FC.

    Equal to torchvision's ``efficientnet_b0`` … ``b7`` (B0: 5,288,548
    parameters). Batch norm uses the paper's ε = 10⁻³ and momentum 0.01 (TF's
    0.99); torchvision's B0–B4 use PyTorch's defaults, which changes no count.
    Stochastic depth rises linearly from 0 to ``drop_path`` over the blocks.
    """

    min_input_size = 1

    def __init__(self, scaling: Scaling = COMPOUND["b0"], num_classes: int = 1000,
                 in_channels: int = 3, drop_path: float = 0.2) -> None:
        super().__init__()
        self.num_classes, self.in_channels, self.scaling = num_classes, in_channels, scaling
        norm = BatchNormTF
        stages = scale_stages(scaling)
        layers: list[nn.Module] = [ConvNormAct(in_channels, stages[0].in_channels, 3, 2,
                                               norm_layer=norm, act_layer=nn.SiLU)]  # 224 → 112
        total, index = sum(r.layers for r in stages), 0
        for row in stages:
            blocks = []
            for i in range(row.layers):
                blocks.append(MBConv(row.in_channels if i == 0 else row.out_channels, row.out_channels,
                                     row.kernel, row.stride if i == 0 else 1, row.expand_ratio,
                                     drop_prob=drop_path * index / total, norm_layer=norm))
                index += 1
            layers.append(nn.Sequential(*blocks))
        self.num_features = 4 * stages[-1].out_channels
        layers.append(ConvNormAct(stages[-1].out_channels, self.num_features, 1,
                                  norm_layer=norm, act_layer=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(scaling.dropout),
                                        nn.Linear(self.num_features, num_classes))
        for m in ([] if is_meta(self) else self.modules()):  # the reference initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:   # (B, C, 224, 224) for B0
        return self.features(x)                                    # (B, 4·320·w, 7, 7)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:       # (B, F, h, w)
        return self.classifier(torch.flatten(self.avgpool(x), 1))  # (B, num_classes)


def _builder(variant: str):
    def build(num_classes: int = 1000, in_channels: int = 3) -> EfficientNet:
        return EfficientNet(COMPOUND[variant], num_classes, in_channels)
    s = COMPOUND[variant]
    build.__name__ = f"efficientnet_{variant}"
    build.__doc__ = (f"EfficientNet-{variant.upper()}: B0 scaled by width {s.width}, depth {s.depth}; "
                     f"trained at {s.resolution}×{s.resolution}.")
    return build


efficientnet_b0 = _builder("b0")
efficientnet_b1 = _builder("b1")
efficientnet_b2 = _builder("b2")
efficientnet_b3 = _builder("b3")
efficientnet_b4 = _builder("b4")
efficientnet_b5 = _builder("b5")
efficientnet_b6 = _builder("b6")
efficientnet_b7 = _builder("b7")
