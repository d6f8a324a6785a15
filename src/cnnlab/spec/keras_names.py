"""The book's words in a spec: Keras's layer and argument names as spellings of cnnlab's own.

A learner writes the network the way the chapter does (``Conv2D``,
``kernel_size``, ``strides``, ``pool_size``, ``MaxPool2D``); the spec reader
translates here, in one table, before validating. Where Keras means something
else by the same word the value is translated too: a ``BatchNormalization``
layer's ``momentum`` is Keras's (0.99 keeps 99 % of the running average, which
is PyTorch's momentum 0.01), and ``activation: linear`` is ``none``.
Initializers and regularizers change no number cnnlab computes from a spec
(shapes, parameters, MACs, memory); they are accepted and left out.
"""

from __future__ import annotations

from typing import Any

# Keras class names (and their aliases), lower-cased without underscores -> cnnlab's layer type
LAYERS = {
    "conv2d": "conv", "convolution2d": "conv",
    "depthwiseconv2d": "depthwise_conv", "separableconv2d": "separable_conv",
    "maxpool2d": "maxpool", "maxpooling2d": "maxpool",
    "avgpool2d": "avgpool", "averagepooling2d": "avgpool",
    "globalavgpool2d": "global_avgpool", "globalaveragepooling2d": "global_avgpool",
    "globalmaxpool2d": "global_maxpool", "globalmaxpooling2d": "global_maxpool",
    "flatten": "flatten", "dense": "dense", "dropout": "dropout",
    "batchnormalization": "batchnorm", "activation": "activation",
}

# Keras argument names -> cnnlab field names (per layer type where they differ by type)
FIELDS = {"kernel_size": "kernel", "strides": "stride", "dilation_rate": "dilation", "use_bias": "bias",
          "pool_size": "size", "epsilon": "eps"}
FIELDS_BY_TYPE = {"activation": {"activation": "function"}}

# accepted and left out: they change no shape, parameter count, MAC count or memory figure
IGNORED = {"kernel_initializer", "bias_initializer", "depthwise_initializer", "pointwise_initializer",
           "kernel_regularizer", "bias_regularizer", "activity_regularizer", "depthwise_regularizer",
           "pointwise_regularizer", "kernel_constraint", "bias_constraint", "beta_initializer",
           "gamma_initializer", "moving_mean_initializer", "moving_variance_initializer", "trainable", "dtype",
           "data_format", "seed"}

# Keras-only ways to give the input: on the first layer (Keras 2: Conv2D(..., input_shape=[28, 28, 1]))
INPUT_FIELDS = ("input_shape", "batch_input_shape")


def keras_type(kind: str) -> str | None:
    """cnnlab's layer type for a Keras class name (``Conv2D``, ``MaxPool2D``), or ``None``."""
    return LAYERS.get(kind.replace("_", "").lower())


# a layer spelled the Keras way gets Keras's defaults where they differ from cnnlab's (PyTorch's)
KERAS_DEFAULTS = {"batchnorm": {"eps": 1e-3, "momentum": 0.01}}


def translate(kind: str, body: dict[str, Any], keras_spelled: bool) -> dict[str, Any]:
    """``body`` with Keras argument names (and meanings) turned into cnnlab's, for a layer of type ``kind``.
    Raises ``ValueError`` when two names given mean one field (``kernel`` and ``kernel_size``)."""
    out: dict[str, Any] = dict(KERAS_DEFAULTS.get(kind, {})) if keras_spelled else {}
    given: dict[str, str] = {}
    names = {**FIELDS, **FIELDS_BY_TYPE.get(kind, {})}
    for key, value in body.items():
        key = str(key)
        if key in IGNORED or key in INPUT_FIELDS:
            continue
        field = names.get(key, key)
        if field in given:
            raise ValueError(f"'{given[field]}' and '{key}' both give the field '{field}'; keep one")
        given[field] = key
        if field in ("activation", "function") and value == "linear":
            value = "none"
        if kind == "batchnorm" and field == "momentum" and keras_spelled and isinstance(value, (int, float)):
            value = round(1 - float(value), 12)       # Keras keeps `momentum` of the old average
        if field == "padding" and isinstance(value, str):
            value = value.lower()
        out[field] = value
    return out


def channels_last(shape: Any) -> Any:
    """A Keras per-instance shape ``[H, W, C]`` as cnnlab's ``[C, H, W]`` (vectors unchanged)."""
    if isinstance(shape, (list, tuple)) and len(shape) == 3:
        return [shape[2], shape[0], shape[1]]
    return shape
