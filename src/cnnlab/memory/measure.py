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
from collections.abc import Callable, Iterator
from typing import Any

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


MEASURED_RANGE = "cnnlab::measured step"


def _profiled_peak(fn, within: str | None = None) -> int:  # type: ignore[no-untyped-def]
    """Largest running sum of CPU allocations minus frees while ``fn`` runs; with ``within``, the largest reached
    inside the ``record_function(within)`` range (the sum still counts what was allocated before it and lives on)."""
    with _quiet_native_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events: list[tuple[int, int, bool]] = []
    stack = [(node, False) for node in prof.profiler.kineto_results.experimental_event_tree()]  # type: ignore[union-attr]
    while stack:
        node, inside = stack.pop()
        inside = inside or node.name == within
        if node.tag == _EventType.Allocation and node.extra_fields.device.type == "cpu":
            events.append((node.start_time_ns, node.extra_fields.alloc_size, inside))
        stack.extend((child, inside) for child in node.children)
    events.sort()
    current = peak = 0
    for _, size, inside in events:
        current += size
        if inside or within is None:
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


def measure_data_parallel(factory: Callable[[], nn.Module], input_shape: tuple[int, ...], batch: int,
                          cfg: StepConfig, world: int = 2, seed: int = 0, timeout: float = 600.0) -> list[int]:
    """Each process's training peak, in bytes, when ``world`` CPU processes train ``factory()``'s network with
    DistributedDataParallel (gloo), ``batch`` samples each — measured in the processes, as
    :func:`measure_memory` measures one.

    The allocator is profiled from before the network is wrapped, so DDP's gradient buckets (a second copy of
    the gradients) count; the peak is the third step's (the first creates the optimizer state, after the
    first DDP rebuilds its buckets in gradient order). ``factory`` must be picklable (the processes are
    spawned): a module-level function or a ``functools.partial`` of one.
    """
    import multiprocessing

    if cfg.device != "cpu":
        raise CnnlabError("measure_data_parallel measures CPU processes (gloo); on CUDA use torchrun and "
                          "torch.cuda.max_memory_allocated")
    ctx = multiprocessing.get_context("spawn")
    results = ctx.SimpleQueue()
    port = _free_port()
    procs = [ctx.Process(target=_ddp_worker, args=(rank, world, port, factory, input_shape, batch, cfg, seed, results))
             for rank in range(world)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout)
    for p in procs:
        if p.is_alive():
            p.kill()
    got = []
    while not results.empty():         # one small message per process that finished (a killed one sends none)
        got.append(results.get())
    errors = [e for _, _, e in got if e]
    if errors or len(got) != world:
        raise CnnlabError(f"data-parallel memory measurement failed: {errors[0] if errors else 'a process died'}")
    return [peak for _, peak, _ in sorted(got)]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ddp_worker(rank: int, world: int, port: int, factory: Callable[[], nn.Module], input_shape: tuple[int, ...],
                batch: int, cfg: StepConfig, seed: int, results: Any) -> None:
    """One process of :func:`measure_data_parallel`: (rank, peak bytes, error) into ``results``."""
    import torch.distributed as tdist
    from torch.nn.parallel import DistributedDataParallel as DDP

    try:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        torch.set_num_threads(1)
        tdist.init_process_group("gloo", rank=rank, world_size=world)
        torch.manual_seed(seed + rank)
        model = factory().to(dtype=cfg.param_dtype, memory_format=cfg.memory_format)
        with torch.no_grad():
            probe = model.eval()(torch.zeros((2, *input_shape), dtype=cfg.param_dtype))
        classes = int(probe.shape[1]) if probe.dim() > 1 else 1
        x, y = make_batch(target_shape(model, tuple(probe.shape)), input_shape, batch, classes, cfg.param_dtype,
                          "cpu", cfg.memory_format)
        del probe
        base = _storage_bytes([*model.parameters(), *model.buffers(), x, *([y] if y is not None else [])])

        def steps() -> None:
            net = DDP(model.train())
            opt = make_optimizer(net, cfg.optimizer, weight_decay=cfg.weight_decay)
            training_step(net, x, y, opt, cfg)
            training_step(net, x, y, opt, cfg)
            with torch.profiler.record_function(MEASURED_RANGE):
                training_step(net, x, y, opt, cfg)

        results.put((rank, base + _profiled_peak(steps, within=MEASURED_RANGE), None))
    except Exception as e:  # noqa: BLE001 - reported to the parent, which raises it as one line
        results.put((rank, 0, f"process {rank}: {type(e).__name__}: {e}"))
    finally:
        if tdist.is_initialized():
            tdist.destroy_process_group()
