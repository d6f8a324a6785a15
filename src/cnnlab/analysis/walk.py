"""Walk a network without real compute: one record per layer, filled by hooks.

The forward pass runs on the ``meta`` device: a model built by cnnlab lives
there, and any user ``nn.Module`` with real weights is called with meta twins
of its parameters and buffers (``torch.func.functional_call``; its own tensors
are untouched). A forward that meta cannot run (one that makes CPU tensors of
its own, or reads a value) is run again under ``FakeTensorMode``. Shapes and
dtypes propagate, no activation memory is allocated, so ResNet-152 at batch
1024 is walked in about a tenth of a second. MACs are PyTorch's own count
(the formulas of ``torch.utils.flop_counter``, which count convolutions and
matrix products at the ATen level) divided by two: one MAC is one
multiply-accumulate, FLOPs = 2 × MACs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, NamedTuple

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from cnnlab.errors import ShapeError
from cnnlab.fake import is_meta, quiet_fake_tensor_log

Shape = tuple[int, ...]


@dataclass
class LayerRecord:
    """What one layer does to one instance of the input."""

    index: int                 # 1-based, in call order (the input is layer 0)
    name: str                  # spec name (conv_1) or module path (layer1.0.conv1)
    type: str                  # spec type (conv) or module class (Conv2d)
    output_shape: Shape        # per instance: (C, H, W) or (N,)
    params: int                # parameters first used by this layer
    trainable_params: int
    macs: int                  # multiply-accumulates per instance, PyTorch's count
    output_elements: int       # per instance
    module: nn.Module | None = None


class Walk(NamedTuple):
    """The rows of a walk, and the multiply-accumulates per instance done outside every row.

    Operations the network's own ``forward`` does between its layers (a
    functional ``x @ self.weight`` at the top level, say), or a module without
    a row of its own does (a container without parameters, like timm's
    ``Attention`` with its ``q @ k`` products), belong to no row;
    ``rows' MACs + outside_macs`` is the network's total.
    """

    records: list[LayerRecord]
    outside_macs: int


def _leaf_layers(model: nn.Module) -> list[tuple[str, str, nn.Module]]:
    """Leaves, plus containers that hold parameters of their own (torchinfo's rule)."""
    rows = []
    for name, module in model.named_modules():
        leaf = next(module.children(), None) is None
        if module is model:
            if leaf:  # the whole model is a single layer
                rows.append((type(module).__name__.lower(), type(module).__name__, module))
            continue
        if leaf or next(module.parameters(recurse=False), None) is not None:
            rows.append((name, type(module).__name__, module))
    return rows


def _tensors(obj: object) -> Iterable[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors(item)


def _compute_dtype(model: nn.Module) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


# Queries about a tensor's layout, not computations: FlopCounterMode lets them through uncounted too.
_NOT_OPS = frozenset({
    torch.ops.aten.sym_is_contiguous.default, torch.ops.aten.is_contiguous.default,
    torch.ops.aten.is_contiguous.memory_format, torch.ops.aten.is_strides_like_format.default,
    torch.ops.aten.is_non_overlapping_and_dense.default, torch.ops.aten.size.default,
    torch.ops.aten.sym_size.default, torch.ops.aten.stride.default, torch.ops.aten.sym_stride.default,
    torch.ops.aten.storage_offset.default, torch.ops.aten.sym_storage_offset.default,
    torch.ops.aten.numel.default, torch.ops.aten.sym_numel.default, torch.ops.aten.dim.default,
    torch.ops.prim.layout.default})


# Normalisations: no FLOP formula anywhere below them, and their meta kernels are Python
# decompositions (~0.5 ms a call, most of a walk's time). Their outputs are new tensors whose
# shapes, strides and dtypes depend only on the inputs' (FakeTensorMode's dispatch cache relies on
# the same), so on meta each distinct call runs once and a repeat gets fresh meta tensors of the
# remembered layout.
_LAYOUT_ONLY = frozenset(getattr(torch.ops.aten, name) for name in (
    "native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training",
    "native_batch_norm_backward", "native_layer_norm", "native_layer_norm_backward",
    "native_group_norm", "native_group_norm_backward") if hasattr(torch.ops.aten, name))


def _signature(obj: object) -> object:
    if isinstance(obj, torch.Tensor):
        return ("tensor", tuple(obj.shape), obj.stride(), obj.dtype, obj.device.type, obj.requires_grad)
    if isinstance(obj, (list, tuple)):
        return tuple(_signature(o) for o in obj)
    return obj


_LAYOUTS: dict[object, list[tuple[tuple[int, ...], tuple[int, ...], torch.dtype] | None]] = {}
_LAYOUTS_CAP = 50_000   # distinct (op, input layout) pairs remembered per process


def run_op(func, args: tuple, kwargs: dict):  # noqa: ANN001, ANN201 - an ATen op and its result
    """``func(*args, **kwargs)``; a :data:`_LAYOUT_ONLY` op on meta inputs seen before is answered from memory."""
    if func._overloadpacket not in _LAYOUT_ONLY:
        return func(*args, **kwargs)
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    if not tensors or not all(t.is_meta for t in tensors):
        return func(*args, **kwargs)
    key = (func, _signature(args), _signature(tuple(sorted(kwargs.items()))))
    layout = _LAYOUTS.get(key)
    if layout is None:
        out = func(*args, **kwargs)
        layout = [None if t is None else (tuple(t.shape), t.stride(), t.dtype) for t in out]
        if func is torch.ops.aten.native_batch_norm.default and not args[5]:
            # batch norm on running statistics: the CPU kernel returns empty saved mean and inverse
            # std (nothing for a backward pass to keep); the meta kernel returns them full size
            layout[1] = layout[2] = ((0,), (1,), layout[1][2])  # type: ignore[index]
        if len(_LAYOUTS) >= _LAYOUTS_CAP:
            _LAYOUTS.clear()
        _LAYOUTS[key] = layout
    return tuple(None if spec is None else torch.empty_strided(spec[0], spec[1], dtype=spec[2], device="meta")
                 for spec in layout)


# PyTorch's formulas, plus its CPU flash-attention kernels (absent from its registry, so attention on
# CPU counted no products): the same query/key/value arithmetic as the GPU kernels' formulas.
_FORMULAS = dict(flop_registry)
_aten = torch.ops.aten
if hasattr(_aten, "_scaled_dot_product_flash_attention_for_cpu"):
    _FORMULAS.setdefault(_aten._scaled_dot_product_flash_attention_for_cpu,
                         flop_registry[_aten._scaled_dot_product_efficient_attention])
    _FORMULAS.setdefault(_aten._scaled_dot_product_flash_attention_for_cpu_backward,
                         flop_registry[_aten._scaled_dot_product_efficient_attention_backward])


class MacCounter(TorchDispatchMode):
    """FLOPs of the ATen ops run inside it, by PyTorch's own formulas (``flop_counter.flop_registry``).

    The same rule as ``torch.utils.flop_counter.FlopCounterMode`` — an op with a
    formula is counted, one without is decomposed where it can be, so its parts
    are counted — without FlopCounterMode's per-module bookkeeping (global module
    hooks), which the walk does not need and which cost more than the ops on meta.
    """

    def __init__(self) -> None:
        super().__init__()
        self.flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204 - torch's protocol
        kwargs = kwargs or {}
        if func in _NOT_OPS or isinstance(func, torch._ops.HigherOrderOperator):
            return NotImplemented
        packet = func._overloadpacket
        if packet in _LAYOUT_ONLY:
            return run_op(func, args, kwargs)
        formula = _FORMULAS.get(packet)
        if formula is None and func is not torch.ops.prim.device.default:
            with self:
                result = func.decompose(*args, **kwargs)
                if result is not NotImplemented:
                    return result
        out = func(*args, **kwargs)
        if formula is not None:
            self.flops += formula(*args, **kwargs, out_val=out)
        return out


def _meta_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Meta twins of the model's parameters and buffers (a tied tensor keeps one twin), for ``functional_call``."""
    twins: dict[int, torch.Tensor] = {}

    def twin(t: torch.Tensor) -> torch.Tensor:
        if id(t) not in twins:
            twins[id(t)] = torch.empty_like(t, device="meta").requires_grad_(t.requires_grad)
        return twins[id(t)]

    state = {name: twin(t) for name, t in model.named_parameters(remove_duplicate=False)}
    state.update({name: twin(t) for name, t in model.named_buffers(remove_duplicate=False)})
    return state


def _run_meta(model: nn.Module, full_shape: Shape, dtype: torch.dtype, counter: MacCounter) -> None:
    """The forward pass on meta twins of the weights: the user's tensors are neither copied nor touched."""
    x = torch.empty(full_shape, dtype=dtype, device="meta")
    with counter:
        if is_meta(model):
            _check_output(model(x))
        else:
            _check_output(torch.func.functional_call(model, _meta_state(model), (x,)))


def _run_fake(model: nn.Module, full_shape: Shape, dtype: torch.dtype, counter: MacCounter) -> None:
    """The forward pass under ``FakeTensorMode``: slower, but accepts forwards that make tensors of their own."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    with quiet_fake_tensor_log(), FakeTensorMode(allow_non_fake_inputs=True):
        x = torch.empty(full_shape, dtype=dtype, device=device)
        with counter:
            _check_output(model(x))


def _check_output(out: object) -> None:
    if next(iter(_tensors(out)), None) is None:
        raise ShapeError(f"the network's forward returned {type(out).__name__}, not a tensor; "
                         "return the output tensor (or a tuple/list/dict of tensors)")


def _own_params(module: nn.Module) -> list[tuple[int, int, bool]]:
    return [(id(p), p.numel(), p.requires_grad) for p in module.parameters()]


def walk(model: nn.Module, input_shape: Shape, batch_size: int = 1,
         layers: list[tuple[str, str, nn.Module]] | None = None) -> Walk:
    """Run ``model`` on a fake batch of ``input_shape`` and record each layer.

    ``layers`` chooses the rows as ``(name, type, module)``; by default, every
    leaf module. A module called twice gives two rows; its parameters are
    counted at the first call only, so the rows add up to the parameters used.

    The pass runs on ``meta`` twins of the weights (``torch.func.functional_call``);
    a forward that meta cannot run (one that makes CPU tensors of its own, say)
    is run again under ``FakeTensorMode``. Either way nothing is allocated.
    """
    rows = layers if layers is not None else _leaf_layers(model)
    owned = {id(module): _own_params(module) for _, _, module in rows}
    was_training = model.training
    model.eval()  # dropout off, batch norm on running stats: a prediction's shapes
    full_shape = (batch_size, *input_shape)
    dtype = _compute_dtype(model)
    try:
        if not is_meta(model):
            try:
                return _walk_once(rows, owned, input_shape, batch_size, lambda c: _run_meta(model, full_shape, dtype, c))
            except Exception:  # noqa: BLE001 - meta cannot run this forward; FakeTensorMode runs more
                pass
            return _walk_once(rows, owned, input_shape, batch_size, lambda c: _run_fake(model, full_shape, dtype, c))
        return _walk_once(rows, owned, input_shape, batch_size, lambda c: _run_meta(model, full_shape, dtype, c))
    finally:
        model.train(was_training)


def _walk_once(rows: list[tuple[str, str, nn.Module]], owned: dict[int, list], input_shape: Shape,
               batch_size: int, run) -> Walk:  # noqa: ANN001 - run(counter) runs the forward
    records: list[LayerRecord] = []
    seen_params: set[int] = set()
    counter = MacCounter()
    stack: list[list[int]] = []  # [flops at entry, flops of nested recorded rows]
    covered = [0]                # flops inside outermost rows
    entered: list[str] = []      # rows entered and not yet left: where an error happened

    def make_pre_hook(name: str, kind: str):
        def pre_hook(module: nn.Module, args: object) -> None:
            stack.append([counter.flops, 0])
            entered.append(f"layer '{name}' ({kind})")
        return pre_hook

    def make_post_hook(name: str, kind: str):
        def post_hook(module: nn.Module, args: object, output: object) -> None:
            start, nested = stack.pop()
            entered.pop()
            spent = counter.flops - start
            if stack:
                stack[-1][1] += spent
            else:
                covered[0] += spent
            outs = list(_tensors(output))
            params = trainable = 0
            for key, numel, grad in owned[id(module)]:
                if key not in seen_params:
                    seen_params.add(key)
                    params += numel
                    trainable += numel if grad else 0
            first = outs[0] if outs else None
            shape = tuple(first.shape[1:]) if first is not None and first.dim() > 0 else ()
            elements = sum(t.numel() for t in outs) // batch_size
            records.append(LayerRecord(
                index=len(records) + 1, name=name, type=kind, output_shape=shape,
                params=params, trainable_params=trainable,
                macs=(spent - nested) // 2 // batch_size, output_elements=elements, module=module))
        return post_hook

    handles = []
    for name, kind, module in rows:
        handles.append(module.register_forward_pre_hook(make_pre_hook(name, kind)))
        handles.append(module.register_forward_hook(make_post_hook(name, kind)))
    try:
        run(counter)
    except ShapeError:
        raise
    except (RuntimeError, ValueError, TypeError, IndexError, NotImplementedError) as err:
        where = f" in {entered[-1]}" if entered else ""
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ShapeError(
            f"the network does not accept input {list(input_shape)}{where}: {first_line}; "
            "check --input (C,H,W) against what the network expects") from None
    finally:
        for h in handles:
            h.remove()
    return Walk(records, (counter.flops - covered[0]) // 2 // batch_size)


def count_params(model: nn.Module) -> tuple[int, int]:
    """(total, trainable) parameters, each shared parameter counted once."""
    params = {id(p): p for p in model.parameters()}.values()
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)

