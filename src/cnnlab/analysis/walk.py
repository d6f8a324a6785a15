"""Walk a network without real compute: one record per layer, filled by hooks.

The forward pass runs on the ``meta`` device (models built by cnnlab) or under
``FakeTensorMode`` (any user ``nn.Module`` with real weights): shapes and dtypes
propagate, no activation memory is allocated, so a 150-layer network at batch
1024 is walked in about a second. MACs are PyTorch's own count
(``torch.utils.flop_counter.FlopCounterMode``, which counts convolutions and
matrix products at the ATen level) divided by two: one MAC is one
multiply-accumulate, FLOPs = 2 × MACs.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Iterable

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils.flop_counter import FlopCounterMode

from cnnlab.errors import ShapeError

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


@contextlib.contextmanager
def _quiet_fake_tensor_log():
    """FakeTensorMode logs a traceback before raising on a shape mismatch; we report it in one line."""
    logger = logging.getLogger("torch._subclasses.fake_tensor")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _on_meta(model: nn.Module) -> bool:
    tensors = list(model.parameters()) + list(model.buffers())
    return bool(tensors) and all(t.is_meta for t in tensors)


def _compute_dtype(model: nn.Module) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def walk(model: nn.Module, input_shape: Shape, batch_size: int = 1,
         layers: list[tuple[str, str, nn.Module]] | None = None) -> list[LayerRecord]:
    """Run ``model`` on a fake batch of ``input_shape`` and record each layer.

    ``layers`` chooses the rows as ``(name, type, module)``; by default, every
    leaf module. A module called twice gives two rows; its parameters are
    counted at the first call only, so the rows add up to the parameters used.
    """
    rows = layers if layers is not None else _leaf_layers(model)
    records: list[LayerRecord] = []
    seen_params: set[int] = set()
    counter = FlopCounterMode(display=False)
    stack: list[list[int]] = []  # [flops at entry, flops of nested recorded rows]
    entered: list[str] = []      # rows entered and not yet left: where an error happened

    def make_pre_hook(name: str, kind: str):
        def pre_hook(module: nn.Module, args: object) -> None:
            stack.append([counter.get_total_flops(), 0])
            entered.append(f"layer '{name}' ({kind})")
        return pre_hook

    def make_post_hook(name: str, kind: str):
        def post_hook(module: nn.Module, args: object, output: object) -> None:
            start, nested = stack.pop()
            entered.pop()
            spent = counter.get_total_flops() - start
            if stack:
                stack[-1][1] += spent
            outs = list(_tensors(output))
            params = trainable = 0
            for p in module.parameters():
                if id(p) not in seen_params:
                    seen_params.add(id(p))
                    params += p.numel()
                    trainable += p.numel() if p.requires_grad else 0
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
    was_training = model.training
    model.eval()  # dropout off, batch norm on running stats: a prediction's shapes
    try:
        dtype = _compute_dtype(model)
        full_shape = (batch_size, *input_shape)
        if _on_meta(model):
            with counter:
                model(torch.empty(full_shape, dtype=dtype, device="meta"))
        else:
            device = next((p.device for p in model.parameters()), torch.device("cpu"))
            with _quiet_fake_tensor_log(), FakeTensorMode(allow_non_fake_inputs=True):
                x = torch.empty(full_shape, dtype=dtype, device=device)
                with counter:
                    model(x)
    except (RuntimeError, ValueError, TypeError, IndexError) as err:
        where = f" in {entered[-1]}" if entered else ""
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ShapeError(
            f"the network does not accept input {list(input_shape)}{where}: {first_line}; "
            "check --input (C,H,W) against what the network expects") from None
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return records


def count_params(model: nn.Module) -> tuple[int, int]:
    """(total, trainable) parameters, each shared parameter counted once."""
    params = {id(p): p for p in model.parameters()}.values()
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)

