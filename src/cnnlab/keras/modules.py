"""PyTorch modules with the semantics of Keras layers that PyTorch has no single module for.

Tensors here are PyTorch's: channels first, ``(B, C, H, W)`` for images,
``(B, C, L)`` for sequences, ``(B, N)`` for vectors. A Keras layer that works
on the last (channels) axis works on axis 1 here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, *S)`` -> ``(B, *S, C)``: the layout Keras computes in."""
    return x if x.dim() <= 2 else x.movedim(1, -1)


def to_channels_first(x: torch.Tensor) -> torch.Tensor:
    """``(B, *S, C)`` -> ``(B, C, *S)``."""
    return x if x.dim() <= 2 else x.movedim(-1, 1)


class Merge(nn.Module):
    """Keras's merge layers (``Add``, ``Subtract``, ``Multiply``, ``Average``, ``Maximum``, ``Minimum``) and the
    elementwise ``keras.ops`` a functional model records (``x + y``, ``x * 2.0``); broadcasting as NumPy does."""

    RECEPTIVE = "pointwise"   # for cnnlab.analysis.receptive

    OPS = ("add", "subtract", "multiply", "divide", "average", "maximum", "minimum")

    def __init__(self, op: str) -> None:
        super().__init__()
        if op not in self.OPS:
            raise ValueError(op)
        self.op = op

    def forward(self, *xs: torch.Tensor | float) -> torch.Tensor:
        if len(xs) == 1 and isinstance(xs[0], (list, tuple)):
            xs = tuple(xs[0])
        out = xs[0]
        for x in xs[1:]:
            if self.op in ("add", "average"):
                out = out + x
            elif self.op == "subtract":
                out = out - x
            elif self.op == "multiply":
                out = out * x
            elif self.op == "divide":
                out = out / x
            elif self.op == "maximum":       # keras.ops.maximum(0.0, x): a constant may come first
                out = torch.maximum(torch.as_tensor(out), torch.as_tensor(x))
            else:
                out = torch.minimum(torch.as_tensor(out), torch.as_tensor(x))
        return out / len(xs) if self.op == "average" else out  # type: ignore[return-value]

    def extra_repr(self) -> str:
        return self.op


class Concat(nn.Module):
    """``Concatenate(axis)``, the axis already mapped to PyTorch's layout."""

    RECEPTIVE = "pointwise"   # for cnnlab.analysis.receptive

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class FlattenHWC(nn.Module):
    """Keras's ``Flatten`` taken literally: ``(B, C, H, W)`` read in ``H, W, C`` order.

    Used only where the flattened vector does not go straight into a dense
    layer; there cnnlab keeps PyTorch's ``nn.Flatten`` and permutes the dense
    layer's weight rows instead (the same arithmetic as the FCN conversion).
    """

    RECEPTIVE = "global"   # for cnnlab.analysis.receptive

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return to_channels_last(x).flatten(1)


class Reshape(nn.Module):
    """``Reshape(target_shape)`` with the target in Keras's (channels-last) order."""

    RECEPTIVE = "global"   # for cnnlab.analysis.receptive

    def __init__(self, target: tuple[int, ...]) -> None:
        super().__init__()
        self.target = tuple(target)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = to_channels_last(x).reshape(x.shape[0], *self.target)
        return to_channels_first(y)

    def extra_repr(self) -> str:
        return f"target={self.target} (channels last)"


class Rescale(nn.Module):
    """``Rescaling(scale, offset)``: ``x * scale + offset`` (per channel when given as lists)."""

    RECEPTIVE = "pointwise"   # for cnnlab.analysis.receptive

    def __init__(self, scale: torch.Tensor, offset: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", scale, persistent=False)     # constants of the config, not variables
        self.register_buffer("offset", offset, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.offset


class Normalize(nn.Module):
    """Keras's ``Normalization``: ``(x - mean) / max(sqrt(variance), 1e-7)`` per channel.

    ``mean``, ``variance`` and ``count`` are buffers: Keras keeps them as
    non-trainable variables and counts them in ``count_params``.
    """

    RECEPTIVE = "pointwise"   # for cnnlab.analysis.receptive

    EPSILON = 1e-7   # keras.backend.epsilon()

    def __init__(self, mean: torch.Tensor, variance: torch.Tensor, count: torch.Tensor | None,
                 invert: bool = False) -> None:
        super().__init__()
        adapted = count is not None          # adapted: Keras variables; given in the config: constants
        self.register_buffer("mean", mean, persistent=adapted)
        self.register_buffer("variance", variance, persistent=adapted)
        if adapted:
            self.register_buffer("count", count)
        self.invert = invert

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        std = torch.clamp(torch.sqrt(self.variance), min=self.EPSILON)
        return self.mean + x * std if self.invert else (x - self.mean) / std


class KerasReLU(nn.Module):
    """Keras's ``ReLU(max_value, negative_slope, threshold)``: ``max_value`` at and above it, ``x`` from
    ``threshold`` on, ``negative_slope * (x - threshold)`` below."""

    RECEPTIVE = "pointwise"   # for cnnlab.analysis.receptive

    def __init__(self, max_value: float | None, negative_slope: float, threshold: float) -> None:
        super().__init__()
        self.max_value, self.negative_slope, self.threshold = max_value, negative_slope, threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.where(x >= self.threshold, x, self.negative_slope * (x - self.threshold))
        return y if self.max_value is None else torch.clamp(y, max=self.max_value)

    def extra_repr(self) -> str:
        return f"max_value={self.max_value}, negative_slope={self.negative_slope}, threshold={self.threshold}"


class PReLU(nn.Module):
    """Keras's ``PReLU``: a learned slope per element of ``alpha``'s shape (shared axes have size 1)."""

    RECEPTIVE = "pointwise"   # for cnnlab.analysis.receptive

    def __init__(self, alpha: torch.Tensor) -> None:
        super().__init__()
        self.alpha = nn.Parameter(alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x >= 0, x, self.alpha * x)


class Lambda(nn.Module):
    """A parameter-free Keras activation or op with no PyTorch module of its own (``exponential``, ``softsign``)."""

    RECEPTIVE = "pointwise"   # for cnnlab.analysis.receptive

    FUNCTIONS = {"exponential": torch.exp, "softsign": F.softsign, "log_softmax": lambda x: F.log_softmax(x, 1),
                 "tanh_shrink": F.tanhshrink, "square": torch.square, "sqrt": torch.sqrt, "negative": torch.neg,
                 "abs": torch.abs}

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.FUNCTIONS[self.name](x)

    def extra_repr(self) -> str:
        return self.name


class GlobalPool(nn.Module):
    """``GlobalAveragePooling1D/2D``, ``GlobalMaxPooling1D/2D``: over every spatial axis, the channels kept."""

    RECEPTIVE = "global"   # for cnnlab.analysis.receptive

    def __init__(self, kind: str, keepdims: bool) -> None:
        super().__init__()
        self.kind, self.keepdims = kind, keepdims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(2, x.dim()))
        if self.kind == "max":
            return torch.amax(x, dim=dims, keepdim=self.keepdims)
        return torch.mean(x, dim=dims, keepdim=self.keepdims)

    def extra_repr(self) -> str:
        return f"{self.kind}, keepdims={self.keepdims}"


class Crop(nn.Module):
    """``Cropping1D/2D``: rows and columns cut from each side."""

    RECEPTIVE = "unmodelled"   # for cnnlab.analysis.receptive

    def __init__(self, crops: tuple[tuple[int, int], ...]) -> None:
        super().__init__()
        self.crops = crops

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index: list[slice] = [slice(None), slice(None)]
        for (before, after), size in zip(self.crops, x.shape[2:]):
            index.append(slice(before, size - after))
        return x[tuple(index)]

    def extra_repr(self) -> str:
        return f"crops={self.crops}"


class SampleDropout(nn.Module):
    """``Dropout(noise_shape=(None, 1, 1, 1))``: drop whole samples (EfficientNet's drop-connect), scaled by
    1 / (1 - rate) as Keras does; the identity in evaluation."""

    RECEPTIVE = "pointwise"   # for cnnlab.analysis.receptive

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), device=x.device) >= self.p
        return x * keep.to(x.dtype) / (1 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class KerasBatchNorm(nn.BatchNorm2d):
    """Batch normalization of any rank on axis 1. ``frozen`` (Keras ``trainable=False``) keeps it in inference
    mode even while the network trains, as Keras 3 does."""

    RECEPTIVE = "pointwise"   # for cnnlab.analysis.receptive

    def __init__(self, num_features: int, eps: float, momentum: float, affine: bool,
                 frozen: bool = False) -> None:
        super().__init__(num_features, eps=eps, momentum=momentum, affine=affine)
        self.frozen = frozen

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected a batch of at least 2 dimensions, got {x.dim()}")

    def train(self, mode: bool = True) -> "KerasBatchNorm":
        super().train(mode and not self.frozen)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        # training: normalise by the batch's statistics and move the averages as Keras does, with the *biased*
        # batch variance (PyTorch's own BatchNorm moves them with the unbiased one)
        dims = [0, *range(2, x.dim())]
        with torch.no_grad():
            mean = x.mean(dims)
            var = x.var(dims, unbiased=False)
            self.running_mean.mul_(1 - self.momentum).add_(mean, alpha=self.momentum)  # type: ignore[union-attr]
            self.running_var.mul_(1 - self.momentum).add_(var, alpha=self.momentum)  # type: ignore[union-attr]
        return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)


class SamePad1d(nn.Module):
    """TensorFlow's "same" padding in 1-D (``out = ceil(L / stride)``, the odd element at the end), or
    "causal" padding (all of it before the sequence)."""

    RECEPTIVE = "unmodelled"   # for cnnlab.analysis.receptive

    def __init__(self, kernel: int, stride: int, dilation: int = 1, causal: bool = False) -> None:
        super().__init__()
        self.kernel, self.stride, self.dilation, self.causal = kernel, stride, dilation, causal

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, L)
        size = x.shape[-1]
        if self.causal:
            return F.pad(x, (self.dilation * (self.kernel - 1), 0))
        total = max((-(-size // self.stride) - 1) * self.stride + self.dilation * (self.kernel - 1) + 1 - size, 0)
        return F.pad(x, (total // 2, total - total // 2))

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, stride={self.stride}, dilation={self.dilation}, causal={self.causal}"


class As2d(nn.Module):
    """A 2-D pooling module applied to ``(B, C, L)`` sequences as ``(B, C, 1, L)`` images."""

    RECEPTIVE = "unmodelled"   # for cnnlab.analysis.receptive

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x.unsqueeze(2)).squeeze(2)
