"""A Keras model's graph as a PyTorch module: one submodule per Keras layer, called in the graph's order.

Keras serializes a ``Sequential`` model as a list of layers and a functional
one as layers with their ``inbound_nodes`` (which tensors each call takes).
:func:`build_network` reads either (nested models included), converts every
layer by its rule (:mod:`cnnlab.keras.layers`) with the shapes flowing into it,
and returns a :class:`KerasNetwork` whose ``forward`` replays the calls. Its
rows for ``cnnlab analyze`` are Keras's own layers, under Keras's names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode

from cnnlab.errors import TargetError
from cnnlab.fake import quiet_fake_tensor_log
from cnnlab.keras.archive import Weights
from cnnlab.keras.layers import ELEMENTWISE, OPS, RULES, Layer, LayerProblem, convert_layer
from cnnlab.keras.spec import spec_twin

Shape = tuple[int, ...]
MODELS = {"Sequential", "Functional", "Model"}
NO_EFFECT_KWARGS = {"mask", "training"}


def torch_shape(keras_shape: list[Any] | tuple[Any, ...]) -> tuple[int | None, ...]:
    """A Keras per-instance shape (channels last) in PyTorch's order: ``(H, W, C)`` -> ``(C, H, W)``."""
    if not isinstance(keras_shape, (list, tuple)):
        raise TargetError(f"an input shape must be a list of sizes (got {keras_shape!r:.60})")
    dims = tuple(None if d is None else int(d) for d in keras_shape)
    return dims if len(dims) <= 1 else (dims[-1], *dims[:-1])


@dataclass
class Call:
    """One call of a layer in the graph: its serialized entry, its arguments and the key of its output."""

    entry: dict[str, Any]
    name: str
    args: list[tuple[str, Any]]          # ("t", tensor key) or ("c", constant)
    out: str

    @property
    def kind(self) -> str:
        return str(self.entry.get("class_name"))

    @property
    def tensors(self) -> list[str]:
        return [v for t, v in self.args if t == "t"]


@dataclass
class Graph:
    """A model's calls in a valid order, its input and output tensor keys and its input shape (Keras order)."""

    name: str
    calls: list[Call]
    input_key: str
    output_key: str
    keras_input: tuple[int | None, ...] | None
    consumers: dict[str, list[Call]] = field(default_factory=dict)


class KerasNetwork(nn.Module):
    """A converted Keras model. ``layers`` holds one module per Keras layer (named as in Keras, ``.`` → ``_``);
    ``forward`` calls them as the Keras graph does, on channels-first tensors."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.keras_name = name
        self.layers = nn.ModuleDict()
        self.kinds: dict[str, str] = {}      # module key -> Keras class name
        self.names: dict[str, str] = {}      # module key -> Keras layer name
        self.plan: list[tuple[str, str, tuple[tuple[str, Any], ...]]] = []
        self.input_key = self.output_key = ""
        self.keras_spec: Any = None          # the same network as a cnnlab spec, where one says it (see spec.py)
        self.twins: dict[int, tuple[Any, Shape]] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {self.input_key: x}
        for out, key, args in self.plan:
            values[out] = self.layers[key](*[values[v] if t == "t" else v for t, v in args])
        return values[self.output_key]

    def analysis_layers(self) -> list[tuple[str, str, nn.Module]]:
        """``(Keras name, Keras class, module)`` per layer: the rows Keras's ``model.summary()`` shows."""
        return [(self.names[k], self.kinds[k], m) for k, m in self.layers.items()]

    def layer_twins(self) -> dict[int, tuple[Any, Shape]]:
        """``id(module) -> (spec layer, input shape)`` for the layers a cnnlab spec layer says exactly (a Conv2D,
        a pooling, a Dense …): ``cnnlab analyze --explain`` writes their formulas and padding rules."""
        return self.twins

    def keras_count(self) -> tuple[int, int]:
        """``(count_params, trainable)`` as Keras counts: parameters, plus the moving statistics PyTorch keeps as
        buffers (batch norm's moving mean and variance, an adapted Normalization's mean, variance and count);
        constants from a layer's config (Rescaling's scale) are buffers Keras does not count: non-persistent."""
        params = {id(p): p for p in self.parameters()}.values()
        return (sum(p.numel() for p in params) + statistics(self), sum(p.numel() for p in params if p.requires_grad))


def statistics(module: nn.Module) -> int:
    """Values Keras counts as (non-trainable) variables but PyTorch keeps as buffers: every persistent buffer but
    batch norm's step counter (moving mean and variance, an adapted Normalization's mean, variance and count)."""
    return sum(b.numel() for m in module.modules() for name, b in m._buffers.items()
               if b is not None and name != "num_batches_tracked" and name not in m._non_persistent_buffers_set)


def _key(ref: dict[str, Any], where: str) -> str:
    history = ref.get("config", {}).get("keras_history")
    if not isinstance(history, list) or len(history) != 3:
        raise TargetError(f"{where}: a graph node has no keras_history; the file was not written by Keras 3")
    return f"{history[0]}:{int(history[1])}:{int(history[2])}"


def _is_tensor(value: Any) -> bool:
    return isinstance(value, dict) and value.get("class_name") == "__keras_tensor__"


def _args(node: Any, name: str, where: str) -> list[tuple[str, Any]]:
    if not isinstance(node, dict) or "args" not in node:
        raise TargetError(f"{where}: layer '{name}': its inbound nodes are in Keras 2's format; open the model in "
                          "Keras 3 and save it again with model.save('model.keras')")
    for key, value in (node.get("kwargs") or {}).items():
        if key not in NO_EFFECT_KWARGS and value is not None:
            raise TargetError(f"{where}: layer '{name}' is called with {key}={value!r}, which cnnlab does not "
                              "convert; call it with tensors only")
    out: list[tuple[str, Any]] = []
    for arg in node["args"]:
        items = arg if isinstance(arg, list) and any(_is_tensor(a) for a in arg) else [arg]
        for item in items:
            if _is_tensor(item):
                out.append(("t", _key(item, where)))
            elif isinstance(item, (int, float)) and not isinstance(item, bool):
                out.append(("c", float(item)))
            else:
                raise TargetError(f"{where}: layer '{name}' takes an argument cnnlab cannot read ({item!r:.60})")
    return out


def _input_shape_of(entries: list[dict[str, Any]], inner: dict[str, Any]) -> tuple[int | None, ...] | None:
    for entry in entries[:1]:
        cfg = entry.get("config", {})
        shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
        if shape:
            return tuple(shape[1:])
    shape = inner.get("build_input_shape")
    return tuple(shape[1:]) if isinstance(shape, list) and shape else None


def read_graph(config: dict[str, Any], where: str) -> Graph:
    """The calls of a serialized ``Sequential`` or functional model, in an order where inputs come first."""
    try:
        return _read_graph(config, where)
    except TargetError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as err:
        raise TargetError(f"{where}: config.json is not a model config cnnlab reads ({type(err).__name__}: "
                          f"{str(err)[:120]}); save the model again with Keras 3's model.save()") from None


def _read_graph(config: dict[str, Any], where: str) -> Graph:
    kind, inner = config.get("class_name"), config.get("config") or {}
    entries = inner.get("layers")
    name = str(inner.get("name", kind))
    if kind not in MODELS or not isinstance(entries, list):
        raise TargetError(f"{where}: the model is a {kind}, not a Sequential or functional model; a subclassed "
                          "model has no graph in its file: build it with Keras's functional API")
    if kind == "Sequential":
        calls, prev = [], "input:0:0"
        for entry in entries:
            if entry.get("class_name") == "InputLayer":
                continue
            lname = str(entry.get("config", {}).get("name"))
            calls.append(Call(entry, lname, [("t", prev)], f"{lname}:0:0"))
            prev = calls[-1].out
        if not calls:
            raise TargetError(f"{where}: the Sequential model '{name}' has no layers")
        graph = Graph(name, calls, "input:0:0", prev, _input_shape_of(entries, inner))
    else:
        graph = _functional(entries, inner, name, where)
    shape = graph.keras_input
    if shape is not None and not all(d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0)
                                     for d in shape):
        raise ValueError(f"the input shape {list(shape)!r:.60} is not a list of sizes")
    for call in graph.calls:
        for key in call.tensors:
            graph.consumers.setdefault(key, []).append(call)
    return graph


def _endpoint(value: Any, what: str, name: str, where: str) -> list[Any]:
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        return value
    if isinstance(value, list) and len(value) == 1:
        return _endpoint(value[0], what, name, where)
    if isinstance(value, dict) and len(value) == 1:
        return _endpoint(next(iter(value.values())), what, name, where)
    raise TargetError(f"{where}: model '{name}' has several {what}s; cnnlab converts networks with one image "
                      f"input and one output")


def _functional(entries: list[dict[str, Any]], inner: dict[str, Any], name: str, where: str) -> Graph:
    inp = _endpoint(inner.get("input_layers"), "input", name, where)
    outp = _endpoint(inner.get("output_layers"), "output", name, where)
    input_key = f"{inp[0]}:{inp[1]}:{inp[2]}"
    keras_input = None
    pending: list[Call] = []
    for entry in entries:
        lname = str(entry.get("name") or entry.get("config", {}).get("name"))
        if entry.get("class_name") == "InputLayer":
            if lname == inp[0]:
                shape = entry.get("config", {}).get("batch_shape") or entry.get("config", {}).get("batch_input_shape")
                keras_input = tuple(shape[1:]) if shape else None
            continue
        for index, node in enumerate(entry.get("inbound_nodes") or []):
            pending.append(Call(entry, lname, _args(node, lname, where), f"{lname}:{index}:0"))
    ready, calls = {input_key}, []
    while pending:   # a valid order: a call once all its inputs exist (the config's order almost always is one)
        waiting = []
        for call in pending:
            if all(k in ready for k in call.tensors):
                calls.append(call)
                ready.add(call.out)
            else:
                waiting.append(call)
        if len(waiting) == len(pending):
            missing = next(k for c in waiting for k in c.tensors if k not in ready)
            raise TargetError(f"{where}: layer '{waiting[0].name}' takes '{missing.split(':')[0]}', which no input "
                              "reaches; the model has more than one input, or its config is damaged")
        pending = waiting
    return Graph(name, calls, input_key, f"{outp[0]}:{outp[1]}:{outp[2]}", keras_input)


def _module_key(name: str, taken: nn.ModuleDict) -> str:
    key = re.sub(r"[^0-9A-Za-z_]", "_", name) or "layer"
    key = f"l_{key}" if key[0].isdigit() or hasattr(nn.ModuleDict, key) else key
    base, k = key, 1
    while key in taken:
        k += 1
        key = f"{base}_{k}"
    return key


def _into_dense(graph: Graph, out: str) -> list[str] | None:
    """The Dense layers a Flatten output reaches through elementwise layers only, or ``None`` if it goes elsewhere."""
    dense, stack = [], [out]
    while stack:
        for call in graph.consumers.get(stack.pop(), []):
            if call.kind == "Dense" and len(call.entry.get("inbound_nodes") or [0]) <= 1:
                dense.append(call.name)
            elif call.kind in ELEMENTWISE and call.kind in RULES:
                stack.append(call.out)
            else:
                return None
    return dense or None


def _out_shape(module: nn.Module, args: list[tuple[str, Any]], in_shapes: list[Shape]) -> Shape:
    """The module's per-instance output shape, from a pass under FakeTensorMode (nothing allocated)."""
    was = module.training
    module.eval()
    try:
        with quiet_fake_tensor_log(), FakeTensorMode(allow_non_fake_inputs=True):
            it = iter(in_shapes)
            values = [torch.empty((1, *next(it))) if t == "t" else v for t, v in args]
            out = module(*values)
    finally:
        module.train(was)
    return tuple(out.shape[1:])


def build_network(config: dict[str, Any], weights: Weights, where: str,
                  input_shape: Shape | None = None) -> KerasNetwork:
    """Convert a serialized Keras model (``config.json``'s content, or a nested model's entry) with its weights.

    ``input_shape`` is one instance's shape in PyTorch's order; without it the
    model's own input shape is used (and must be fully known).
    """
    graph = read_graph(config, where)
    if input_shape is None:
        if graph.keras_input is None or any(d is None for d in graph.keras_input):
            dims = "×".join("?" if d is None else str(d) for d in (graph.keras_input or ()))
            raise TargetError(f"{where}: the model takes inputs of any size ({dims or 'unknown'}, channels last); "
                              "give one as --input C,H,W")
        input_shape = torch_shape(graph.keras_input)  # type: ignore[assignment]
    net = KerasNetwork(graph.name)
    net.input_key, net.output_key = graph.input_key, graph.output_key
    shapes: dict[str, Shape] = {graph.input_key: tuple(input_shape)}  # type: ignore[arg-type]
    modules: dict[str, str] = {}      # Keras name -> module key (a shared layer is converted once)
    flatten_into: dict[str, str] = {}  # Dense name -> the key of the Flatten's input
    frozen = not (config.get("config") or {}).get("trainable", True)
    for call in graph.calls:
        in_shapes = [shapes[k] for k in call.tensors]
        if call.name not in modules:
            module = _convert(call, graph, weights, in_shapes, flatten_into, shapes, where)
            key = _module_key(call.name, net.layers)
            net.layers[key], net.kinds[key], net.names[key] = module, call.kind, call.name
            modules[call.name] = key
            twin = spec_twin(call.kind, call.entry.get("config") or {}, in_shapes[0])
            if twin is not None:
                net.twins[id(module)] = (twin, in_shapes[0])
        key = modules[call.name]
        try:
            shapes[call.out] = _out_shape(net.layers[key], call.args, in_shapes)
        except (RuntimeError, ValueError, TypeError, IndexError) as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            raise TargetError(f"{where}: layer '{call.name}' ({call.kind}) cannot take input "
                              f"{' and '.join(map(str, map(list, in_shapes)))}: {first}") from None
        net.plan.append((call.out, key, tuple(call.args)))
    if net.output_key not in shapes:
        output = net.output_key.split(":")[0]
        raise TargetError(f"{where}: the model's output '{output}' is not computed from its input")
    if frozen:
        _freeze(net)
    return net


def _convert(call: Call, graph: Graph, weights: Weights, in_shapes: list[Shape], flatten_into: dict[str, str],
             shapes: dict[str, Shape], where: str) -> nn.Module:
    cfg = dict(call.entry.get("config") or {})
    if call.kind in MODELS:
        return build_network(call.entry, weights.model(call.name), where, in_shapes[0])
    module_path = str(call.entry.get("module") or "")
    registered = str(call.entry.get("registered_name") or "")
    if module_path.startswith("keras.src.ops") and call.kind not in OPS:
        raise TargetError(f"{where}: '{call.name}' is the operation keras.ops.{call.kind.lower()}, which cnnlab does "
                          "not convert; use a Keras layer for it")
    if not module_path.startswith("keras") or registered.startswith("Custom>"):
        origin = f"module {module_path}" if module_path else "defined in a script"
        raise TargetError(f"{where}: layer '{call.name}' is a custom layer ({registered or call.kind}, {origin}); "
                          "cnnlab does not run code from a .keras file: build the "
                          "model from Keras's own layers (a functional model), or give the Python builder as "
                          "TARGET (file.py:build_model, Keras installed) so cnnlab can trace it")
    layer = Layer(call.name, call.kind, cfg, weights.of(call.name), in_shapes)
    if (call.kind == "Flatten" and len(call.entry.get("inbound_nodes") or [0]) <= 1
            and call.out != graph.output_key and _into_dense(graph, call.out)):
        layer.extra["into_dense"] = True
        for name in _into_dense(graph, call.out) or []:
            flatten_into[name] = call.tensors[0]
    if call.kind == "Dense" and call.name in flatten_into:
        layer.flatten_from = shapes[flatten_into[call.name]]
    try:
        return convert_layer(layer)
    except LayerProblem as problem:
        raise TargetError(f"{where}: layer '{call.name}' ({call.kind}) {problem}") from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as err:   # a config Keras would not write
        raise TargetError(f"{where}: layer '{call.name}' ({call.kind}) has a config cnnlab cannot read "
                          f"({type(err).__name__}: {str(err)[:120]}); save the model again with Keras 3") from None


def _freeze(net: KerasNetwork) -> None:
    """A nested model saved with ``trainable=False`` (a frozen base for transfer learning)."""
    from cnnlab.keras.modules import KerasBatchNorm

    for p in net.parameters():
        p.requires_grad_(False)
    for m in net.modules():
        if isinstance(m, KerasBatchNorm):
            m.frozen = True
            m.eval()
