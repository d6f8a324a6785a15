"""Activation checkpointing of a model's blocks (Chen et al., "Training Deep Nets with Sublinear
Memory Cost", 2016): keep only each block's input in the forward pass and recompute the block's
inside during the backward pass."""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
from collections.abc import Iterator

import torch
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
    MBConv, a layer of a short spec network — outermost first. A ``Sequential`` of
    plain layers (VGG's ``features``) and a spec network of 4 layers or more are
    split into √n segments instead.
    """
    from cnnlab.spec.build import SpecNet

    if isinstance(model, SpecNet) and len(model.blocks) >= 4:    # as a Sequential of plain layers
        return [_checkpoint_spec_net(model)]
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
                child.forward = functools.partial(_checkpointed, child, child.forward)  # type: ignore[method-assign]
                wrapped.append(prefix + child_name)
                done.append(prefix + child_name)
        elif isinstance(module, nn.Sequential) and len(children) >= 4 and _has_params(module):
            segments = max(2, round(math.sqrt(len(children))))
            module.forward = functools.partial(_checkpointed_sequential, module, segments)  # type: ignore[method-assign]
            wrapped.append(f"{name or 'model'} ({len(children)} layers in {segments} segments)")
            done.append(name)
    return wrapped


def _checkpoint_spec_net(net: nn.Module) -> str:
    """A spec network runs its layers (``net.blocks``, one per spec layer) as √n segments, each but the last
    checkpointed, when gradients are on (training); prediction runs them plainly."""
    layers = list(net.blocks)  # type: ignore[arg-type]
    segments = max(2, round(math.sqrt(len(layers))))
    plain = net.forward

    def forward(x):  # type: ignore[no-untyped-def]
        if not torch.is_grad_enabled():
            return plain(x)
        return _run_segments(layers, segment_bounds(layers, segments), x)

    net.forward = forward  # type: ignore[method-assign]
    return f"model ({len(layers)} layers in {segments} segments)"


def _checkpointed(module: nn.Module, forward, *args, **kwargs):  # type: ignore[no-untyped-def]
    return _checkpoint(forward, [module], *args, **kwargs)


def _checkpoint(fn, modules: list[nn.Module], *args, **kwargs):  # type: ignore[no-untyped-def]
    """``torch.utils.checkpoint`` (non-reentrant), its recomputation leaving batch norms' running statistics alone."""
    return checkpoint(fn, *args, use_reentrant=False,
                      context_fn=lambda: (contextlib.nullcontext(), _running_stats_kept(modules)), **kwargs)


@contextlib.contextmanager
def _running_stats_kept(modules: list[nn.Module]) -> Iterator[None]:
    """The recomputation of a checkpointed segment runs its batch norms in training mode a second time; without
    this they would update their running mean and variance (and count) twice per step. With momentum 0 the update
    keeps them as they are (no tensor is allocated, so the memory is the same); the count is put back after."""
    norms = [m for top in modules for m in top.modules()
             if isinstance(m, nn.modules.batchnorm._NormBase) and m.training and m.track_running_stats]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum in zip(norms, saved):
            m.momentum = momentum
            if m.num_batches_tracked is not None:
                m.num_batches_tracked.sub_(1)


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
    return _run_segments(layers, segment_bounds(layers, segments), x)


def _run_segments(layers: list[nn.Module], starts: list[int], x):  # type: ignore[no-untyped-def]
    """Each segment from ``starts`` checkpointed but the last (its activations are needed at once in backward)."""
    for a, b in itertools.pairwise(starts):
        x = _checkpoint(functools.partial(_run_layers, layers[a:b]), layers[a:b], x)
    return _run_layers(layers[starts[-1]:], x)
