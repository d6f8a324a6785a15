"""Predict the real peak memory of a training step and of a prediction, without running them.

The network is copied onto fake tensors (``FakeTensorMode``: shapes, dtypes
and devices, no data) and a real training step — forward, loss, backward,
optimizer step, ``zero_grad(set_to_none=True)`` — runs through PyTorch's own
autograd and optimizer code under :class:`AllocationTracker`, which adds up
every tensor storage while it is alive. The step is the steady state: the
optimizer's state exists before it starts (primed on zero gradients, without a
first step), the previous step's gradients are already freed. CPU convolutions
add the scratch buffers their oneDNN kernels allocate inside the op
(:mod:`cnnlab.memory.onednn.workspace`), for the kernels this process runs or for
the ones a :class:`~cnnlab.memory.onednn.workspace.CpuKernels` names.
"""

from __future__ import annotations

import contextlib
import copy
import math
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.overrides import TorchFunctionMode

from cnnlab.memory.checkpointing import checkpoint_segments
from cnnlab.memory.step import (
    StepConfig,
    inference_step,
    make_batch,
    target_shape,
    make_optimizer,
    prime_optimizer,
    training_step,
)
from cnnlab.memory.tracker import CATEGORIES, AllocationTracker
from cnnlab.analysis.walk import MacCounter
from cnnlab.fake import is_meta, paused_gc, quiet_fake_tensor_log
from cnnlab.memory.onednn.workspace import MODELLED_TORCH, CpuKernels, cpu_kernel_workspace
from cnnlab.errors import ShapeError

CUDA_BLOCK = 512  # the CUDA caching allocator hands out multiples of 512 bytes


def cuda_block_bytes(nbytes: int) -> int:
    """What ``torch.cuda.memory_allocated`` counts for a request of ``nbytes``: whole 512-byte blocks."""
    return max(CUDA_BLOCK, -(-nbytes // CUDA_BLOCK) * CUDA_BLOCK) if nbytes else 0


@dataclass
class PeakReport:
    """The peak of one kind of step: total bytes, what they hold, and when."""

    peak_bytes: int
    breakdown: dict[str, int]          # category -> bytes live at the peak
    phase: str                         # forward, loss, backward, optimizer step, zero_grad
    op: str                            # the ATen op whose output set the peak
    phase_peaks: dict[str, int] = field(default_factory=dict)
    measured_peak_bytes: int | None = None
    timeline: list[int] = field(default_factory=list, repr=False)  # live bytes after each allocation

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"peak_bytes": self.peak_bytes, "breakdown": dict(self.breakdown),
                             "peak_phase": self.phase, "peak_op": self.op,
                             "phase_peaks": dict(self.phase_peaks)}
        if self.measured_peak_bytes is not None:
            d["measured_peak_bytes"] = self.measured_peak_bytes
            d["relative_error"] = (self.peak_bytes - self.measured_peak_bytes) / self.measured_peak_bytes
        return d


@dataclass
class MemoryEstimate:
    """Predicted peak memory of one training step and of one prediction (``--json`` document)."""

    name: str
    input_shape: tuple[int, ...]
    batch_size: int
    config: StepConfig
    params: int
    training: PeakReport
    inference: PeakReport | None      # None when not asked for
    checkpointed: list[str]
    step_macs: int | None              # MACs of the whole training step (backward ≈ 2 × forward), if counted
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "input_shape": list(self.input_shape), "batch_size": self.batch_size,
            "optimizer": self.config.optimizer, "weight_decay": self.config.weight_decay,
            "precision": self.config.precision, "channels_last": self.config.channels_last,
            "checkpointing": self.config.checkpointing, "device": self.config.device,
            "params": self.params, "training": self.training.to_dict(),
            "inference": self.inference.to_dict() if self.inference else None,
            "checkpointed_segments": self.checkpointed,
            "training_step_macs": self.step_macs, "notes": self.notes,
        }


def _meta_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose parameters and buffers live on the meta device (no data copied)."""
    memo: dict[int, Any] = {}
    for t in list(model.parameters()) + list(model.buffers()):
        m = torch.empty_like(t, device="meta")
        memo[id(t)] = nn.Parameter(m, requires_grad=t.requires_grad) if isinstance(t, nn.Parameter) else m
    return copy.deepcopy(model, memo)


def _as_meta(network: nn.Module) -> nn.Module:
    """The network itself if it already lives on the meta device, else a meta copy of it."""
    return network if is_meta(network) else _meta_copy(network)


def _output_shape(model: nn.Module, input_shape: tuple[int, ...], dtype: torch.dtype) -> tuple[int, ...]:
    """The output shape of ``model`` for a batch of two."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    with torch.no_grad():
        out = model(torch.empty((2, *input_shape), dtype=dtype, device=device))
    return tuple(out.shape)


def _report(tracker: AllocationTracker) -> PeakReport:
    peak = tracker.peak
    return PeakReport(peak.total, {c: peak.by_category.get(c, 0) for c in CATEGORIES}, peak.phase,
                      peak.op, dict(tracker.peaks_by_phase), timeline=tracker.timeline)


@dataclass
class _FakeRun:
    training: PeakReport
    inference: PeakReport | None
    segments: list[str]
    step_macs: int | None
    estimated: frozenset[str] = frozenset()     # the workspace rules used that are estimates


class _CpuAttention(Exception):
    """The network calls ``scaled_dot_product_attention``, whose meta path is not the CPU's."""


# the calls a function mode sees (it does not see inside them): attention itself, and the functions
# of nn.MultiheadAttention / nn.TransformerEncoderLayer that call it
_ATTENTION = frozenset(f for f in (F.scaled_dot_product_attention, F.multi_head_attention_forward,
                                   getattr(torch, "_native_multi_head_attention", None),
                                   getattr(torch, "_transformer_encoder_layer_fwd", None)) if f is not None)


class _AttentionProbe(TorchFunctionMode):
    """Stops a meta step at attention: on meta, ``scaled_dot_product_attention`` takes its math path,
    which keeps an L×L score matrix per head for backward; a CPU step runs a flash-attention kernel that
    keeps none (a small ViT's training peak came out 2.9× too high). Such steps run on fake CPU tensors."""

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204 - torch's protocol
        if func in _ATTENTION:
            raise _CpuAttention
        return func(*args, **(kwargs or {}))


def _run(meta_model: nn.Module, input_shape: tuple[int, ...], batch: int, cfg: StepConfig,
         inference: bool = True, count_macs: bool = True, kernels: CpuKernels | None = None,
         fake: bool | None = None) -> _FakeRun:
    """One fake model: a prediction (if asked), then a steady-state training step, each tracked.

    A float32 NCHW step runs on the meta device, unless the network uses attention (see
    :class:`_AttentionProbe`); mixed precision and channels-last run on fake CPU tensors
    (``FakeTensorMode``, 3–5× slower) because autocast only acts on a real device's tensors and
    meta convolutions do not keep the channels-last layout. ``fake=True``
    forces FakeTensorMode (the tests compare the two).
    """
    # mixed precision and channels-last need a real device's semantics: autocast acts on CPU tensors only, and
    # meta convolutions return NCHW whatever their input (a later flatten then has no copy to count)
    fake = (cfg.precision != "fp32" or cfg.channels_last) if fake is None else fake
    if not fake:
        try:
            with _AttentionProbe():
                return _run_once(meta_model, input_shape, batch, cfg, inference, count_macs, kernels, fake=False)
        except _CpuAttention:   # attention: its CPU kernels are not meta's, so the fake CPU step below
            pass
    return _run_once(meta_model, input_shape, batch, cfg, inference, count_macs, kernels, fake=True)


def _tracker_for(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None,
                 round_bytes: Callable[[int], int], workspace: Any) -> AllocationTracker:
    """A tracker that already counts the model's parameters and buffers and the batch."""
    tracker = AllocationTracker(round_bytes, workspace)
    tracker.track(model.parameters(), "parameters")
    tracker.track(model.buffers(), "buffers")
    tracker.track([x] + ([y] if y is not None else []), "input")
    return tracker


def _phases(tracker: AllocationTracker) -> Callable[[str], None]:
    """The step's phase callback: names the tracker's phase and the category new tensors fall in."""
    def phase(name: str) -> None:
        tracker.phase = name
        tracker.default_category = {"forward": "activations", "loss": "activations"}.get(name, "temporaries")
    return phase


def _run_once(meta_model: nn.Module, input_shape: tuple[int, ...], batch: int, cfg: StepConfig,
              inference: bool, count_macs: bool, kernels: CpuKernels | None, fake: bool) -> _FakeRun:
    model = _meta_copy(meta_model).to(cfg.param_dtype)  # on meta: fake parameters cannot be re-typed
    model = model.to(memory_format=cfg.memory_format)
    round_bytes = cuda_block_bytes if cfg.device == "cuda" else (lambda n: n)
    # CPU convolutions (oneDNN buffers) and eval-mode batch norms allocate inside the op; CUDA's cuDNN workspaces are
    # not modelled (see the notes)
    estimated: set[str] = set()
    workspace = None if cfg.device == "cuda" else partial(cpu_kernel_workspace,
                                                          kernels=kernels or CpuKernels.current(),
                                                          estimated=estimated)
    # torch imports its compiler the first time an op reaches a Python dispatch mode or a Python meta
    # kernel; inside the tracked step that import would keep the frames it ran from (and their
    # tensors) alive past their last use. Import it before anything is tracked.
    import torch._dynamo  # noqa: F401
    mode = FakeTensorMode(allow_non_fake_inputs=True) if fake else contextlib.nullcontext()
    dev = "cpu" if fake else "meta"
    counter = MacCounter()
    # CUDA is simulated on the CPU code path, on meta or fake CPU tensors (fake CUDA tensors need a GPU
    # to exist): the same autograd graph, PyTorch's CUDA default of foreach optimizers, and the CUDA
    # allocator's rounding.
    on_cuda = cfg.device == "cuda"
    cfg = replace(cfg, device="cpu")
    infer_report = None
    with mode:
        if fake:
            model = model.to_empty(device="cpu")
        if inference:
            model.eval()
            x = torch.empty((batch, *input_shape), dtype=cfg.param_dtype, device=dev)
            x = x.contiguous(memory_format=cfg.memory_format) if x.dim() == 4 else x
            tracker = _tracker_for(model, x, None, round_bytes, workspace)
            with tracker:
                tracker.reset_peak()
                out_shape = inference_step(model, x, cfg, _phases(tracker))
            infer_report = _report(tracker)
            del x
        else:
            out_shape = _output_shape(model, input_shape, cfg.param_dtype)
        x, y = make_batch(target_shape(model, tuple(out_shape)), input_shape, batch,
                          out_shape[1] if len(out_shape) > 1 else 1, cfg.param_dtype, dev, cfg.memory_format)
        segments = checkpoint_segments(model) if cfg.checkpointing else []
        tracker = _tracked_training_step(model, x, y, cfg, on_cuda, round_bytes, workspace)
        if count_macs:
            # a second, untracked step: the counter decomposes ops that have no formula, so
            # inside the tracked step the tracker would see other allocations than a real step's
            with counter:
                training_step(model, x, y, tracker.optimizer, cfg, lambda name: None)
    macs = counter.flops // 2 if count_macs else None
    return _FakeRun(_report(tracker), infer_report, segments, macs, frozenset(estimated))


def _tracked_training_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, cfg: StepConfig,
                           on_cuda: bool, round_bytes: Callable[[int], int], workspace: Any) -> AllocationTracker:
    """One training step (:func:`cnnlab.memory.step.training_step`) in steady state, under a tracker that
    counts parameters, buffers, batch, optimizer state and gradients by category; returns the tracker
    (its ``optimizer`` attribute: the primed optimizer, for a second step)."""
    model.train()
    opt = make_optimizer(model, cfg.optimizer, foreach=True if on_cuda else None, weight_decay=cfg.weight_decay)
    prime_optimizer(model, opt)       # the state a first step creates, without running one
    tracker = _tracker_for(model, x, y, round_bytes, workspace)
    tracker.track((t for s in opt.state.values() for t in s.values() if isinstance(t, torch.Tensor)),
                  "optimizer_state")
    for p in model.parameters():
        if p.requires_grad:
            p.register_post_accumulate_grad_hook(lambda p: tracker.track([p.grad], "gradients"))
    with tracker:
        tracker.reset_peak()
        training_step(model, x, y, opt, cfg, _phases(tracker))
    tracker.optimizer = opt           # type: ignore[attr-defined]
    return tracker


def estimate_memory(network: nn.Module, input_shape: Sequence[int], batch_size: int = 1,
                    optimizer: str = "sgd", precision: str = "fp32", checkpointing: bool = False,
                    device: str = "cpu", name: str | None = None,
                    include_inference: bool = True, count_macs: bool = False,
                    kernels: CpuKernels | None = None,
                    weight_decay: float = StepConfig.weight_decay, channels_last: bool = False) -> MemoryEstimate:
    """Predict the peak bytes of one steady-state training step and of one prediction.

    ``network`` is any ``nn.Module`` (with real weights or on the meta device);
    it is not modified and nothing real is allocated for it. Bytes are exact
    integers: on CPU, the sum of live tensor storages (what PyTorch's CPU
    allocator hands out); on CUDA, the same in the caching allocator's
    512-byte blocks — ``torch.cuda.max_memory_allocated``'s unit.
    ``count_macs`` also counts the MACs of the whole step (``step_macs``; slower).
    ``kernels`` predicts for another CPU's oneDNN kernels (ISA, threads) than
    this process's, e.g. ``CpuKernels("avx2", 8)`` for an 8-thread AVX2 laptop.
    ``weight_decay`` is the training run's (``cnnlab train``'s default): plain SGD
    and Adam add it to a copy of each gradient, a temporary the size of the parameter.
    ``channels_last``: the model and batches in NHWC, as ``cnnlab train --channels-last`` runs them.
    """
    if batch_size <= 0:
        raise ShapeError(f"batch size must be a positive integer (got {batch_size})")
    from cnnlab.precision import choose

    # "auto": what cnnlab train would run here (segmentation networks: float32, as cnnlab segment train runs them)
    choice = choose(precision, device, channels_last, kernels, measured=not getattr(network, "dense_prediction", False))
    precision, channels_last = choice.precision, choice.channels_last
    cfg = StepConfig(optimizer, precision, checkpointing, device, weight_decay, channels_last)
    shape = tuple(int(s) for s in input_shape)
    values = batch_size * math.prod(shape)
    if values >= 1 << 62:      # past a 64-bit element count: no allocator, real or simulated, can hold it
        raise ShapeError(f"batch {batch_size:,} × input {list(shape)} is {values:.3g} values per batch, past what a "
                         "tensor can hold (2^62); lower the batch size")
    meta = _as_meta(network)
    try:
        with quiet_fake_tensor_log(), paused_gc():
            run = _run(meta, shape, batch_size, cfg, inference=include_inference, count_macs=count_macs,
                       kernels=kernels)
        training, inference, segments, macs = run.training, run.inference, run.segments, run.step_macs
        estimated = run.estimated
    except (RuntimeError, ValueError, TypeError, IndexError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ShapeError(f"the network cannot be traced on input {list(shape)}: {first}") from err
    notes = [choice.line()] if choice.asked == "auto" else []
    if device == "cuda" and (precision != "fp32" or channels_last):
        notes.append(f"unverified on CUDA: {precision}{' channels-last' if channels_last else ''} steps follow CPU "
                     "autocast's casts and no cuDNN kernel workspace is modelled; compare with --measure on the GPU")
    if device == "cuda":
        notes.append("CUDA: simulated on the CPU code path with PyTorch's CUDA defaults (foreach "
                     "optimizers), counting tensors in the caching allocator's 512-byte blocks as "
                     "torch.cuda.max_memory_allocated does; not counted: the CUDA context "
                     "(~300-500 MiB per process), cuDNN/cuBLAS workspaces, and memory reserved "
                     "but not allocated by the cache (torch.cuda.memory_reserved)")
    if device == "cpu":
        notes += _workspace_notes(kernels or CpuKernels.current(), cfg, training, inference, estimated)
    if checkpointing and not segments:
        notes.append("checkpointing: no block structure found to checkpoint; figures are without it")
    params = sum(p.numel() for p in {id(p): p for p in network.parameters()}.values())
    return MemoryEstimate(name or type(network).__name__, shape, batch_size, cfg, params,
                          training, inference, segments, macs, notes)


def _workspace_notes(kernels: CpuKernels, cfg: StepConfig, training: PeakReport,
                     inference: PeakReport | None, estimated: frozenset[str] = frozenset()) -> list[str]:
    """Say so, with the bytes at stake, when the step's kernels (family, precision, layout) are not the ones
    the workspace rules were measured on, or when an estimated rule was used (a network that hands NHWC
    activations to a convolution in an NCHW step): such a figure may be low, never silently."""
    dtype = {"fp32": "fp32", "fp16-amp": "fp16"}.get(cfg.precision, "bf16")
    if kernels.verified_for(dtype, cfg.channels_last) and not estimated:
        return []
    at_stake = training.breakdown.get("kernel_workspace", 0)
    if inference is not None:
        at_stake = max(at_stake, inference.breakdown.get("kernel_workspace", 0))
    layout = "NHWC (channels-last)" if cfg.channels_last else "NCHW"
    family = kernels.family(dtype)
    gap = KNOWN_GAPS.get((family, dtype, "nhwc" if cfg.channels_last else "nchw"))
    measured = f"; on cnnlab's benchmark grid such predictions were up to {gap:.0%} low" if gap else ""
    used = f" (estimated rules used: {', '.join(sorted(estimated))})" if estimated else ""
    return [f"kernel workspace unverified: the oneDNN scratch rules were measured for float32 NCHW convolutions "
            f"on x86-64 AVX2 and AVX-512 kernels of torch {MODELLED_TORCH}; this step runs {dtype} {layout} "
            f"convolutions on {family} kernels ({kernels.isa}, torch {torch.__version__}, {platform.machine()})"
            f"{used}. "
            f"The figure includes {at_stake:,} B of estimated kernel workspace at the peak, and the real one may "
            f"be larger{measured} (docs/memory.md, Known limits); compare with a real step with --measure"]


# (kernel family, dtype, layout) → the largest under-prediction measured on the benchmark grid (docs/benchmarks.md)
KNOWN_GAPS: dict[tuple[str, str, str], float] = {
    # AMD EPYC Zen 5, 2 threads, torch 2.14.1, batch 8, Adam (2026-12-05): 11 networks natively (avx512_bf16),
    # 4 under ONEDNN_MAX_CPU_ISA=AVX512_CORE and =AVX2; training or inference, whichever was lower
    ("avx512_bf16", "bf16", "nchw"): 0.079,      # pure bfloat16 weight gradients of small nets (lenet5); bf16-amp: 2.4 %
    ("avx512_bf16", "bf16", "nhwc"): 0.030,
    ("avx512_core", "bf16", "nchw"): 0.079,
    ("avx512_core", "bf16", "nhwc"): 0.030,
    ("avx2", "fp32", "nhwc"): 0.008,
}


@dataclass(frozen=True)
class BatchModel:
    """Training-step memory as a function of the batch size, from two predictions.

    Every tensor of a CNN's step is either independent of the batch
    (parameters, gradients, optimizer state) or proportional to it
    (activations), and the sequence of allocations is the same for every
    batch. So the live bytes at each instant ``i`` of the step are exactly
    ``c_i + s_i · batch``, and the peak at any batch is the largest of those
    lines: two fake steps (batch 2 and 3: batch norm refuses a batch of one
    1×1 map in training) give the whole curve.
    """

    const: tuple[int, ...]
    slope: tuple[int, ...]

    def peak(self, batch: int) -> int:
        return max(c + s * batch for c, s in zip(self.const, self.slope))

    def max_batch(self, budget: int, limit: int = 1 << 24) -> int:
        """Largest batch with ``peak(batch) <= budget`` (0 if none)."""
        best = limit
        for c, s in zip(self.const, self.slope):
            if c > budget - s:      # even batch 1 exceeds at this instant
                return 0
            if s > 0:
                best = min(best, (budget - c) // s)
        return best


def batch_model(network: nn.Module, input_shape: Sequence[int], optimizer: str = "sgd",
                precision: str = "fp32", checkpointing: bool = False, device: str = "cpu",
                kernels: CpuKernels | None = None, weight_decay: float = StepConfig.weight_decay,
                channels_last: bool = False) -> BatchModel | None:
    """The :class:`BatchModel` of a network's training step; ``None`` if the step is not affine in the batch."""
    cfg = StepConfig(optimizer, precision, checkpointing, device, weight_decay, channels_last)
    shape = tuple(int(s) for s in input_shape)
    meta = _as_meta(network)
    with quiet_fake_tensor_log():
        t2 = _run(meta, shape, 2, cfg, inference=False, count_macs=False, kernels=kernels).training.timeline
        t3 = _run(meta, shape, 3, cfg, inference=False, count_macs=False, kernels=kernels).training.timeline
    if len(t2) != len(t3):
        return None
    slope = tuple(b - a for a, b in zip(t2, t3))
    return BatchModel(tuple(a - 2 * s for a, s in zip(t2, slope)), slope)
