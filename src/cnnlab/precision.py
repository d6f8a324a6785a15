"""Numeric precision as ``--precision`` names it, for ``cnnlab train`` and memory prediction alike."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch

# oneDNN kernel families that compute bfloat16 natively (cnnlab.memory.onednn.workspace.bf16_family)
NATIVE_BF16 = ("amx", "avx512_bf16")


@dataclass(frozen=True)
class Choice:
    """What ``--precision auto`` (or an explicit precision) comes to on a machine, and why."""

    asked: str
    precision: str
    channels_last: bool
    why: str

    def line(self) -> str:
        layout = ", channels-last" if self.channels_last else ""
        return f"precision {self.asked} → {self.precision}{layout}: {self.why}"


def choose(precision: str, device: str, channels_last: bool = False, kernels: Any = None,
           measured: bool = True) -> Choice:
    """``auto``: on a CPU that computes bfloat16 natively (AMX, AVX512-BF16), bf16 autocast with channels-last
    batches (measured faster there: docs/benchmarks.md); float32 elsewhere; on CUDA bf16 autocast, or fp16
    with a GradScaler where the GPU has no bfloat16. ``kernels`` (a ``CpuKernels``) answers for another CPU
    (``cnnlab memory --cpu``). ``measured=False`` (segmentation networks) keeps fp32: the fast path was measured
    faster, and its memory predicted to the byte, for classification networks only. Any other precision is kept
    as asked."""
    if precision != "auto":
        return Choice(precision, precision, channels_last, "as asked")
    if device == "cuda":
        bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return Choice("auto", "bf16-amp" if bf16 else "fp16-amp", channels_last,
                      "the GPU computes bfloat16" if bf16 else "no bfloat16 on this GPU: float16 with a GradScaler")
    from cnnlab.memory.onednn.workspace import CpuKernels

    k = kernels if kernels is not None else CpuKernels.current()
    if k.bf16 in NATIVE_BF16 and not measured:
        return Choice("auto", "fp32", channels_last, "segmentation networks train in float32 unless asked (the "
                      "bfloat16 fast path was measured for classification)")
    if k.bf16 in NATIVE_BF16:
        return Choice("auto", "bf16-amp", True, f"this CPU computes bfloat16 natively ({k.bf16} kernels)")
    return Choice("auto", "fp32", channels_last,
                  f"no native bfloat16 on this CPU ({k.isa} kernels, bfloat16 {k.bf16}): float32")


def autocast(precision: str, device: str) -> contextlib.AbstractContextManager:
    """Mixed precision: the forward pass runs matmuls/convolutions in 16 bits (``fp16-amp``, ``bf16-amp``);
    ``fp32`` and pure ``bf16`` (weights already bfloat16) need no autocast."""
    if precision == "fp16-amp":
        return torch.autocast(device, dtype=torch.float16)
    if precision == "bf16-amp":
        return torch.autocast(device, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def param_dtype(precision: str) -> torch.dtype:
    """The dtype of the weights: bfloat16 for pure ``bf16``, float32 otherwise (amp keeps float32 masters)."""
    return torch.bfloat16 if precision == "bf16" else torch.float32
