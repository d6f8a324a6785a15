"""Activation checkpointing of a model's blocks (Chen et al., "Training Deep Nets with Sublinear
Memory Cost", 2016): keep only each block's input in the forward pass and recompute the block's
inside during the backward pass."""

from __future__ import annotations

import functools
import itertools
import math

from torch import nn
from torch.utils.checkpoint import checkpoint


def _is_leaf(m: nn.Module) -> bool:
    return next(m.children(), None) is None


def _has_params(m: nn.Module) -> bool:
    return next(m.parameters(), None) is not None


def checkpoint_segments(model: nn.Module) -> list[str]:
    """Wrap the model's blocks in ``torch.utils.checkpoint``, in place; return what was wrapped.

    The blocks are the composite children (with parameters) of its
    ``nn.Sequential``/``nn.ModuleList`` containers — a ResNet bottleneck, an
    MBConv, a spec layer — outermost first. A ``Sequential`` of plain layers
    (VGG's ``features``) is split into √n segments instead.
    """
    wrapped: list[str] = []
    done: list[str] = []

    def inside_done(name: str) -> bool:
        return any(name == d or name.startswith(d + ".") for d in done)

    for name, module in model.named_modules():
        if inside_done(name) or not isinstance(module, (nn.Sequential, nn.ModuleList)):
            continue
        children = list(module.named_children())
        composite = [(n, c) for n, c in children if not _is_leaf(c) and _has_params(c)]
        prefix = f"{name}." if name else ""
        if composite:
            for child_name, child in composite:
                child.forward = functools.partial(_checkpointed, child.forward)  # type: ignore[method-assign]
                wrapped.append(prefix + child_name)
                done.append(prefix + child_name)
        elif isinstance(module, nn.Sequential) and len(children) >= 4 and _has_params(module):
            segments = max(2, round(math.sqrt(len(children))))
            module.forward = functools.partial(_checkpointed_sequential, module, segments)  # type: ignore[method-assign]
            wrapped.append(f"{name or 'model'} ({segments} segments of {len(children)} layers)")
            done.append(name)
    return wrapped


def _checkpointed(forward, *args, **kwargs):  # type: ignore[no-untyped-def]
    return checkpoint(forward, *args, use_reentrant=False, **kwargs)


def segment_bounds(layers: list[nn.Module], segments: int) -> list[int]:
    """Start index of each segment: evenly spaced, moved past in-place layers.

    A segment must not start with an in-place layer (``ReLU(inplace=True)``):
    it would overwrite the previous segment's output, which that segment's
    recomputation still needs (autograd's "modified by an inplace operation").
    """
    starts = [0]
    for i in range(1, segments):
        b = max(round(i * len(layers) / segments), starts[-1] + 1)
        while b < len(layers) and getattr(layers[b], "inplace", False):
            b += 1
        if b < len(layers) and b not in starts:
            starts.append(b)
    return starts


def _run_layers(layers: list[nn.Module], x):  # type: ignore[no-untyped-def]
    for layer in layers:
        x = layer(x)
    return x


def _checkpointed_sequential(module: nn.Sequential, segments: int, x):  # type: ignore[no-untyped-def]
    """Like ``torch.utils.checkpoint.checkpoint_sequential`` (last segment not checkpointed), safe with in-place layers."""
    layers = list(module.children())
    starts = segment_bounds(layers, segments)
    for a, b in itertools.pairwise(starts):
        x = checkpoint(functools.partial(_run_layers, layers[a:b]), x, use_reentrant=False)
    return _run_layers(layers[starts[-1]:], x)
