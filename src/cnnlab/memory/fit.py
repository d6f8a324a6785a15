"""``cnnlab fit``: it does not fit in memory — what now? Every remedy, quantified for this network.

Each remedy is a prediction (:func:`estimate_memory`) of the changed training
step, so its figure includes everything the step holds, not a rule of thumb.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from cnnlab.memory.remedies import architecture_candidates, pair_candidates
from cnnlab.memory.estimate import (
    BatchModel,
    MemoryEstimate,
    batch_model,
    estimate_memory,
)
from cnnlab.memory.step import StepConfig
from cnnlab.memory.onednn.workspace import CpuKernels
from cnnlab.errors import CnnlabError
from cnnlab.spec import NetworkSpec, build


@dataclass
class Remedy:
    """One way to make training fit, with its predicted peak and what it costs."""

    name: str
    description: str
    peak_bytes: int          # predicted training peak with the remedy, per device
    fits: bool
    saved_bytes: int         # versus the unchanged step
    cost: str                # what it costs: compute, accuracy risk, hardware
    rank_cost: int           # 0 = free … 5 = changes the model
    max_batch: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class FitReport:
    """The answer of ``cnnlab fit`` (``--json``)."""

    name: str
    input_shape: tuple[int, ...]
    batch_size: int
    budget_bytes: int
    usable_bytes: int        # the budget less a headroom for kernel scratch the prediction does not see
    device: str
    optimizer: str
    precision: str
    peak_bytes: int
    fits: bool
    max_batch: int
    remedies: list[Remedy]
    try_first: str | None
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        return d


def _exact_max_batch(curve: BatchModel, budget: int, predict) -> int:  # type: ignore[no-untyped-def]
    """The curve's answer, confirmed by direct predictions (CUDA's 512-byte rounding bends the line).

    The curve is an upper bound; when a direct prediction says it is too high, the largest fitting batch
    below it is found by bisection (the peak never falls as the batch grows): at most ~25 predictions,
    never a count-down (a slope rounded to 0 on CUDA put the curve's answer at 2^24).
    """
    best = curve.max_batch(budget)
    if best == 0 or predict(best) <= budget:
        return best
    if best > 1 and predict(best - 1) <= budget:      # the usual case: rounding costs one
        return best - 1
    lo, hi = 0, best - 1                              # predict(hi) > budget; batch 0 "fits"
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if predict(mid) <= budget:
            lo = mid
        else:
            hi = mid
    return lo


def headroom(budget: int) -> int:
    """Bytes kept free for kernel scratch the prediction does not model: 0.5 % of the budget, at least 256 KiB.

    On CPU the unmodelled oneDNN scratchpads we measured are at most ~32 KB
    (a first convolution's weight-gradient reduction) to ~2 MB (a strided data
    gradient's GEMM buffer, which never set a peak in our benchmark).
    """
    return max(256 * 1024, budget // 200)


@dataclass
class _Predictor:
    """Predictions of one network's training step with ``fit``'s settings, any of them changed per call."""

    network: nn.Module
    input_shape: tuple[int, ...]
    name: str
    settings: dict[str, Any]          # optimizer, precision, checkpointing, device, kernels, weight_decay, layout

    def est(self, batch: int, net: nn.Module | None = None, **kw: Any) -> MemoryEstimate:
        return estimate_memory(net or self.network, self.input_shape, batch, name=self.name,
                               include_inference=False, **({"count_macs": False, **self.settings} | kw))

    def curve(self, net: nn.Module | None = None, **kw: Any) -> BatchModel:
        model = batch_model(net or self.network, self.input_shape, **(self.settings | kw))
        if model is None:  # pragma: no cover - a step whose ops depend on the batch size
            raise CnnlabError(f"{self.name}: the training step changes with the batch size; cannot fit it")
        return model


def fit(network: nn.Module, input_shape: tuple[int, ...], budget: int, batch_size: int = 32,
        optimizer: str = "sgd", precision: str = "fp32", device: str = "cpu", name: str = "",
        devices: tuple[int, ...] = (2, 4, 8), spec: NetworkSpec | None = None,
        kernels: CpuKernels | None = None, weight_decay: float = StepConfig.weight_decay,
        channels_last: bool = False) -> FitReport:
    """Will training at ``batch_size`` fit in ``budget`` bytes, and if not, what would.

    The largest batch comes from the step's exact batch curve
    (:class:`BatchModel`), confirmed by a direct prediction, against the
    budget less :func:`headroom`. With ``spec`` (the network's spec) the
    architecture remedies — a larger stride, one layer fewer — are predicted too.
    ``kernels`` predicts for another CPU's oneDNN kernels (see :func:`estimate_memory`).
    """
    usable = budget - headroom(budget)
    pred = _Predictor(network, tuple(input_shape), name, {
        "optimizer": optimizer, "precision": precision, "checkpointing": False, "device": device,
        "kernels": kernels, "weight_decay": weight_decay, "channels_last": channels_last})
    base = pred.est(batch_size, count_macs=True)
    base_peak = base.training.peak_bytes
    remedies: list[Remedy] = []

    def add(rname: str, desc: str, p: int, cost: str, rank: int, mb: int | None = None, **details: Any) -> None:
        remedies.append(Remedy(rname, desc, p, p <= usable, base_peak - p, cost, rank, mb, details))

    base_curve = pred.curve()
    best = _exact_max_batch(base_curve, usable, lambda b: pred.est(b).training.peak_bytes)
    notes = _step_remedies(pred, base, base_curve, batch_size, best, usable, add)
    _device_remedies(pred, base, batch_size, devices, add)
    if spec is not None:
        notes += _architecture_remedies(spec, batch_size, usable, base_peak, pred.est, pred.curve, add)
    remedies.sort(key=lambda r: (not r.fits, r.rank_cost, -r.saved_bytes))
    fits = base_peak <= usable
    first = None if fits else next((r.name for r in remedies if r.fits), None)
    return FitReport(name or type(network).__name__, tuple(input_shape), batch_size, budget, usable, device,
                     optimizer, precision, base_peak, fits, best, remedies, first, list(base.notes) + notes)


def _step_remedies(pred: _Predictor, base: MemoryEstimate, base_curve: BatchModel, batch_size: int, best: int,
                   usable: int, add: Callable[..., None]) -> list[str]:
    """A smaller batch, mixed precision, activation checkpointing and plain SGD; the notes they leave."""
    base_peak = base.training.peak_bytes
    optimizer, precision = pred.settings["optimizer"], pred.settings["precision"]
    if best < batch_size:
        add("smaller batch", f"train with batch {best} instead of {batch_size}" if best else
            "no batch fits as the step is now", pred.est(max(best, 1)).training.peak_bytes,
            "none in memory terms; fewer images per step (scale the learning rate with the batch)",
            1, best, batch=best)
    notes: list[str] = []
    if precision == "fp32":
        amp, amp_est = pred.curve(precision="bf16-amp"), pred.est(batch_size, precision="bf16-amp")
        add("mixed precision", "autocast the forward pass to bfloat16 (bf16-amp) or float16 (fp16-amp, "
            "with a GradScaler; the two take the same memory)", amp_est.training.peak_bytes,
            "little accuracy risk; faster on GPUs with tensor cores", 0,
            _exact_max_batch(amp, usable, lambda b: pred.est(b, precision="bf16-amp").training.peak_bytes))
        amp_notes = [n for n in amp_est.notes if "unverified" in n]
        notes += [f"mixed precision remedy: {n}" for n in amp_notes]
    ck = pred.est(batch_size, checkpointing=True, count_macs=True)
    what = (f"the {ck.checkpointed[0]}" if len(ck.checkpointed) == 1 and "segments" in ck.checkpointed[0]
            else f"{len(ck.checkpointed)} blocks")
    if ck.checkpointed and ck.training.peak_bytes >= base_peak:
        notes.append(f"activation checkpointing ({what}) would not lower the peak "
                     f"here ({ck.training.peak_bytes:,} B vs {base_peak:,} B without): the recomputed block's "
                     "activations and gradients are live together at the peak")
    elif ck.checkpointed:
        extra = (ck.step_macs or 0) - (base.step_macs or 0)
        add("activation checkpointing", f"checkpoint {what} (keep their inputs, recompute their insides in "
            "backward)", ck.training.peak_bytes,
            f"+{extra:,} MACs per step (+{100 * extra / max(base.step_macs or 1, 1):.0f} % compute), no accuracy change",
            2, _exact_max_batch(pred.curve(checkpointing=True), usable,
                                lambda b: pred.est(b, checkpointing=True).training.peak_bytes),
            segments=ck.checkpointed, recompute_macs=extra)
    if optimizer in ("adam", "adamw", "sgd-momentum"):
        sgd = pred.curve(optimizer="sgd")
        add("plain SGD", f"{optimizer} keeps {'2 copies' if 'adam' in optimizer else '1 copy'} of the "
            "parameters as state; SGD keeps none", pred.est(batch_size, optimizer="sgd").training.peak_bytes,
            "different training dynamics (tune the learning rate)", 3,
            _exact_max_batch(sgd, usable, lambda b: pred.est(b, optimizer="sgd").training.peak_bytes))
    return notes


def _device_remedies(pred: _Predictor, base: MemoryEstimate, batch_size: int, devices: tuple[int, ...],
                     add: Callable[..., None]) -> None:
    """Data parallel and fully sharded over ``devices`` devices: the batch split, FSDP's state split too.

    Each device's step is predicted at its share of the batch. DistributedDataParallel also holds its gradient
    buckets all along: one more copy of the gradients, the size of the parameters. Measured in two gloo processes
    (tests/memory/test_data_parallel.py) a process's peak is that, or up to one bucket more in some runs (the
    all-reduce's result tensor, when the peak falls before it is let go)."""
    bd = base.training.breakdown
    sharded = bd["parameters"] + bd["gradients"] + bd["optimizer_state"]
    buckets = bd["parameters"]
    for k in devices:
        per = math.ceil(batch_size / k)
        step = pred.est(per).training.peak_bytes
        add(f"data parallel ×{k}", f"{k} devices, batch {per} each (DistributedDataParallel; the peak of each "
            "device, its gradient buckets included)",
            step + buckets,
            f"needs {k} devices; gradient all-reduce each step", 4, per_device_batch=per, devices=k,
            ddp_bucket_bytes=buckets)
        p = step - sharded + math.ceil(sharded / k)
        add(f"fully sharded ×{k}", f"{k} devices, batch {per} each, parameters/gradients/optimizer state "
            f"split {k} ways (FSDP; the peak of each device)", p, f"needs {k} devices; more communication than data parallel",
            4, per_device_batch=per, devices=k)


def _architecture_remedies(spec: NetworkSpec, batch_size: int, usable: int, base_peak: int,  # type: ignore[no-untyped-def]
                           est, curve, add) -> list[str]:
    """The best larger-stride and the best removed-layer variant of a spec network, each predicted; notes."""
    def predict(new: NetworkSpec) -> int:
        return est(batch_size, build(new, device="meta")).training.peak_bytes

    found = architecture_candidates(spec, predict)
    notes: list[str] = []
    if spec.layers[-1].TYPE == "dense":
        notes.append(f"remove layer: the output layer ({spec.layer_names()[-1]}, dense) cannot go: it produces "
                     "the classes")
    singles = [c for c in found if c.kind == "remove layer"]
    if not any(c.peak_bytes <= usable for c in singles):   # "one or more layers": try pairs
        found += pair_candidates(spec, predict)
    for kind in ("larger stride", "remove layer", "remove layers"):
        tried = [c for c in found if c.kind == kind]
        if kind == "remove layers" and not tried:
            continue
        options = [c for c in tried if c.peak_bytes < base_peak]
        if not options:
            notes.append(f"{kind}: none of the {len(tried)} valid variants lowers the peak" if tried else
                         f"{kind}: no valid variant (shapes would not work)")
            continue
        c = options[0]
        shapes = (f"{c.layer} now outputs {'×'.join(map(str, c.layer_output))}, " if c.layer_output else "") + \
            f"network output {'×'.join(map(str, c.output))}, {c.params:,} parameters (was {spec.total_params():,})"
        where = f"layers {c.layer}" if kind == "remove layers" else f"layer {c.index} ({c.layer})"
        net = build(c.spec, device="meta")
        add(kind, f"{where}: {c.change}; {shapes}", c.peak_bytes,
            "changes the architecture: retrain; accuracy risk (less spatial detail / capacity)", 5,
            _exact_max_batch(curve(net), usable, lambda b, net=net: est(b, net).training.peak_bytes), **c.details(spec),
            alternatives=[{"layer": o.layer, "change": o.change, "peak_bytes": o.peak_bytes}
                          for o in options[1:4]])
    return notes


def fit_target(target: Any, budget: int, batch_size: int = 32, optimizer: str = "sgd", precision: str = "fp32",
               device: str = "cpu", kernels: CpuKernels | None = None,
               weight_decay: float = StepConfig.weight_decay, channels_last: bool = False) -> FitReport:
    """:func:`fit` for a resolved TARGET (:class:`cnnlab.targets.Target`); a spec also gets the architecture remedies."""
    from cnnlab.spec import build

    spec = target.network.with_input(target.input_shape) if isinstance(target.network, NetworkSpec) else None
    net = build(target.network, device="meta") if spec is not None else target.network
    return fit(net, target.input_shape, budget, batch_size, optimizer, precision, device, name=target.name, spec=spec,
               kernels=kernels, weight_decay=weight_decay, channels_last=channels_last)
