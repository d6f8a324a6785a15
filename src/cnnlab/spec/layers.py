"""The layer types of a sequential network spec.

Each layer type is a frozen dataclass: its fields are the spec's fields (with
their defaults and parsers), and its methods give, for a given input shape,
the output shape, the parameter count with its textbook formula, the textbook
MAC count, and the ``torch.nn`` module that implements it.

Shapes are per instance: ``(C, H, W)`` for feature maps, ``(N,)`` for vectors.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from torch import nn

from cnnlab.layers.activations import activation_name, make_activation
from cnnlab.layers.same_pad import SameAvgPool2d, SamePad2d, conv2d_keras, same_out, valid_out
import cnnlab.spec.fields as F
from cnnlab.spec.fields import Pair, Padding
from cnnlab.vocab import LRN_TORCH_DEFAULTS

Shape = tuple[int, ...]


class LayerProblem(Exception):
    """A layer cannot take its input; ``field`` names the culprit, if one does."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _f(parse: F.Parser, default: Any = dataclass, doc: str = "") -> Any:
    """A spec field: its parser, and its default (none given = required)."""
    meta = {"parse": parse, "doc": doc}
    if default is dataclass:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


def n(x: int) -> str:
    """Thousands separators, as the textbooks print counts."""
    return f"{x:,}"


def _need_image(in_shape: Shape, what: str) -> tuple[int, int, int]:
    if len(in_shape) != 3:
        raise LayerProblem(
            f"{what} needs a feature map [C, H, W] as input, but gets a vector {list(in_shape)}; "
            "move it before 'flatten'/'global_*pool', or give the spec an image input"
        )
    return in_shape  # type: ignore[return-value]


def _spatial_out(size: int, kernel: int, stride: int, dilation: int, padding: Padding,
                 axis: str, kernel_field: str) -> int:
    """One spatial output length; raises when the kernel does not fit."""
    if padding == "same":
        return same_out(size, stride)
    pad = 0 if padding == "valid" else (padding[0] if axis == "height" else padding[1])
    out = valid_out(size + 2 * pad, kernel, stride, dilation)
    if out <= 0:
        k_eff = dilation * (kernel - 1) + 1
        what = f"{kernel} (effective {k_eff} with dilation {dilation})" if dilation > 1 else f"{kernel}"
        raise LayerProblem(
            f"kernel {what} is larger than the input {axis} {size}"
            + (f" padded to {size + 2 * pad}" if pad else "")
            + "; use padding: same, a smaller kernel, or a larger input",
            kernel_field,
        )
    return out


def _out_hw(h: int, w: int, kernel: Pair, stride: Pair, dilation: Pair, padding: Padding,
            kernel_field: str = "kernel") -> tuple[int, int]:
    return (
        _spatial_out(h, kernel[0], stride[0], dilation[0], padding, "height", kernel_field),
        _spatial_out(w, kernel[1], stride[1], dilation[1], padding, "width", kernel_field),
    )


def _seq(*modules: nn.Module | None) -> nn.Module:
    mods = [m for m in modules if m is not None]
    return mods[0] if len(mods) == 1 else nn.Sequential(*mods)


def _pad_text(padding: Padding) -> str:
    return padding if isinstance(padding, str) else f"{list(padding)}"


@dataclass(frozen=True, kw_only=True)
class LayerSpec(ABC):
    """Common interface of every layer type."""

    TYPE: ClassVar[str] = ""
    # The field a bare scalar fills, e.g. ``activation: relu`` or ``dropout: 0.5``.
    SHORTHAND: ClassVar[str | None] = None

    name: str | None = _f(F.name, None, "optional display name")

    # -- shape and size -------------------------------------------------
    def output_shape(self, in_shape: Shape) -> Shape:
        return in_shape

    def params(self, in_shape: Shape) -> int:
        return 0

    def params_formula(self, in_shape: Shape) -> str:
        return "0"

    def macs(self, in_shape: Shape) -> int:
        """Textbook multiply-accumulates per instance (convolutions and dense only)."""
        return 0

    def macs_formula(self, in_shape: Shape) -> str:
        return "0"

    @abstractmethod
    def build(self, in_shape: Shape) -> nn.Module:
        """The ``torch.nn`` module for this layer, given its input shape."""

    # -- spec round trip -------------------------------------------------
    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def describe(self) -> str:
        """Non-default fields, for tables: ``3×3/2 same relu``."""
        return ""


@dataclass(frozen=True, kw_only=True)
class Conv(LayerSpec):
    TYPE: ClassVar[str] = "conv"
    filters: int = _f(F.positive_int, doc="number of output feature maps")
    kernel: Pair = _f(F.positive_pair, doc="kernel size k or [kh, kw]")
    stride: Pair = _f(F.positive_pair, (1, 1))
    padding: Padding = _f(F.padding, "valid", "same | valid | p | [ph, pw]")
    dilation: Pair = _f(F.positive_pair, (1, 1))
    groups: int = _f(F.positive_int, 1)
    bias: bool = _f(F.boolean, True)
    activation: str = _f(activation_name, "none")

    def _check_groups(self, c: int) -> None:
        if c % self.groups:
            raise LayerProblem(f"groups={self.groups} does not divide the {c} input channels; "
                               f"use a divisor of {c}", "groups")
        if self.filters % self.groups:
            raise LayerProblem(f"groups={self.groups} does not divide filters={self.filters}; "
                               f"use a multiple of {self.groups} filters", "groups")

    def output_shape(self, in_shape: Shape) -> Shape:
        c, h, w = _need_image(in_shape, "conv")
        self._check_groups(c)
        return (self.filters, *_out_hw(h, w, self.kernel, self.stride, self.dilation, self.padding))

    def params(self, in_shape: Shape) -> int:
        kh, kw = self.kernel
        return (kh * kw * in_shape[0] // self.groups + self.bias) * self.filters

    def params_formula(self, in_shape: Shape) -> str:
        kh, kw = self.kernel
        cin = f"{in_shape[0]}" if self.groups == 1 else f"({in_shape[0]}/{self.groups})"
        inner = f"{kh}×{kw}×{cin}"
        body = f"({inner} + 1)" if self.bias else inner
        return f"{body} × {self.filters} = {n(self.params(in_shape))}"

    def macs(self, in_shape: Shape) -> int:
        _, ho, wo = self.output_shape(in_shape)
        return ho * wo * self.filters * self.kernel[0] * self.kernel[1] * in_shape[0] // self.groups

    def macs_formula(self, in_shape: Shape) -> str:
        _, ho, wo = self.output_shape(in_shape)
        cin = in_shape[0] // self.groups
        return (f"{ho}×{wo}×{self.filters} outputs × {self.kernel[0]}×{self.kernel[1]}×{cin} "
                f"= {n(self.macs(in_shape))}")

    def build(self, in_shape: Shape) -> nn.Module:
        conv = conv2d_keras(in_shape[0], self.filters, self.kernel, self.stride, self.padding,
                       self.dilation, self.groups, self.bias)
        return _seq(*conv, make_activation(self.activation))

    def describe(self) -> str:
        k = f"{self.kernel[0]}×{self.kernel[1]}"
        return f"{self.filters} × {k}/{self.stride[0]} {_pad_text(self.padding)}" + (
            f" {self.activation}" if self.activation != "none" else "")


@dataclass(frozen=True, kw_only=True)
class DepthwiseConv(LayerSpec):
    TYPE: ClassVar[str] = "depthwise_conv"
    kernel: Pair = _f(F.positive_pair)
    stride: Pair = _f(F.positive_pair, (1, 1))
    padding: Padding = _f(F.padding, "valid")
    dilation: Pair = _f(F.positive_pair, (1, 1))
    depth_multiplier: int = _f(F.positive_int, 1)
    bias: bool = _f(F.boolean, True)
    activation: str = _f(activation_name, "none")

    def output_shape(self, in_shape: Shape) -> Shape:
        c, h, w = _need_image(in_shape, "depthwise_conv")
        return (c * self.depth_multiplier,
                *_out_hw(h, w, self.kernel, self.stride, self.dilation, self.padding))

    def params(self, in_shape: Shape) -> int:
        c_out = in_shape[0] * self.depth_multiplier
        return (self.kernel[0] * self.kernel[1] + self.bias) * c_out

    def params_formula(self, in_shape: Shape) -> str:
        kh, kw = self.kernel
        c_out = f"{in_shape[0]}×{self.depth_multiplier}" if self.depth_multiplier > 1 else f"{in_shape[0]}"
        body = f"({kh}×{kw} + 1)" if self.bias else f"{kh}×{kw}"
        return f"{body} × {c_out} = {n(self.params(in_shape))}"

    def macs(self, in_shape: Shape) -> int:
        c, ho, wo = self.output_shape(in_shape)
        return c * ho * wo * self.kernel[0] * self.kernel[1]

    def macs_formula(self, in_shape: Shape) -> str:
        c, ho, wo = self.output_shape(in_shape)
        return f"{ho}×{wo}×{c} outputs × {self.kernel[0]}×{self.kernel[1]} = {n(self.macs(in_shape))}"

    def build(self, in_shape: Shape) -> nn.Module:
        c = in_shape[0]
        conv = conv2d_keras(c, c * self.depth_multiplier, self.kernel, self.stride, self.padding,
                       self.dilation, c, self.bias)
        return _seq(*conv, make_activation(self.activation))


@dataclass(frozen=True, kw_only=True)
class SeparableConv(LayerSpec):
    """Depthwise convolution (no bias) then a 1×1 pointwise convolution, as in Keras/Xception."""

    TYPE: ClassVar[str] = "separable_conv"
    filters: int = _f(F.positive_int)
    kernel: Pair = _f(F.positive_pair)
    stride: Pair = _f(F.positive_pair, (1, 1))
    padding: Padding = _f(F.padding, "valid")
    dilation: Pair = _f(F.positive_pair, (1, 1))
    depth_multiplier: int = _f(F.positive_int, 1)
    bias: bool = _f(F.boolean, True)
    activation: str = _f(activation_name, "none")

    def output_shape(self, in_shape: Shape) -> Shape:
        c, h, w = _need_image(in_shape, "separable_conv")
        return (self.filters, *_out_hw(h, w, self.kernel, self.stride, self.dilation, self.padding))

    def params(self, in_shape: Shape) -> int:
        mid = in_shape[0] * self.depth_multiplier
        return self.kernel[0] * self.kernel[1] * mid + (mid + self.bias) * self.filters

    def params_formula(self, in_shape: Shape) -> str:
        kh, kw = self.kernel
        mid = in_shape[0] * self.depth_multiplier
        point = f"({mid} + 1) × {self.filters}" if self.bias else f"{mid} × {self.filters}"
        return f"{kh}×{kw}×{mid} (depthwise) + {point} (pointwise) = {n(self.params(in_shape))}"

    def macs(self, in_shape: Shape) -> int:
        _, ho, wo = self.output_shape(in_shape)
        mid = in_shape[0] * self.depth_multiplier
        return ho * wo * mid * self.kernel[0] * self.kernel[1] + ho * wo * self.filters * mid

    def macs_formula(self, in_shape: Shape) -> str:
        _, ho, wo = self.output_shape(in_shape)
        mid = in_shape[0] * self.depth_multiplier
        return (f"{ho}×{wo}×{mid} × {self.kernel[0]}×{self.kernel[1]} (depthwise) + "
                f"{ho}×{wo}×{self.filters} × {mid} (pointwise) = {n(self.macs(in_shape))}")

    def build(self, in_shape: Shape) -> nn.Module:
        c = in_shape[0]
        mid = c * self.depth_multiplier
        depthwise = conv2d_keras(c, mid, self.kernel, self.stride, self.padding, self.dilation, c, False)
        pointwise = nn.Conv2d(mid, self.filters, 1, bias=self.bias)
        return nn.Sequential(*depthwise, pointwise, *filter(None, [make_activation(self.activation)]))


@dataclass(frozen=True, kw_only=True)
class _Pool(LayerSpec):
    size: Pair = _f(F.positive_pair, doc="window k or [kh, kw]")
    stride: Pair | None = _f(F.positive_pair, None, "default: the window size")
    padding: str = _f(F.pool_padding, "valid")

    @property
    def step(self) -> Pair:
        return self.stride or self.size

    def output_shape(self, in_shape: Shape) -> Shape:
        c, h, w = _need_image(in_shape, self.TYPE)
        return (c, *_out_hw(h, w, self.size, self.step, (1, 1), self.padding, "size"))

    def describe(self) -> str:
        return f"{self.size[0]}×{self.size[1]}/{self.step[0]} {self.padding}"


@dataclass(frozen=True, kw_only=True)
class MaxPool(_Pool):
    TYPE: ClassVar[str] = "maxpool"

    def build(self, in_shape: Shape) -> nn.Module:
        pool = nn.MaxPool2d(self.size, self.step)
        if self.padding == "same":  # pad with -inf so padding never wins the max (TensorFlow)
            return nn.Sequential(SamePad2d(self.size, self.step, value=-math.inf), pool)
        return pool


@dataclass(frozen=True, kw_only=True)
class AvgPool(_Pool):
    TYPE: ClassVar[str] = "avgpool"

    def build(self, in_shape: Shape) -> nn.Module:
        if self.padding == "same":  # average over real elements only (TensorFlow)
            return SameAvgPool2d(self.size, self.step)
        return nn.AvgPool2d(self.size, self.step)


@dataclass(frozen=True, kw_only=True)
class GlobalAvgPool(LayerSpec):
    TYPE: ClassVar[str] = "global_avgpool"

    def output_shape(self, in_shape: Shape) -> Shape:
        return (_need_image(in_shape, self.TYPE)[0],)

    def build(self, in_shape: Shape) -> nn.Module:
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())


@dataclass(frozen=True, kw_only=True)
class GlobalMaxPool(GlobalAvgPool):
    TYPE: ClassVar[str] = "global_maxpool"

    def build(self, in_shape: Shape) -> nn.Module:
        return nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten())


@dataclass(frozen=True, kw_only=True)
class Flatten(LayerSpec):
    TYPE: ClassVar[str] = "flatten"

    def output_shape(self, in_shape: Shape) -> Shape:
        return (math.prod(in_shape),)

    def build(self, in_shape: Shape) -> nn.Module:
        return nn.Flatten()


@dataclass(frozen=True, kw_only=True)
class Dense(LayerSpec):
    TYPE: ClassVar[str] = "dense"
    SHORTHAND: ClassVar[str | None] = "units"
    units: int = _f(F.positive_int)
    activation: str = _f(activation_name, "none")
    bias: bool = _f(F.boolean, True)

    def output_shape(self, in_shape: Shape) -> Shape:
        if len(in_shape) != 1:
            raise LayerProblem(
                f"dense needs a vector input, but gets a feature map {list(in_shape)}; "
                "add 'flatten' or 'global_avgpool' before it")
        return (self.units,)

    def params(self, in_shape: Shape) -> int:
        return (in_shape[0] + self.bias) * self.units

    def params_formula(self, in_shape: Shape) -> str:
        body = f"({in_shape[0]} + 1)" if self.bias else f"{in_shape[0]}"
        return f"{body} × {self.units} = {n(self.params(in_shape))}"

    def macs(self, in_shape: Shape) -> int:
        return in_shape[0] * self.units

    def macs_formula(self, in_shape: Shape) -> str:
        return f"{in_shape[0]} × {self.units} = {n(self.macs(in_shape))}"

    def build(self, in_shape: Shape) -> nn.Module:
        return _seq(nn.Linear(in_shape[0], self.units, self.bias), make_activation(self.activation))

    def describe(self) -> str:
        return f"{self.units}" + (f" {self.activation}" if self.activation != "none" else "")


@dataclass(frozen=True, kw_only=True)
class Dropout(LayerSpec):
    TYPE: ClassVar[str] = "dropout"
    SHORTHAND: ClassVar[str | None] = "rate"
    rate: float = _f(F.rate)

    def build(self, in_shape: Shape) -> nn.Module:
        return nn.Dropout(self.rate)

    def describe(self) -> str:
        return f"rate {self.rate:g}"


@dataclass(frozen=True, kw_only=True)
class BatchNorm(LayerSpec):
    """Batch normalization over channels (feature maps) or features (vectors).

    Parameters are the learned scale γ and shift β, 2 per channel; the running
    mean and variance are buffers, not parameters (PyTorch's convention; Keras
    lists them as 2 more "non-trainable params" per channel).
    """

    TYPE: ClassVar[str] = "batchnorm"
    eps: float = _f(F.positive_float, 1e-5)
    momentum: float = _f(F.rate, 0.1)

    def params(self, in_shape: Shape) -> int:
        return 2 * in_shape[0]

    def params_formula(self, in_shape: Shape) -> str:
        return f"2 × {in_shape[0]} (γ, β) = {n(self.params(in_shape))}"

    def build(self, in_shape: Shape) -> nn.Module:
        cls = nn.BatchNorm2d if len(in_shape) == 3 else nn.BatchNorm1d
        return cls(in_shape[0], eps=self.eps, momentum=self.momentum)


@dataclass(frozen=True, kw_only=True)
class LRN(LayerSpec):
    """Local response normalization across channels (AlexNet, 2012).

    Fields follow ``torch.nn.LocalResponseNorm``:
    ``b = a / (k + alpha / size * sum(a^2 over size channels)) ** beta``.
    PyTorch divides ``alpha`` by the window size; the AlexNet paper (and
    TensorFlow's ``depth_radius``/``alpha``) do not, so the paper's α=1e-4 with
    n=5 is ``alpha: 5e-4`` here. Defaults: the paper's constants
    (``cnnlab.vocab.LRN_TORCH_DEFAULTS``: size 5, alpha 5e-4, beta 0.75, k 2),
    the same as ``cnnlab ops lrn``.
    """

    TYPE: ClassVar[str] = "lrn"
    size: int = _f(F.positive_int, LRN_TORCH_DEFAULTS["size"])
    alpha: float = _f(F.positive_float, LRN_TORCH_DEFAULTS["alpha"])
    beta: float = _f(F.positive_float, LRN_TORCH_DEFAULTS["beta"])
    k: float = _f(F.number, LRN_TORCH_DEFAULTS["k"])

    def output_shape(self, in_shape: Shape) -> Shape:
        return _need_image(in_shape, "lrn")

    def build(self, in_shape: Shape) -> nn.Module:
        return nn.LocalResponseNorm(self.size, self.alpha, self.beta, self.k)


@dataclass(frozen=True, kw_only=True)
class Activation(LayerSpec):
    TYPE: ClassVar[str] = "activation"
    SHORTHAND: ClassVar[str | None] = "function"
    function: str = _f(activation_name)

    def build(self, in_shape: Shape) -> nn.Module:
        return make_activation(self.function) or nn.Identity()

    def describe(self) -> str:
        return self.function


LAYER_TYPES: dict[str, type[LayerSpec]] = {
    cls.TYPE: cls
    for cls in (Conv, DepthwiseConv, SeparableConv, MaxPool, AvgPool, GlobalAvgPool,
                GlobalMaxPool, Flatten, Dense, Dropout, BatchNorm, LRN, Activation)
}
