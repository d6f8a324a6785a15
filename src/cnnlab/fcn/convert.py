"""Dense → convolution: turn a trained classifier into a fully convolutional network (FCN).

The rule (Long, Shelhamer & Darrell 2015; Géron, chapter 14): the first dense
layer after the last feature map of size h×w becomes a convolution with h×w
kernels, as many filters as units and "valid" padding — its weight matrix
``(units, C·h·w)`` reshaped to ``(units, C, h, w)``, which is exact because
``torch.flatten`` orders a map channel by channel, row by row. Every later
dense layer becomes a 1×1 convolution. On the training input the FCN outputs
a 1×1 grid equal to the classifier's logits; on a larger image it outputs a
grid of scores, one per window position, computed in one pass.

A global-average-pooling head (ResNet: GAP → dense) becomes a 1×1 convolution
applied at every position of the last feature map: the grid is a class
activation map, and its mean equals the classifier's logits when nothing
non-linear follows the pooling.

The conversion rewrites the network's ``torch.fx`` graph: flatten nodes and
adaptive pools that are identities at the training input disappear, dense
layers become convolutions with the same weights, element-wise layers
(activations, dropout) stay. Anything else that sees the flattened vector —
reshaping it, adding it to another tensor, a per-feature batch norm — has no
convolutional equivalent and is refused with the layer's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from cnnlab.analysis.receptive import _Tracer   # "same" padding traced whole: its pad depends on the size
from cnnlab.errors import CnnlabError

ELEMENTWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid,
               nn.Hardswish, nn.Hardsigmoid, nn.Mish, nn.PReLU, nn.Dropout, nn.Dropout2d, nn.AlphaDropout,
               nn.Identity)
ELEMENTWISE_FUNCTIONS = {torch.relu, torch.tanh, torch.sigmoid, nn.functional.relu, nn.functional.dropout,
                         nn.functional.gelu, nn.functional.silu}


class ConversionError(CnnlabError):
    """The network has a layer with no convolutional equivalent, or no dense head to convert."""


@dataclass
class ConvertedLayer:
    """One dense layer and the convolution that replaced it."""

    name: str
    dense: tuple[int, int]          # (in_features, out_features)
    kernel: tuple[int, int]         # the convolution's kernel (h, w); (1, 1) after the first
    in_channels: int
    filters: int
    params: int                     # the same before and after

    def describe(self) -> str:
        kh, kw = self.kernel
        return (f"{self.name}: dense {self.dense[0]:,} → {self.dense[1]:,}  ⇒  conv {self.in_channels} → "
                f"{self.filters}, {kh}×{kw} kernel, valid padding ({self.params:,} parameters, unchanged)")


@dataclass
class Conversion:
    """The converted network and what was done to it."""

    fcn: nn.Module
    input_shape: tuple[int, int, int]
    layers: list[ConvertedLayer]
    removed: list[str]                          # flatten nodes and identity pools taken out
    global_pool: str | None = None              # "avg"/"max" when a global pooling head was unrolled
    mean_is_exact: bool = True                  # GAP heads: the grid's mean equals the logits
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"input_shape": list(self.input_shape),
                "layers": [{"name": r.name, "dense": list(r.dense), "kernel": list(r.kernel),
                            "in_channels": r.in_channels, "filters": r.filters, "params": r.params}
                           for r in self.layers],
                "removed": self.removed, "global_pool": self.global_pool, "notes": self.notes}


@dataclass
class _Mark:
    """What a tensor downstream of the feature map is, as the conversion walks the graph."""

    kind: str                        # "flat": a flattened (C, h, w) map; "conv": already a 4-D score map
    shape: tuple[int, int, int]      # (C, h, w) for "flat"; (channels, 1, 1) for "conv"


def convert(model: nn.Module, input_shape: tuple[int, int, int]) -> Conversion:
    """The FCN of ``model`` (a classifier ending in dense layers) trained on ``input_shape`` (C, H, W).

    The model is not changed: the FCN holds copies of its weights.
    """
    import copy

    model = copy.deepcopy(model)       # the caller's network keeps its mode and its own parameters
    try:
        gm = fx.GraphModule(model, _Tracer().trace(model), type(model).__name__)
    except Exception as err:    # fx cannot trace data-dependent Python control flow
        raise ConversionError(f"cannot trace the network into a graph ({type(err).__name__}: "
                              f"{str(err).splitlines()[0] if str(err) else ''}); convert spec, zoo or Keras networks") from err
    gm.eval()
    param = next(model.parameters())
    with torch.no_grad():
        ShapeProp(gm).propagate(torch.zeros(1, *input_shape, dtype=param.dtype, device=param.device))
    marks: dict[fx.Node, _Mark] = {}
    conversion = Conversion(gm, tuple(input_shape), [], [])  # type: ignore[arg-type]
    modules = dict(gm.named_modules())
    for node in list(gm.graph.nodes):
        if node.graph is gm.graph and node in gm.graph.nodes:     # not erased by an earlier rewrite
            _visit(gm, modules, node, marks, conversion)
    if not conversion.layers:
        raise ConversionError("the network has no dense layer after a feature map: nothing to convert "
                              "(it is fully convolutional already, or it has no flatten → dense head)")
    gm.graph.lint()
    gm.recompile()
    return conversion


def _shape(node: fx.Node) -> tuple[int, ...]:
    meta = node.meta.get("tensor_meta")
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else ()


def _bypass(node: fx.Node) -> None:
    """Remove ``node``, handing its input to its users."""
    node.replace_all_uses_with(node.args[0])  # type: ignore[arg-type]
    node.graph.erase_node(node)


def _is_flatten(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        m = modules[str(node.target)]
        return isinstance(m, nn.Flatten) and m.start_dim == 1 and m.end_dim == -1
    if node.op == "call_function" and node.target is torch.flatten:
        start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
        return start == 1 and len(node.args) <= 2 and "end_dim" not in node.kwargs
    return False


def _visit(gm: fx.GraphModule, modules: dict[str, nn.Module], node: fx.Node, marks: dict[fx.Node, _Mark],
           conv: Conversion) -> None:
    """Convert ``node`` if the feature map's flattened vector reaches it."""
    inputs = [a for a in node.all_input_nodes if a in marks]
    name = str(node.target) if node.op == "call_module" else node.name
    if node.op == "output":
        return
    module = modules.get(str(node.target)) if node.op == "call_module" else None
    # an adaptive pool before the flatten: an identity at the training input, or a global pool
    if not inputs and isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        before, after = _shape(node.all_input_nodes[0]), _shape(node)
        if before[-2:] == after[-2:]:
            conv.removed.append(f"{name} (adaptive pool, an identity at {before[-2]}×{before[-1]})")
            _bypass(node)
        elif after[-2:] == (1, 1) and all(_is_flatten(u, modules) for u in node.users):
            conv.global_pool = "avg" if isinstance(module, nn.AdaptiveAvgPool2d) else "max"
            conv.mean_is_exact = conv.global_pool == "avg"      # the max of scores is not the score of the max
            conv.removed.append(f"{name} (global {conv.global_pool} pooling: the dense layers now run at "
                                "every position of the last feature map)")
            flat_users = list(node.users)
            _bypass(node)
            for user in flat_users:
                conv.removed.append(f"{user.name} (flatten)")
                marks[user] = _Mark("conv", (before[1], 1, 1))
                _bypass_keep_mark(user, marks)
        else:
            raise ConversionError(f"layer {name}: adaptive pooling from {before[-2]}×{before[-1]} to "
                                  f"{after[-2]}×{after[-1]} has no convolutional equivalent; convert at an input "
                                  "size where it is an identity")
        return
    if not inputs:
        if _is_flatten(node, modules) and len(_shape(node.all_input_nodes[0])) == 4:
            c, h, w = _shape(node.all_input_nodes[0])[1:]
            conv.removed.append(f"{name} (flatten of a {c}×{h}×{w} map)")
            marks[node] = _Mark("flat", (c, h, w))
            _bypass_keep_mark(node, marks)
        return
    mark = marks[inputs[0]]
    if isinstance(module, nn.Linear) and len(node.all_input_nodes) == 1:
        marks[node] = _dense_to_conv(gm, node, module, mark, name, conv)
    elif isinstance(module, ELEMENTWISE) or (node.op == "call_function" and node.target in ELEMENTWISE_FUNCTIONS):
        if conv.global_pool and not isinstance(module, (nn.Dropout, nn.Identity)):
            conv.mean_is_exact = False      # a non-linear layer after the pool: mean(f(x)) ≠ f(mean(x))
        marks[node] = mark
    elif isinstance(module, nn.BatchNorm1d) and mark.kind == "conv":
        bn = nn.BatchNorm2d(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats).to(next(iter(module.state_dict().values())).device)
        bn.load_state_dict(module.state_dict())
        _replace_module(gm, str(node.target), bn)
        marks[node] = mark
    elif isinstance(module, (nn.Softmax, nn.LogSoftmax)) and mark.kind == "conv" and module.dim in (1, -1):
        _replace_module(gm, str(node.target), type(module)(dim=1))
        if conv.global_pool:
            conv.mean_is_exact = False
        marks[node] = mark
    else:
        what = type(module).__name__ if module is not None else f"{node.op} {getattr(node.target, '__name__', node.target)}"
        raise ConversionError(f"layer {name} ({what}) works on the flattened feature vector in a way that has no "
                              "convolutional equivalent; only dense layers, element-wise activations, dropout and "
                              "batch norm after a dense layer can follow the flatten")


def _bypass_keep_mark(node: fx.Node, marks: dict[fx.Node, _Mark]) -> None:
    """Remove a flatten node: its users now read the 4-D map, which takes over the node's mark."""
    mark = marks.pop(node)
    source = node.args[0]
    _bypass(node)
    marks[source] = mark  # type: ignore[index]


def _dense_to_conv(gm: fx.GraphModule, node: fx.Node, dense: nn.Linear, mark: _Mark, name: str,
                   conv: Conversion) -> _Mark:
    c, h, w = mark.shape
    if c * h * w != dense.in_features:
        raise ConversionError(f"layer {name}: takes {dense.in_features} features but the map gives "
                              f"{c}×{h}×{w} = {c * h * w}")
    layer = nn.Conv2d(c, dense.out_features, (h, w), bias=dense.bias is not None)
    layer = layer.to(device=dense.weight.device, dtype=dense.weight.dtype)
    with torch.no_grad():
        layer.weight.copy_(dense.weight.reshape(dense.out_features, c, h, w))   # flatten order: C, then H, then W
        if dense.bias is not None:
            layer.bias.copy_(dense.bias)
    _replace_module(gm, str(node.target), layer)
    conv.layers.append(ConvertedLayer(name, (dense.in_features, dense.out_features), (h, w), c,
                                      dense.out_features, sum(p.numel() for p in dense.parameters())))
    if conv.global_pool and len(conv.layers) > 1:
        conv.mean_is_exact = False
    return _Mark("conv", (dense.out_features, 1, 1))


def _replace_module(gm: fx.GraphModule, target: str, module: nn.Module) -> None:
    parent_name, _, child = target.rpartition(".")
    parent = gm.get_submodule(parent_name) if parent_name else gm
    setattr(parent, child, module)
