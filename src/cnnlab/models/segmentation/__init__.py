"""Semantic-segmentation networks: per-pixel class scores ``(B, classes, H, W)`` at the input's size.

``fcn`` (FCN-32s, FCN-16s, FCN-8s; Long, Shelhamer & Darrell, 2015) and ``unet``
(U-Net, Ronneberger, Fischer & Brox, 2015, "same"-padded). Both are in the zoo
(``cnnlab zoo list``), so ``analyze``, ``memory`` and ``fit`` work on them.
``maskrcnn`` (Mask R-CNN, He et al. 2017: torchvision's, with a small zoo backbone) is the
instance-segmentation network; its shapes depend on the data, so ``analyze``/``memory`` refuse it
with an explanation.
"""

from cnnlab.models.segmentation.base import SegmentationModel
from cnnlab.models.segmentation.fcn import FCN, fcn8s, fcn16s, fcn32s
from cnnlab.models.segmentation.maskrcnn import maskrcnn
from cnnlab.models.segmentation.unet import UNet, unet

__all__ = ["FCN", "SegmentationModel", "UNet", "fcn8s", "fcn16s", "fcn32s", "maskrcnn", "unet"]
