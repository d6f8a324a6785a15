"""Reusable torch blocks shared by specs and the model zoo.

One small file per block: ``conv_norm_act`` (convolution → norm → activation),
``squeeze_excite`` (SENet's channel gate), ``separable`` (depthwise separable
convolution), ``inception`` (GoogLeNet's module), ``mbconv`` (EfficientNet's
block), ``drop_path`` (stochastic depth), ``lrn`` (AlexNet's local response normalization), ``same_pad`` (Keras
"same" padding for every stride) and ``activations`` (names → modules).
"""

from __future__ import annotations

import importlib
from typing import Any

# Imported on first use: ``cnnlab.spec`` needs only ``activations`` and
# ``same_pad``; the model zoo needs the rest.
_HOME = {
    "ConvNormAct": "conv_norm_act", "DropPath": "drop_path", "Inception": "inception", "MBConv": "mbconv",
    "SeparableConv2d": "separable", "SqueezeExcite": "squeeze_excite",
    "make_divisible": "squeeze_excite", "paper_lrn": "lrn",
}

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"cnnlab.layers.{_HOME[name]}"), name)
    raise AttributeError(f"module 'cnnlab.layers' has no attribute {name!r}")
