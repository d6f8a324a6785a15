"""ResNet (He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", CVPR 2016),
with squeeze-and-excitation as an option (Hu, Shen & Sun, "Squeeze-and-Excitation Networks",
CVPR 2018).

What ResNet brought: skip connections. Each block learns a residual
``F(x)`` and outputs ``F(x) + x``; the identity path lets the gradient reach
early layers unchanged, so networks of 50, 101, 152 layers train (a plain
56-layer net trained worse than a 20-layer one, §4.1). Bottleneck blocks
(1×1 reduce → 3×3 → 1×1 expand ×4) keep the deep variants affordable.

What SENet brought: a squeeze-excitation gate in every block, which
re-weights channels from global context; +10 % parameters, almost no MACs,
and −1.5 % top-5 error on ResNet-50 (Table 2 of the SENet paper).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cnnlab.layers.conv_norm_act import ConvNormAct
from cnnlab.layers.squeeze_excite import SqueezeExcite, make_divisible
from cnnlab.models.base import ZooModel, init_kaiming


def _se(channels: int) -> SqueezeExcite:
    # SENet's reduction ratio r = 16, rounded to a multiple of 8 (timm's seresnet).
    return SqueezeExcite(channels, make_divisible(channels / 16, 8, round_limit=0.0))


class BasicBlock(nn.Module):
    """Two 3×3 convolutions + identity (ResNet-18/34). ``expansion`` = 1."""

    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int = 1, se: bool = False,
                 stride_in_1x1: bool = False) -> None:   # (no 1×1 here: the flag is Bottleneck's)
        super().__init__()
        out = planes * self.expansion
        self.conv1 = ConvNormAct(in_channels, planes, 3, stride)
        self.conv2 = ConvNormAct(planes, out, 3, act_layer=None)   # no ReLU before the sum
        self.se = _se(out) if se else None
        self.downsample = _shortcut(in_channels, out, stride)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:            # (B, C_in, H, W)
        out = self.conv2(self.conv1(x))                            # (B, C_out, H/s, W/s)
        if self.se is not None:
            out = self.se(out)
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.act(out + shortcut)                            # F(x) + x


class Bottleneck(nn.Module):
    """1×1 reduce → 3×3 → 1×1 expand ×4, + identity.

    The stride sits on the 3×3 (torchvision's "ResNet v1.5", the default), or
    with ``stride_in_1x1`` on the first 1×1 as in the paper (v1): the 3×3 then
    runs on the already halved map, so the block costs fewer MACs — 3.86 G
    instead of 4.09 G for ResNet-50 at 224×224, the paper's "3.8 × 10⁹ FLOPs".
    """

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1, se: bool = False,
                 stride_in_1x1: bool = False) -> None:
        super().__init__()
        out = planes * self.expansion
        self.conv1 = ConvNormAct(in_channels, planes, 1, stride if stride_in_1x1 else 1)
        self.conv2 = ConvNormAct(planes, planes, 3, 1 if stride_in_1x1 else stride)
        self.conv3 = ConvNormAct(planes, out, 1, act_layer=None)
        self.se = _se(out) if se else None
        self.downsample = _shortcut(in_channels, out, stride)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:            # (B, C_in, H, W)
        out = self.conv3(self.conv2(self.conv1(x)))                # (B, 4·planes, H/s, W/s)
        if self.se is not None:
            out = self.se(out)
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.act(out + shortcut)


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module | None:
    """Identity when shapes match; else a strided 1×1 projection (option B of §3.3)."""
    if stride == 1 and in_channels == out_channels:
        return None
    return ConvNormAct(in_channels, out_channels, 1, stride, act_layer=None)


@dataclass(frozen=True)
class ResNetConfig:
    """A column of Table 1 of the paper: the block type and how many blocks per stage."""

    block: type[BasicBlock | Bottleneck]
    layers: tuple[int, int, int, int]


TABLE1: dict[int, ResNetConfig] = {
    18: ResNetConfig(BasicBlock, (2, 2, 2, 2)),
    34: ResNetConfig(BasicBlock, (3, 4, 6, 3)),
    50: ResNetConfig(Bottleneck, (3, 4, 6, 3)),
    101: ResNetConfig(Bottleneck, (3, 4, 23, 3)),
    152: ResNetConfig(Bottleneck, (3, 8, 36, 3)),
}


class ResNet(ZooModel):
    """Stem (7×7/2 conv, 3×3/2 max pool), four stages of residual blocks (64→512 planes), global
    average pooling and one dense layer. Each stage after the first halves H and W in its first block.

    ``se=True`` adds a squeeze-excitation gate to every block (SE-ResNet).
    ``zero_init_residual`` starts each block's last batch-norm γ at 0, so each
    block starts as the identity (Goyal et al., 2017).
    ``width`` is the stem's and the first stage's planes (the paper's 64); the stages double it (64→512).
    """

    min_input_size = 1

    def __init__(self, depth: int = 50, num_classes: int = 1000, in_channels: int = 3,
                 se: bool = False, zero_init_residual: bool = False, stride_in_1x1: bool = False,
                 width: int = 64) -> None:
        super().__init__()
        if depth not in TABLE1:
            raise ValueError(f"ResNet depth must be one of {sorted(TABLE1)}, not {depth}")
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"ResNet width must be a whole number of channels ≥ 1, not {width!r}")
        cfg = TABLE1[depth]
        self.num_classes, self.in_channels, self.depth = num_classes, in_channels, depth
        self.stem = nn.Sequential(ConvNormAct(in_channels, width, 7, 2),     # 224 → 112
                                  nn.MaxPool2d(3, stride=2, padding=1))      # → 56
        channels = width
        stages = []
        planes_per_stage = (width, 2 * width, 4 * width, 8 * width)
        self.stage_channels = [p * cfg.block.expansion for p in planes_per_stage]   # each stage's output channels
        for i, (planes, blocks) in enumerate(zip(planes_per_stage, cfg.layers)):
            stride = 1 if i == 0 else 2                                     # 56, 28, 14, 7
            stage = []
            for b in range(blocks):
                stage.append(cfg.block(channels, planes, stride if b == 0 else 1, se=se, stride_in_1x1=stride_in_1x1))
                channels = planes * cfg.block.expansion
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.num_features = channels
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        init_kaiming(self)  # linear layers: normal(0, 0.01)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    last = m.conv3 if isinstance(m, Bottleneck) else m.conv2
                    nn.init.zeros_(last[1].weight)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:   # (B, C, 224, 224)
        x = self.stem(x)                                           # (B, 64, 56, 56)
        x = self.layer2(self.layer1(x))                            # (B, 128·e, 28, 28)
        return self.layer4(self.layer3(x))                         # (B, 512·e, 7, 7)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:       # (B, 512·e, h, w)
        return self.fc(torch.flatten(self.avgpool(x), 1))          # (B, num_classes)


def _builder(depth: int, se: bool = False):
    def build(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
        return ResNet(depth, num_classes, in_channels, se=se)
    build.__name__ = f"{'se' if se else ''}resnet{depth}"
    build.__doc__ = f"{'SE-' if se else ''}ResNet-{depth} (Table 1 of the paper)."
    return build


resnet18 = _builder(18)
resnet34 = _builder(34)
resnet50 = _builder(50)
resnet101 = _builder(101)
resnet152 = _builder(152)
seresnet18 = _builder(18, se=True)
seresnet34 = _builder(34, se=True)
seresnet50 = _builder(50, se=True)
seresnet101 = _builder(101, se=True)
seresnet152 = _builder(152, se=True)


def resnet50_v1(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    """ResNet-50 as the paper's Table 1 has it: the stride in each stage's first 1×1 convolution."""
    return ResNet(50, num_classes, in_channels, stride_in_1x1=True)
