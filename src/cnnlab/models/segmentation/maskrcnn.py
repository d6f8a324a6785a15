"""Mask R-CNN (He, Gkioxari, Dollár & Girshick, ICCV 2017) sized for small images trained from scratch.

torchvision's :class:`~torchvision.models.detection.MaskRCNN` does the
detection work (region proposals, RoIAlign, box and mask heads, losses); this
file only chooses its parts for images of tens to a few hundred pixels and
2 CPU cores, where torchvision's defaults are all wrong:

- the **backbone** is a zoo ResNet (``resnet18`` by default) + a feature pyramid
  (FPN, Lin et al. 2017) over its four stages, built with fresh weights and
  trainable batch norm (torchvision's default downloads ImageNet weights and
  freezes batch norm: neither works offline, from scratch);
- **no resizing**: ``min_size``/``max_size`` default to the data's own size
  (torchvision scales every image to 800–1333 px, 200× the pixels of a 64×64 scene);
- **anchors** of 8, 16, 32, 64 and 128 px, one size per pyramid level (P2…P6),
  three aspect ratios each (torchvision: 32…512 px, for 800-px images);
- **lighter heads**: ``fpn_channels`` (128, not 256) pyramid channels, a
  256-unit box head (not 1024), a mask head of 4 convolutions of
  ``fpn_channels``, and fewer sampled proposals and regions per image
  (scenes hold a handful of objects, not COCO's dozens);
- **RoIAlign as two matrix products** (:mod:`cnnlab.models.segmentation.roialign`): torchvision's
  arithmetic, but its CPU backward (one thread, sample by sample) took ~30 % of a training step.

Inputs are lists of ``(C, H, W)`` float images already standardised by the
task (the model's own normalisation is the identity). In training mode the
model takes the targets and returns its five losses; in eval mode it returns,
per image, ``boxes`` (x1, y1, x2, y2 in pixels), ``labels``, ``scores`` and
``masks`` (K, 1, H, W) probabilities.
"""

from __future__ import annotations

from typing import Any

from torch import nn

ANCHOR_SIZES = (8, 16, 32, 64, 128)     # one per pyramid level P2, P3, P4, P5, P6 (pool)
ASPECT_RATIOS = (0.5, 1.0, 2.0)
BOX_HEAD = 256                          # units of the two dense layers of the box head (torchvision: 1024)
BACKBONES = ("resnet18", "resnet34", "resnet50")
MASK_CHANNELS = 64                      # channels of the mask head's four convolutions (torchvision: 256)
ROI_SAMPLING = 2                        # RoIAlign sampling points per bin side (torchvision's default)


def maskrcnn(num_classes: int = 91, in_channels: int = 3, backbone: str = "resnet18", image_size: int = 64,
             fpn_channels: int = 128, mask_channels: int = MASK_CHANNELS, detections: int = 50, anchor_sizes: tuple[int, ...] = ANCHOR_SIZES,
             roi_sampling: int = ROI_SAMPLING, width: int = 64, mask_layers: int = 4, **overrides: Any) -> nn.Module:
    """Mask R-CNN for ``num_classes`` classes (background included, index 0) on ``image_size``-px images.

    ``roi_sampling``: RoIAlign's sampling points per bin side (torchvision's default 2, i.e. 2×2 = 4 points, the
    paper's; He et al. 2017 §3 found the results not sensitive to the number of points sampled).

    ``width``: the ResNet's first-stage planes (the paper's 64; its stages double it). ``mask_layers``: the mask
    head's 3×3 convolutions before its 2× up-convolution (the paper's 4).

    ``overrides`` go to torchvision's ``MaskRCNN`` as they are (e.g. ``rpn_pre_nms_top_n_train``).
    """
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

    from cnnlab.models.resnet import ResNet
    from cnnlab.models.segmentation.roialign import SeparableMultiScaleRoIAlign

    if backbone not in BACKBONES:
        raise ValueError(f"backbone must be one of {', '.join(BACKBONES)}, not '{backbone}'")
    if num_classes < 2:
        raise ValueError(f"num_classes counts the background too: at least 2, not {num_classes}")
    if isinstance(mask_layers, bool) or not isinstance(mask_layers, int) or mask_layers < 1:
        raise ValueError(f"mask_layers must be a whole number of convolutions of at least 1, not {mask_layers!r}")
    if len(anchor_sizes) != 5:
        raise ValueError(f"anchor_sizes needs one size per pyramid level P2..P6 (5), not {len(anchor_sizes)}")
    body = ResNet(int(backbone[6:]), num_classes=1, in_channels=in_channels, width=width)  # the zoo's, fresh weights
    trunk = BackboneWithFPN(body, {"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"}, body.stage_channels,
                            fpn_channels, extra_blocks=LastLevelMaxPool())
    anchors = AnchorGenerator(tuple((s,) for s in anchor_sizes), (ASPECT_RATIOS,) * len(anchor_sizes))
    if isinstance(roi_sampling, bool) or not isinstance(roi_sampling, int) or roi_sampling < 1:
        raise ValueError(f"roi_sampling must be a whole number of points of at least 1, not {roi_sampling!r}")
    levels = ["0", "1", "2", "3"]
    settings: dict[str, Any] = dict(
        min_size=image_size, max_size=image_size, image_mean=[0.0] * in_channels, image_std=[1.0] * in_channels,
        rpn_anchor_generator=anchors, rpn_pre_nms_top_n_train=600, rpn_post_nms_top_n_train=300,
        rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_test=100, rpn_batch_size_per_image=128,
        box_batch_size_per_image=32, box_detections_per_img=detections,
        box_head=TwoMLPHead(fpn_channels * 7 * 7, BOX_HEAD), box_predictor=FastRCNNPredictor(BOX_HEAD, num_classes),
        box_roi_pool=SeparableMultiScaleRoIAlign(levels, 7, roi_sampling),
        mask_roi_pool=SeparableMultiScaleRoIAlign(levels, 14, roi_sampling),
        mask_head=MaskRCNNHeads(fpn_channels, [mask_channels] * mask_layers, 1),
        mask_predictor=MaskRCNNPredictor(mask_channels, mask_channels, num_classes))
    settings.update(overrides)
    model = MaskRCNN(trunk, num_classes=None, **settings)
    model.num_classes, model.in_channels, model.image_size = num_classes, in_channels, image_size
    return model
