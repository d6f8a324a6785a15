"""FCN-32s, FCN-16s and FCN-8s: fully convolutional networks (Long, Shelhamer & Darrell, CVPR 2015).

A classifier whose dense layers are convolutions (``fc6`` a 7×7 convolution,
``fc7`` a 1×1) scores every 32×32 block of the image; upsampling those scores
32× gives FCN-32s, whose masks are blobs — every stride-2 step of the
backbone halved the resolution. The skips fuse finer score maps back in
(§4.2 of the paper): FCN-16s adds scores from ``pool4`` (stride 16) to the
2× upsampled top scores, FCN-8s also adds scores from ``pool3`` (stride 8).

Backbone ``vgg`` is VGG-16's convolutional part (blocks of 2, 2, 3, 3, 3 3×3
convolutions, five 2×2 max pools) at ``width`` channels in the first block
(64 in the paper); batch normalisation after each convolution (``norm``) lets
it train from scratch, which the paper's ImageNet start did not need. With
``width=64, norm=False`` and 21 classes the network has the paper's 134 M
parameters (Table 1). Backbone ``resnet18`` (or any ResNet of the zoo) takes
its stages' outputs at strides 8, 16 and 32 instead and scores them with 1×1
convolutions (no ``fc6``/``fc7``).

``fc_kernel`` (7 in the paper, for VGG's 7×7 ``pool5`` map at 224×224) is the
side of ``fc6``. On a smaller ``pool5`` map most of a 7×7 kernel only ever
covers padding: those weights get no gradient, and with bfloat16 oneDNN
kernels on CPU some of them were seen turning NaN. ``cnnlab segment train``
therefore sizes it to the map (3 for 64×64 inputs: a 2×2 map).

Upsampling is a transposed convolution whose kernel starts as bilinear
interpolation (the paper's ``upsample_filt``): the 2× steps between skips are
learned from there, the final 8×/16×/32× step stays fixed bilinear (§3.3, §4.2;
here ``F.interpolate``, see :class:`BilinearUp`).
Score layers on the skips start at zero (§4.2), so a fresh FCN-8s predicts
what a fresh FCN-32s does. "Same" padding replaces the paper's 100-pixel pad
and crops: the output is exactly the input's size; other sizes are padded to
the next multiple of 32 and the scores cropped back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.layers.conv_norm_act import ConvNormAct
from cnnlab.models.base import init_kaiming
from cnnlab.models.segmentation.base import SegmentationModel

VGG16_BLOCKS = (2, 2, 3, 3, 3)    # 3×3 convolutions per block (Simonyan & Zisserman, Table 1, column D)


def bilinear_kernel(channels: int, factor: int) -> torch.Tensor:
    """(channels, 1, 2f, 2f) weights that make ``conv_transpose2d(groups=channels, stride=f, padding=f//2)``
    bilinear upsampling by ``f`` (the FCN paper's ``upsample_filt``)."""
    size = 2 * factor
    centre = factor - 0.5
    og = torch.arange(size, dtype=torch.float64)
    filt = 1 - (og - centre).abs() / factor
    return (filt[:, None] * filt[None, :]).float().expand(channels, 1, size, size).clone()


class BilinearUp(nn.Module):
    """Fixed bilinear upsampling by ``factor`` (no parameters).

    The paper's fixed deconvolution with :func:`bilinear_kernel` weights is
    exactly this interpolation away from the border (a test checks it); at the
    border the deconvolution fades to its zero padding where interpolation
    repeats the edge, and as a 64×64 grouped transposed convolution it ran 3×
    slower than the whole rest of FCN-32s on CPU. torchvision's FCN
    upsamples with ``F.interpolate`` too.
    """

    def __init__(self, channels: int, factor: int) -> None:
        super().__init__()
        self.channels, self.factor = channels, factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:              # (B, K, h, w)
        return F.interpolate(x, scale_factor=self.factor, mode="bilinear", align_corners=False)  # (B, K, f·h, f·w)


def learned_up(channels: int, factor: int = 2) -> nn.ConvTranspose2d:
    """A transposed convolution initialised to bilinear upsampling (class i → class i), then learned."""
    up = nn.ConvTranspose2d(channels, channels, 2 * factor, stride=factor, padding=factor // 2, bias=False)
    if up.weight.is_meta:
        return up
    with torch.no_grad():
        up.weight.zero_()
        k = bilinear_kernel(1, factor)[0, 0]
        for c in range(channels):
            up.weight[c, c] = k
    return up


class VGGBackbone(nn.Module):
    """VGG-16's convolutional blocks; returns the pool3, pool4 and pool5 maps (strides 8, 16, 32)."""

    def __init__(self, in_channels: int, width: int, norm: bool) -> None:
        super().__init__()
        norm_layer = nn.BatchNorm2d if norm else None
        blocks, c = [], in_channels
        for i, n in enumerate(VGG16_BLOCKS):
            out = width * (1, 2, 4, 8, 8)[i]
            layers: list[nn.Module] = []
            for _ in range(n):
                layers.append(ConvNormAct(c, out, 3, norm_layer=norm_layer))
                c = out
            layers.append(nn.MaxPool2d(2))
            blocks.append(nn.Sequential(*layers))
        self.blocks = nn.ModuleList(blocks)
        self.channels = (width * 4, width * 8, width * 8)            # pool3, pool4, pool5

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.blocks[1](self.blocks[0](x))                       # (B, 2w, H/4, W/4)
        pool3 = self.blocks[2](x)                                   # (B, 4w, H/8, W/8)
        pool4 = self.blocks[3](pool3)                               # (B, 8w, H/16, W/16)
        return pool3, pool4, self.blocks[4](pool4)                  # (B, 8w, H/32, W/32)


class ResNetBackbone(nn.Module):
    """A zoo ResNet's stem and stages; returns layer2, layer3 and layer4 (strides 8, 16, 32)."""

    def __init__(self, name: str, in_channels: int) -> None:
        super().__init__()
        import cnnlab.models.resnet as resnet      # the ResNet builders by name (not the registry: no cycle)

        build = getattr(resnet, name.lower().replace("-", ""), None) if name.lower().startswith(("resnet", "seresnet")) \
            else None
        if build is None:
            raise ValueError(f"backbone '{name}' is not a ResNet; use vgg or a zoo ResNet (resnet18, seresnet34, …)")
        net = build(num_classes=1, in_channels=in_channels)
        self.stem, self.layer1, self.layer2 = net.stem, net.layer1, net.layer2
        self.layer3, self.layer4 = net.layer3, net.layer4
        e = net.num_features // 512
        self.channels = (128 * e, 256 * e, 512 * e)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c3 = self.layer2(self.layer1(self.stem(x)))                 # (B, 128·e, H/8, W/8)
        c4 = self.layer3(c3)                                        # (B, 256·e, H/16, W/16)
        return c3, c4, self.layer4(c4)                              # (B, 512·e, H/32, W/32)


class FCN(SegmentationModel):
    """FCN-``stride``s: ``stride`` 32, 16 or 8 is the finest score map fused before the last upsampling."""

    size_multiple = 32

    def __init__(self, stride: int = 8, num_classes: int = 21, in_channels: int = 3, width: int = 64,
                 norm: bool = True, backbone: str = "vgg", fc_kernel: int = 7) -> None:
        super().__init__()
        if stride not in (8, 16, 32):
            raise ValueError(f"FCN stride must be 8, 16 or 32, not {stride}")
        if fc_kernel < 1 or fc_kernel % 2 == 0:
            raise ValueError(f"FCN fc_kernel must be an odd number ≥ 1, not {fc_kernel}")
        self.stride, self.num_classes, self.in_channels = stride, num_classes, in_channels
        if backbone == "vgg":
            self.backbone: nn.Module = VGGBackbone(in_channels, width, norm)
            fc = 64 * width                                         # 4096 at the paper's width 64
            norm_layer = nn.BatchNorm2d if norm else None
            self.classifier: nn.Module = nn.Sequential(
                ConvNormAct(width * 8, fc, fc_kernel, norm_layer=norm_layer),   # fc6 as a 7×7 convolution
                ConvNormAct(fc, fc, 1, norm_layer=norm_layer))          # fc7 as a 1×1 convolution
            top = fc
        else:
            self.backbone = ResNetBackbone(backbone, in_channels)
            self.classifier = nn.Identity()
            top = self.backbone.channels[2]
        c3, c4, _ = self.backbone.channels
        self.score_fr = nn.Conv2d(top, num_classes, 1)
        if stride <= 16:
            self.score_pool4 = nn.Conv2d(c4, num_classes, 1)
            self.up2_top = learned_up(num_classes)
        if stride == 8:
            self.score_pool3 = nn.Conv2d(c3, num_classes, 1)
            self.up2_fuse4 = learned_up(num_classes)
        self.up_final = BilinearUp(num_classes, stride)
        init_kaiming(self)
        if not self.score_fr.weight.is_meta:
            for name in ("score_pool4", "score_pool3"):            # §4.2: skips start at zero
                if hasattr(self, name):
                    nn.init.zeros_(getattr(self, name).weight)
                    nn.init.zeros_(getattr(self, name).bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:             # (B, C, H, W)
        x, size = self.pad_input(x)                                 # to a multiple of 32
        pool3, pool4, pool5 = self.backbone(x)
        score = self.score_fr(self.classifier(pool5))               # (B, K, H/32, W/32)
        if self.stride <= 16:
            score = self.up2_top(score) + self.score_pool4(pool4)   # (B, K, H/16, W/16)
        if self.stride == 8:
            score = self.up2_fuse4(score) + self.score_pool3(pool3)  # (B, K, H/8, W/8)
        return self.crop_output(self.up_final(score), size)          # (B, K, H, W)


def fcn32s(num_classes: int = 21, in_channels: int = 3, width: int = 64, norm: bool = True,
          backbone: str = "vgg", fc_kernel: int = 7) -> FCN:
    """FCN-32s: top scores upsampled 32× in one step."""
    return FCN(32, num_classes, in_channels, width, norm, backbone, fc_kernel)


def fcn16s(num_classes: int = 21, in_channels: int = 3, width: int = 64, norm: bool = True,
          backbone: str = "vgg", fc_kernel: int = 7) -> FCN:
    """FCN-16s: + the pool4 skip."""
    return FCN(16, num_classes, in_channels, width, norm, backbone, fc_kernel)


def fcn8s(num_classes: int = 21, in_channels: int = 3, width: int = 64, norm: bool = True,
          backbone: str = "vgg", fc_kernel: int = 7) -> FCN:
    """FCN-8s: + the pool4 and pool3 skips."""
    return FCN(8, num_classes, in_channels, width, norm, backbone, fc_kernel)
