"""Measure the real peak memory of a training step and of a prediction.

Independent of the prediction: the step really runs (twice; the second is
measured), and the bytes come from the allocator, not from our tracker.

- CPU: PyTorch's profiler records every allocation and free made through
  its CPU allocator (``profile_memory=True``); the peak is the largest running
  sum during the measured step, plus the bytes already live when it started
  (parameters, buffers, optimizer state, the input batch), counted from the
  real tensors' storages.
- CUDA: ``torch.cuda.max_memory_allocated()`` after ``reset_peak_memory_stats()``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import torch
from torch import nn
from torch._C._profiler import _EventType
from torch.profiler import ProfilerActivity, profile

from cnnlab.memory.step import (
    StepConfig,
    inference_step,
    make_batch,
    target_shape,
    make_optimizer,
    training_step,
)
from cnnlab.errors import CnnlabError


def _storage_bytes(tensors) -> int:  # type: ignore[no-untyped-def]
    seen: dict[int, int] = {}
    for t in tensors:
        if isinstance(t, torch.Tensor):
            st = t.untyped_storage()
            seen[st.data_ptr()] = st.nbytes()
    return sum(seen.values())


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence what the profiler's C++ side writes to fd 2 (kineto's ``USDT ... profiler_start``,
    ``gpuGetDeviceCount failed`` on machines without a GPU); Python errors still propagate."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _profiled_peak(fn) -> int:  # type: ignore[no-untyped-def]
    """Largest running sum of CPU allocations minus frees while ``fn`` runs."""
    with _quiet_native_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events: list[tuple[int, int]] = []
    stack = list(prof.profiler.kineto_results.experimental_event_tree())  # type: ignore[union-attr]
    while stack:
        node = stack.pop()
        if node.tag == _EventType.Allocation and node.extra_fields.device.type == "cpu":
            events.append((node.start_time_ns, node.extra_fields.alloc_size))
        stack.extend(node.children)
    events.sort()
    current = peak = 0
    for _, size in events:
        current += size
        peak = max(peak, current)
    return peak


def require_device(device: str) -> None:
    """A clear error when ``--measure`` asks for a device this machine does not have."""
    if device == "cuda" and not torch.cuda.is_available():
        raise CnnlabError("--measure with --device cuda needs a CUDA GPU, and this machine has none; "
                          "measure with --device cpu or drop --measure")


def measure_memory(model: nn.Module, input_shape: tuple[int, ...], batch_size: int,
                   cfg: StepConfig, seed: int = 0) -> tuple[int, int]:
    """(training peak, inference peak) in bytes, measured on a real run of ``model`` (modified: trained one step)."""
    require_device(cfg.device)
    torch.manual_seed(seed)
    model = model.to(device=cfg.device, dtype=cfg.param_dtype, memory_format=cfg.memory_format)
    with torch.no_grad():
        probe = model.eval()(torch.zeros((2, *input_shape), dtype=cfg.param_dtype, device=cfg.device))
    target = target_shape(model, tuple(probe.shape))
    classes = int(probe.shape[1]) if probe.dim() > 1 else 1
    del probe
    x, y = make_batch(target, input_shape, batch_size, classes, cfg.param_dtype, cfg.device, cfg.memory_format)
    opt = make_optimizer(model, cfg.optimizer, weight_decay=cfg.weight_decay)
    model.train()
    training_step(model, x, y, opt, cfg)       # warm-up: optimizer state, allocator caches

    def live() -> int:
        state = [t for s in opt.state.values() for t in s.values()]
        return _storage_bytes([*model.parameters(), *model.buffers(), *state, x,
                               *([y] if y is not None else [])])

    if cfg.device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        training_step(model, x, y, opt, cfg)
        torch.cuda.synchronize()
        train_peak = torch.cuda.max_memory_allocated()
        model.eval()
        inference_step(model, x, cfg)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        inference_step(model, x, cfg)
        torch.cuda.synchronize()
        return train_peak, torch.cuda.max_memory_allocated()
    train_peak = live() + _profiled_peak(lambda: training_step(model, x, y, opt, cfg))
    model.eval()
    inference_step(model, x, cfg)
    base = _storage_bytes([*model.parameters(), *model.buffers(), x])
    return train_peak, base + _profiled_peak(lambda: inference_step(model, x, cfg))
