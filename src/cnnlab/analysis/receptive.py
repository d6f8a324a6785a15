"""Receptive field and effective stride of every layer, from the network's graph.

For a layer with kernel k, dilation d and stride s fed by a map whose units
see ``r`` input pixels and sit ``j`` input pixels apart (the *effective
stride*, or jump), each output unit sees ``r + (d·(k − 1))·j`` input pixels
and outputs sit ``j·s`` apart (Araujo, Norris & Sim, "Computing Receptive
Fields of Convolutional Neural Networks", Distill 2019; torchscan reports the
same two numbers). Where paths join (a residual addition, an inception
concatenation) the larger receptive field counts. Global pooling, flattening
and dense layers see the whole input (``None``: all of it). Element-wise
layers, normalisation and padding change neither number.

The graph comes from ``torch.fx``; a network fx cannot trace gets no
receptive-field column (``{}``), never a guessed one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import fx, nn

WINDOWED = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)
UNMODELLED = (nn.Conv1d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.MaxPool1d,
              nn.AvgPool1d, nn.MaxPool3d, nn.AvgPool3d, nn.Upsample, nn.PixelShuffle, nn.PixelUnshuffle, nn.Fold,
              nn.Unfold, nn.FractionalMaxPool2d, nn.LPPool2d, nn.MaxUnpool2d)
GLOBAL = (nn.Linear, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Flatten)


@dataclass(frozen=True)
class Field:
    """Receptive field (rows, cols) of one output unit, and the input pixels between neighbours."""

    size: tuple[int, int] | None          # None: the whole input
    stride: tuple[int, int]


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[-1]))


def _apply(field: Field, module: nn.Module) -> Field:
    from cnnlab.layers.same_pad import SameAvgPool2d

    # a module may say what it does to the field: "global" (sees the whole input) or "pointwise" (nothing)
    if getattr(module, "RECEPTIVE", None) == "global":
        return Field(None, field.stride)
    if isinstance(module, SameAvgPool2d) and field.size is not None:
        k, s = _pair(module.kernel), _pair(module.stride)
        size = tuple(r + (kk - 1) * j for r, kk, j in zip(field.size, k, field.stride))
        return Field(size, tuple(j * ss for j, ss in zip(field.stride, s)))  # type: ignore[arg-type]
    if isinstance(module, GLOBAL):
        if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)) and _pair(module.output_size) != (1, 1):
            return Field(None, field.stride)      # depends on the input size: not a fixed window
        return Field(None, field.stride)
    if not isinstance(module, WINDOWED) or field.size is None:
        return field
    k = _pair(module.kernel_size)
    s = _pair(module.stride if module.stride is not None else module.kernel_size)
    d = _pair(getattr(module, "dilation", 1))
    size = tuple(r + dd * (kk - 1) * j for r, kk, dd, j in zip(field.size, k, d, field.stride))
    return Field(size, tuple(j * ss for j, ss in zip(field.stride, s)))  # type: ignore[arg-type]


def _join(fields: list[Field]) -> Field:
    """Where paths meet, each axis takes the larger field and the larger stride."""
    stride = (max(f.stride[0] for f in fields), max(f.stride[1] for f in fields))
    if any(f.size is None for f in fields):
        return Field(None, stride)
    return Field((max(f.size[0] for f in fields), max(f.size[1] for f in fields)), stride)  # type: ignore[index]


class _Tracer(fx.Tracer):
    """fx's tracer, with TensorFlow-style "same" padding kept whole (its pad depends on the input's size)."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        from cnnlab.layers.same_pad import SameAvgPool2d, SamePad2d

        return (isinstance(m, (SamePad2d, SameAvgPool2d)) or hasattr(m, "RECEPTIVE")
                or super().is_leaf_module(m, qualname))


def receptive_fields(model: nn.Module) -> dict[str, Field]:
    """``module path → Field`` at each module's output (the last call's, for a module called twice)."""
    return _propagate(model)[0]


def output_field(model: nn.Module) -> Field | None:
    """The field of the network's output (``None`` where the graph cannot be traced)."""
    return _propagate(model)[1]


def _propagate(model: nn.Module) -> tuple[dict[str, Field], Field | None]:
    """Walk the fx graph once: each module's field, and the output's."""
    try:
        graph = _Tracer().trace(model)
    except Exception:   # data-dependent control flow: no column rather than a wrong one
        return {}, None
    modules = dict(model.named_modules())  # the graph's module targets are these paths
    at: dict[fx.Node, Field] = {}
    out: dict[str, Field] = {}
    for node in graph.nodes:
        inputs = [at[a] for a in node.all_input_nodes if a in at]
        if node.op == "placeholder":
            at[node] = Field((1, 1), (1, 1))
            continue
        if node.op == "output":
            return out, (inputs[0] if inputs else None)
        if not inputs:
            continue
        field = _join(inputs)
        if node.op == "call_module":
            module = modules[str(node.target)]
            if isinstance(module, UNMODELLED) or getattr(module, "RECEPTIVE", None) == "unmodelled":   # upsampling, 1-D/3-D, unpooling: no column rather than a guess
                return {}, None
            field = _apply(field, module)
            out[str(node.target)] = field
        elif node.op == "call_function" and node.target in (torch.flatten, torch.nn.functional.adaptive_avg_pool2d,
                                                            torch.nn.functional.linear):
            field = Field(None, field.stride)
        at[node] = field
    return out, None


def field_of(fields: dict[str, Field], path: str) -> Field | None:
    """The field at the output of module ``path``: its own entry, or its last traced submodule's."""
    if path in fields:
        return fields[path]
    inner = [name for name in fields if name.startswith(path + ".")]
    return fields[inner[-1]] if inner else None
