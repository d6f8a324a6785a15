"""One rule per Keras layer: its config and weights -> the equivalent PyTorch module.

A rule gets a :class:`Layer` (the layer's config, its variables as Keras
stores them, the PyTorch shapes of its inputs) and returns an ``nn.Module``
whose output, on channels-first tensors, equals the Keras layer's output on
channels-last ones. The rules are in :data:`RULES`, keyed by Keras class name
(a table, as fvcore keeps its per-op counters), so one entry adds a layer.

What each rule handles (the semantics a Keras user relies on):

- kernels: Keras stores ``(kh, kw, in, out)``, PyTorch ``(out, in, kh, kw)``;
  a depthwise kernel ``(kh, kw, C, m)`` becomes ``C·m`` grouped filters in
  Keras's channel order (channel ``c``'s ``m`` filters side by side);
- ``padding="same"``: TensorFlow's rule for every kernel and stride
  (``out = ceil(in / stride)``, the odd pixel at the bottom/right);
- a dense layer after ``Flatten``: Keras flattens ``H, W, C``, PyTorch
  ``C, H, W``; the dense kernel's rows are permuted to match (see graph.py);
- BatchNormalization: Keras's epsilon (1e-3) and momentum (0.99 → PyTorch's
  0.01); its moving mean and variance are buffers;
- activations given as strings (``activation="relu"``) or as layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

import cnnlab.keras.modules as K
from cnnlab.layers.same_pad import SameAvgPool2d, SamePad2d, conv2d_keras

Shape = tuple[int, ...]


class LayerProblem(Exception):
    """A Keras layer cnnlab cannot convert; the caller adds the file and the layer's name."""


@dataclass
class Layer:
    """One Keras layer, as a rule sees it."""

    name: str
    kind: str                      # Keras class name
    config: dict[str, Any]
    weights: list[np.ndarray]
    in_shapes: list[Shape]         # PyTorch per-instance shapes of its tensor inputs
    flatten_from: Shape | None = None   # a Dense fed by Flatten: the (C, H, W) the flattened vector came from
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def in_shape(self) -> Shape:
        return self.in_shapes[0]

    def get(self, key: str, default: Any = None) -> Any:
        return self.config.get(key, default)

    def need_weights(self, count: int, what: str) -> list[np.ndarray]:
        if len(self.weights) != count:
            raise LayerProblem(f"has {len(self.weights)} variables in the weights file, expected {count} ({what}); "
                               "the file's weights do not match its config")
        return self.weights


def tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).to(torch.float32)


def _pair(value: Any, rank: int = 2) -> tuple[int, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(int(v) for v in value)
    return (int(value),) * rank


def _spatial_rank(layer: Layer, rank: int) -> None:
    if len(layer.in_shape) != rank + 1:
        raise LayerProblem(f"takes a {rank}-D feature map, but its input is {list(layer.in_shape)}")
    if layer.get("data_format", "channels_last") not in (None, "channels_last"):
        raise LayerProblem("uses data_format='channels_first'; cnnlab reads channels-last Keras models "
                           "(Keras's default); rebuild it with the default data_format")


# -- activations ---------------------------------------------------------------------------------------------

def _activation_name(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict):      # {"class_name": "function", "config": "relu"} in some Keras versions
        inner = value.get("config")
        if value.get("class_name") in ("function", "builtin") and isinstance(inner, str):
            return inner
        raise LayerProblem(f"has a custom activation ({value.get('class_name')!r}); use a named one such as 'relu'")
    if not isinstance(value, str):
        raise LayerProblem(f"has an activation cnnlab cannot read ({value!r})")
    return value


ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU, "relu6": nn.ReLU6, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh,
    "softmax": lambda: nn.Softmax(dim=1), "elu": nn.ELU, "selu": nn.SELU, "gelu": nn.GELU,
    "silu": nn.SiLU, "swish": nn.SiLU, "mish": nn.Mish, "softplus": nn.Softplus,
    "hard_sigmoid": nn.Hardsigmoid, "hard_silu": nn.Hardswish, "hard_swish": nn.Hardswish,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),          # keras.activations.leaky_relu: negative_slope=0.2
    "log_softmax": lambda: K.Lambda("log_softmax"), "exponential": lambda: K.Lambda("exponential"),
    "softsign": lambda: K.Lambda("softsign"), "tanh_shrink": lambda: K.Lambda("tanh_shrink"),
}


def activation(value: Any) -> nn.Module | None:
    """The module for a Keras activation name (``None`` for ``linear``)."""
    name = _activation_name(value)
    if name in (None, "linear"):
        return None
    make = ACTIVATIONS.get(name)
    if make is None:
        raise LayerProblem(f"uses the activation '{name}', which cnnlab does not know "
                           f"(known: linear, {', '.join(ACTIVATIONS)})")
    return make()


def chain(*modules: nn.Module | None) -> nn.Module:
    """One module, or an ``nn.Sequential`` of several (one Keras layer is one row either way)."""
    mods = [m for m in modules if m is not None]
    if not mods:
        return nn.Identity()
    return mods[0] if len(mods) == 1 else nn.Sequential(*mods)


# -- convolutions ---------------------------------------------------------------------------------------------

def _conv_kernel(kernel: np.ndarray) -> torch.Tensor:
    """Keras ``(kh, kw, in, out)`` (or ``(k, in, out)``) -> PyTorch ``(out, in, kh, kw)``."""
    return tensor(np.moveaxis(kernel, (-1, -2), (0, 1)))


def _depthwise_kernel(kernel: np.ndarray) -> torch.Tensor:
    """Keras ``(kh, kw, C, m)`` -> PyTorch ``(C·m, 1, kh, kw)``: output ``c·m + j`` is channel ``c``'s
    filter ``j``."""
    *spatial, c, m = kernel.shape
    flat = kernel.reshape(*spatial, c * m)
    return tensor(np.moveaxis(flat, -1, 0)[:, None])


def _padding(layer: Layer) -> str:
    padding = str(layer.get("padding", "valid")).lower()
    if padding not in ("same", "valid") and not (padding == "causal" and len(layer.in_shape) == 2):
        raise LayerProblem(f"has padding '{padding}'; cnnlab converts 'same' and 'valid' (and 'causal' in 1-D)")
    return padding


def _conv(layer: Layer, c_in: int, c_out: int, groups: int, bias: bool) -> list[nn.Module]:
    """The padding and convolution modules for a 1-D or 2-D Keras convolution (weights not yet set)."""
    rank = len(layer.in_shape) - 1
    kernel, stride = _pair(layer.get("kernel_size"), rank), _pair(layer.get("strides", 1), rank)
    dilation = _pair(layer.get("dilation_rate", 1), rank)
    padding = _padding(layer)
    if rank == 2:
        return conv2d_keras(c_in, c_out, kernel, stride, padding, dilation, groups, bias)  # type: ignore[arg-type]
    pad = K.SamePad1d(kernel[0], stride[0], dilation[0], causal=padding == "causal") if padding != "valid" else None
    conv = nn.Conv1d(c_in, c_out, kernel[0], stride[0], 0, dilation[0], groups, bias)
    return [m for m in (pad, conv) if m is not None]


def conv(layer: Layer) -> nn.Module:
    """``Conv1D`` / ``Conv2D`` (with ``groups``)."""
    _spatial_rank(layer, 2 if layer.kind == "Conv2D" else 1)
    bias = bool(layer.get("use_bias", True))
    weights = layer.need_weights(1 + bias, "kernel" + (", bias" if bias else ""))
    kernel = weights[0]
    mods = _conv(layer, layer.in_shape[0], int(layer.get("filters")), int(layer.get("groups", 1) or 1), bias)
    c = mods[-1]
    _set(c.weight, _conv_kernel(kernel), layer, "kernel")
    if bias:
        _set(c.bias, tensor(weights[1]), layer, "bias")
    return chain(*mods, activation(layer.get("activation")))


def depthwise(layer: Layer) -> nn.Module:
    """``DepthwiseConv1D`` / ``DepthwiseConv2D``: ``groups = C``, ``depth_multiplier`` filters per channel."""
    _spatial_rank(layer, 2 if layer.kind == "DepthwiseConv2D" else 1)
    bias = bool(layer.get("use_bias", True))
    weights = layer.need_weights(1 + bias, "depthwise kernel" + (", bias" if bias else ""))
    c, m = layer.in_shape[0], int(layer.get("depth_multiplier", 1))
    mods = _conv(layer, c, c * m, c, bias)
    _set(mods[-1].weight, _depthwise_kernel(weights[0]), layer, "depthwise kernel")
    if bias:
        _set(mods[-1].bias, tensor(weights[1]), layer, "bias")
    return chain(*mods, activation(layer.get("activation")))


def separable(layer: Layer) -> nn.Module:
    """``SeparableConv1D/2D``: a depthwise convolution (no bias), then a 1×1 pointwise one (with the bias)."""
    _spatial_rank(layer, 2 if layer.kind == "SeparableConv2D" else 1)
    bias = bool(layer.get("use_bias", True))
    weights = layer.need_weights(2 + bias, "depthwise and pointwise kernels" + (", bias" if bias else ""))
    c, m, f = layer.in_shape[0], int(layer.get("depth_multiplier", 1)), int(layer.get("filters"))
    mods = _conv(layer, c, c * m, c, False)
    _set(mods[-1].weight, _depthwise_kernel(weights[0]), layer, "depthwise kernel")
    point = (nn.Conv2d if len(layer.in_shape) == 3 else nn.Conv1d)(c * m, f, 1, bias=bias)
    _set(point.weight, _conv_kernel(weights[1]), layer, "pointwise kernel")
    if bias:
        _set(point.bias, tensor(weights[2]), layer, "bias")
    return chain(*mods, point, activation(layer.get("activation")))


def dense(layer: Layer) -> nn.Module:
    """``Dense``: ``nn.Linear`` on vectors (rows permuted after a Flatten), a 1×1 convolution on feature maps
    (Keras applies a dense layer to the last axis: per pixel)."""
    bias = bool(layer.get("use_bias", True))
    weights = layer.need_weights(1 + bias, "kernel" + (", bias" if bias else ""))
    kernel, units = weights[0], int(layer.get("units"))
    inputs = layer.in_shape[0] if len(layer.in_shape) == 1 else layer.in_shape[0]
    if kernel.ndim != 2 or kernel.shape[0] != inputs:
        raise LayerProblem(f"its kernel has {kernel.shape[0] if kernel.ndim else 0:,} input rows but its input "
                           f"{list(layer.in_shape)} gives {inputs:,}; the file's weights were made for another input "
                           "shape (give the model's own input, or none)")
    if len(layer.in_shape) == 1:
        if layer.flatten_from is not None and len(layer.flatten_from) > 1:
            c, *spatial = layer.flatten_from      # rows are in (*spatial, c) order in Keras
            kernel = kernel.reshape(*spatial, c, units)
            kernel = np.moveaxis(kernel, -2, 0).reshape(-1, units)
        module: nn.Module = nn.Linear(layer.in_shape[0], units, bias=bias)
        _set(module.weight, tensor(kernel.T), layer, "kernel")
    else:
        conv_cls = nn.Conv2d if len(layer.in_shape) == 3 else nn.Conv1d
        module = conv_cls(layer.in_shape[0], units, 1, bias=bias)
        _set(module.weight, tensor(kernel.T.reshape(units, -1, *([1] * (len(layer.in_shape) - 1)))), layer, "kernel")
    if bias:
        _set(module.bias, tensor(weights[1]), layer, "bias")
    return chain(module, activation(layer.get("activation")))


def _set(param: torch.Tensor, value: torch.Tensor, layer: Layer, what: str) -> None:
    if tuple(param.shape) != tuple(value.shape):
        raise LayerProblem(f"its {what} has shape {list(value.shape)} (as PyTorch stores it) but its input "
                           f"{list(layer.in_shape)} needs {list(param.shape)}; the file's weights were made for "
                           "another input shape (give the model's own input, or none)")
    with torch.no_grad():
        param.copy_(value)


# -- pooling -------------------------------------------------------------------------------------------------

def pool(layer: Layer) -> nn.Module:
    """``MaxPooling1D/2D``, ``AveragePooling1D/2D`` (strides default to the window; "same" as TensorFlow: a max
    never takes the padding, an average counts only real pixels)."""
    rank = 2 if layer.kind.endswith("2D") else 1
    _spatial_rank(layer, rank)
    size = _pair(layer.get("pool_size", 2), rank)
    stride = _pair(layer.get("strides") or size, rank)
    padding = _padding(layer)
    if rank == 1:
        size, stride = (1, *size), (1, *stride)
    if layer.kind.startswith("Max"):
        pooled: nn.Module = chain(SamePad2d(size, stride, value=-math.inf) if padding == "same" else None,
                                  nn.MaxPool2d(size, stride))
    else:
        pooled = SameAvgPool2d(size, stride) if padding == "same" else nn.AvgPool2d(size, stride)
    return pooled if rank == 2 else K.As2d(pooled)


def global_pool(layer: Layer) -> nn.Module:
    kind = "max" if "Max" in layer.kind else "avg"
    if len(layer.in_shape) < 2:
        raise LayerProblem(f"needs a feature map, but its input is a vector {list(layer.in_shape)}")
    return K.GlobalPool(kind, bool(layer.get("keepdims", False)))


# -- normalization -------------------------------------------------------------------------------------------

def _channel_axis(layer: Layer, axis: Any) -> None:
    axes = axis if isinstance(axis, (list, tuple)) else [axis]
    rank = len(layer.in_shape) + 1
    if len(axes) != 1 or int(axes[0]) % rank != rank - 1:
        raise LayerProblem(f"normalizes over axis {axis}; cnnlab converts the channels axis (-1) only")


def batchnorm(layer: Layer) -> nn.Module:
    """``BatchNormalization`` on the channels axis, Keras's epsilon and momentum kept."""
    _channel_axis(layer, layer.get("axis", -1))
    if layer.get("renorm") or layer.get("synchronized"):
        raise LayerProblem("uses renorm or synchronized batch normalization, which cnnlab does not convert")
    center, scale = bool(layer.get("center", True)), bool(layer.get("scale", True))
    weights = layer.need_weights(2 + center + scale, "gamma, beta, moving mean and variance")
    c = layer.in_shape[0]
    bn = K.KerasBatchNorm(c, eps=float(layer.get("epsilon", 1e-3)), momentum=1 - float(layer.get("momentum", 0.99)),
                          affine=center or scale, frozen=not layer.get("trainable", True))
    values = list(weights)
    with torch.no_grad():
        if scale:
            _set(bn.weight, tensor(values.pop(0)), layer, "gamma")
        elif bn.weight is not None:
            bn.register_parameter("weight", None)
        if center:
            _set(bn.bias, tensor(values.pop(0)), layer, "beta")
        elif bn.bias is not None:
            bn.register_parameter("bias", None)
        _set(bn.running_mean, tensor(values[0]), layer, "moving mean")
        _set(bn.running_var, tensor(values[1]), layer, "moving variance")
    return bn


def _per_channel(values: Any, layer: Layer, what: str) -> torch.Tensor:
    array = np.asarray(values, dtype=np.float32)
    if array.size == 1:
        return torch.tensor(float(array.reshape(-1)[0]))
    if array.size != layer.in_shape[0]:
        raise LayerProblem(f"has {array.size} {what} values for {layer.in_shape[0]} channels")
    return tensor(array.reshape(-1, *([1] * (len(layer.in_shape) - 1))))


def normalization(layer: Layer) -> nn.Module:
    """Keras ``Normalization``: a mean and variance per channel (from the config, or adapted and stored)."""
    _channel_axis(layer, layer.get("axis", -1))
    if layer.get("mean") is not None:
        return K.Normalize(_per_channel(layer.get("mean"), layer, "mean"),
                           _per_channel(layer.get("variance"), layer, "variance"), None, bool(layer.get("invert")))
    mean, variance, count = layer.need_weights(3, "mean, variance, count")
    return K.Normalize(_per_channel(mean, layer, "mean"), _per_channel(variance, layer, "variance"),
                       torch.from_numpy(np.asarray(count)).clone(), bool(layer.get("invert")))


def rescaling(layer: Layer) -> nn.Module:
    return K.Rescale(_per_channel(layer.get("scale", 1.0), layer, "scale"),
                     _per_channel(layer.get("offset", 0.0), layer, "offset"))


# -- regularization, shape and merge layers ----------------------------------------------------------------------

def dropout(layer: Layer) -> nn.Module:
    """``Dropout`` (``noise_shape`` (None, 1, 1, 1): whole samples; (None, 1, 1, C): whole channels) and
    ``SpatialDropout1D/2D``."""
    rate = float(layer.get("rate", 0.0))
    spatial = layer.kind.startswith("SpatialDropout")
    noise = layer.get("noise_shape")
    if noise is not None and not spatial:
        ones = [n == 1 for n in noise[1:]]
        if all(ones):
            return K.SampleDropout(rate)
        if all(ones[:-1]) and not ones[-1]:
            spatial = True
        else:
            raise LayerProblem(f"has noise_shape {noise}; cnnlab converts None, (None, 1, 1, 1) and (None, 1, 1, C)")
    if spatial and len(layer.in_shape) > 1:
        return nn.Dropout2d(rate) if len(layer.in_shape) == 3 else nn.Dropout1d(rate)
    return nn.Dropout(rate)             # on a vector, (None, C) is ordinary element dropout


def flatten(layer: Layer) -> nn.Module:
    """Keras flattens in H, W, C order: ``nn.Flatten`` where the next dense layer's rows are permuted to
    match (graph.py decides), Keras's own order otherwise."""
    return nn.Flatten() if layer.extra.get("into_dense") or len(layer.in_shape) == 1 else K.FlattenHWC()


def reshape(layer: Layer) -> nn.Module:
    target = tuple(int(v) for v in layer.get("target_shape"))
    return K.Reshape(target)


def zero_padding(layer: Layer) -> nn.Module:
    rank = 2 if layer.kind.endswith("2D") else 1
    _spatial_rank(layer, rank)
    pads = _pads(layer.get("padding", 1), rank)
    if rank == 1:
        return nn.ConstantPad1d(pads[0], 0.0)
    (top, bottom), (left, right) = pads
    return nn.ZeroPad2d((left, right, top, bottom))


def _pads(value: Any, rank: int) -> tuple[tuple[int, int], ...]:
    if isinstance(value, int):
        return ((value, value),) * rank
    out = []
    for v in value if rank > 1 else [value]:
        out.append((int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1])))
    return tuple(out)


def cropping(layer: Layer) -> nn.Module:
    rank = 2 if layer.kind.endswith("2D") else 1
    _spatial_rank(layer, rank)
    return K.Crop(_pads(layer.get("cropping", 1), rank))


def upsampling(layer: Layer) -> nn.Module:
    _spatial_rank(layer, 2)
    mode = str(layer.get("interpolation", "nearest"))
    if mode not in ("nearest", "bilinear"):
        raise LayerProblem(f"interpolates '{mode}'; cnnlab converts nearest and bilinear")
    size = _pair(layer.get("size", 2))
    return nn.Upsample(scale_factor=tuple(float(s) for s in size), mode=mode,
                       align_corners=False if mode == "bilinear" else None)


def torch_axis(axis: int, rank: int) -> int:
    """A Keras (channels-last) axis of a rank-``rank`` tensor, in PyTorch's channels-first layout."""
    axis %= rank
    if rank <= 2 or axis == 0:
        return axis
    return 1 if axis == rank - 1 else axis + 1


def concatenate(layer: Layer) -> nn.Module:
    return K.Concat(torch_axis(int(layer.get("axis", -1)), len(layer.in_shape) + 1))


MERGES = {"Add": "add", "Subtract": "subtract", "Multiply": "multiply", "Average": "average", "Maximum": "maximum",
          "Minimum": "minimum", "Divide": "divide", "TrueDivide": "divide"}


def merge(layer: Layer) -> nn.Module:
    return K.Merge(MERGES[layer.kind])


def activation_layer(layer: Layer) -> nn.Module:
    """``Activation``, ``ReLU``, ``LeakyReLU``, ``ELU``, ``Softmax``, ``PReLU`` and the activations
    ``keras.ops`` records (``Relu``, ``Sigmoid`` …)."""
    kind = layer.kind
    if kind == "Activation":
        return chain(activation(layer.get("activation")))
    if kind == "ReLU":
        max_value = layer.get("max_value")
        slope, threshold = float(layer.get("negative_slope", 0.0) or 0.0), float(layer.get("threshold", 0.0) or 0.0)
        if slope == 0 and threshold == 0:
            return nn.ReLU() if max_value is None else (nn.ReLU6() if float(max_value) == 6 else
                                                        K.KerasReLU(float(max_value), 0.0, 0.0))
        return K.KerasReLU(None if max_value is None else float(max_value), slope, threshold)
    if kind == "LeakyReLU":
        return nn.LeakyReLU(float(layer.get("negative_slope", layer.get("alpha", 0.3))))
    if kind == "ELU":
        return nn.ELU(float(layer.get("alpha", 1.0)))
    if kind == "Softmax":
        return nn.Softmax(dim=torch_axis(int(layer.get("axis", -1)), len(layer.in_shape) + 1))
    if kind == "PReLU":
        (alpha,) = layer.need_weights(1, "alpha")
        ones = [1] * (len(layer.in_shape) - 1)       # channels first; a shared axis stays of size 1
        return K.PReLU(tensor(np.moveaxis(alpha, -1, 0) if alpha.ndim > 1 else alpha.reshape(-1, *ones)))
    return chain(activation(OP_ACTIVATIONS[kind]))


OP_ACTIVATIONS = {"Relu": "relu", "Relu6": "relu6", "Sigmoid": "sigmoid", "Tanh": "tanh", "Silu": "silu",
                  "Swish": "silu", "Gelu": "gelu", "Elu": "elu", "Selu": "selu", "Softplus": "softplus",
                  "Softsign": "softsign", "HardSigmoid": "hard_sigmoid", "HardSilu": "hard_silu",
                  "LogSoftmax": "log_softmax", "Mish": "mish", "Exp": "exponential"}


def identity(layer: Layer) -> nn.Module:
    return nn.Identity()


RULES: dict[str, Callable[[Layer], nn.Module]] = {
    "Conv1D": conv, "Conv2D": conv,
    "DepthwiseConv1D": depthwise, "DepthwiseConv2D": depthwise,
    "SeparableConv1D": separable, "SeparableConv2D": separable,
    "Dense": dense,
    "MaxPooling1D": pool, "MaxPooling2D": pool, "AveragePooling1D": pool, "AveragePooling2D": pool,
    "GlobalAveragePooling1D": global_pool, "GlobalAveragePooling2D": global_pool,
    "GlobalMaxPooling1D": global_pool, "GlobalMaxPooling2D": global_pool,
    "BatchNormalization": batchnorm, "Normalization": normalization, "Rescaling": rescaling,
    "Dropout": dropout, "SpatialDropout1D": dropout, "SpatialDropout2D": dropout,
    "Flatten": flatten, "Reshape": reshape,
    "ZeroPadding1D": zero_padding, "ZeroPadding2D": zero_padding,
    "Cropping1D": cropping, "Cropping2D": cropping, "UpSampling2D": upsampling,
    "Concatenate": concatenate, **{kind: merge for kind in MERGES},
    "Activation": activation_layer, "ReLU": activation_layer, "LeakyReLU": activation_layer, "ELU": activation_layer,
    "Softmax": activation_layer, "PReLU": activation_layer, **{kind: activation_layer for kind in OP_ACTIVATIONS},
    "ActivityRegularization": identity,
}

# Layers that change nothing a Flatten's order depends on: a Flatten followed by these, then Dense, keeps nn.Flatten.
ELEMENTWISE = {"Dropout", "Activation", "ActivityRegularization", "ReLU", "LeakyReLU", "ELU", "PReLU",
               *OP_ACTIVATIONS} - {"PReLU"}

# Operations keras.ops records in a functional model (module keras.src.ops.*), by class name.
OPS = {"Add", "Subtract", "Multiply", "Divide", "TrueDivide", "Maximum", "Minimum", "Concatenate",
       *OP_ACTIVATIONS}


def convert_layer(layer: Layer) -> nn.Module:
    """The PyTorch module for one Keras layer (raises :class:`LayerProblem` for what cannot be converted)."""
    rule = RULES.get(layer.kind)
    if rule is None:
        raise LayerProblem(f"is a {layer.kind} layer, which cnnlab does not convert (see docs/keras.md for the "
                           "layers it does); write it with those layers")
    module = rule(layer)
    if not layer.get("trainable", True):
        for p in module.parameters():
            p.requires_grad_(False)
    return module
