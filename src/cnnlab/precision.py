"""Numeric precision as ``--precision`` names it, for ``cnnlab train`` and memory prediction alike."""

from __future__ import annotations

import contextlib

import torch


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
