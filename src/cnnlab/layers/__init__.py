"""Reusable torch blocks shared by specs and the model zoo.

One small file per block: ``conv_norm_act`` (convolution → norm → activation),
``squeeze_excite`` (SENet's channel gate), ``separable`` (depthwise separable
convolution), ``inception`` (GoogLeNet's module), ``mbconv`` (EfficientNet's
block), ``lrn`` (AlexNet's local response normalization), ``same_pad`` (Keras
"same" padding for every stride) and ``activations`` (names → modules).
"""

from cnnlab.layers.conv_norm_act import ConvNormAct
from cnnlab.layers.inception import Inception
from cnnlab.layers.lrn import paper_lrn
from cnnlab.layers.mbconv import MBConv
from cnnlab.layers.separable import SeparableConv2d
from cnnlab.layers.squeeze_excite import SqueezeExcite, make_divisible

__all__ = ["ConvNormAct", "Inception", "MBConv", "SeparableConv2d", "SqueezeExcite",
           "make_divisible", "paper_lrn"]
