"""Real-memory prediction: how many bytes a training step and a prediction take, before running them.

The predictor runs cnnlab's own step (:mod:`cnnlab.memory.step`, the very
function ``cnnlab train`` runs) on fake tensors under an allocation tracker
(:mod:`~cnnlab.memory.tracker`), adds the kernels' scratch memory
(:mod:`~cnnlab.memory.onednn`) and reports the peak
(:func:`~cnnlab.memory.estimate.estimate_memory`); :mod:`~cnnlab.memory.measure`
runs the same step on real tensors to check it; :mod:`~cnnlab.memory.fit`
answers "does it fit, and what then" with the remedies of
:mod:`~cnnlab.memory.remedies` and :mod:`~cnnlab.memory.checkpointing`.

    from cnnlab.memory import estimate_memory
    est = estimate_memory(model, (3, 224, 224), batch_size=32, optimizer="adam")

The textbook half of the analysis (shapes, parameters, MACs, the "all outputs
× batch" memory) lives in :mod:`cnnlab.analysis` and runs no step at all.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"estimate_memory": "cnnlab.memory.estimate", "MemoryEstimate": "cnnlab.memory.estimate",
         "PeakReport": "cnnlab.memory.estimate", "batch_model": "cnnlab.memory.estimate",
         "measure_memory": "cnnlab.memory.measure", "StepConfig": "cnnlab.memory.step",
         "training_step": "cnnlab.memory.step", "fit": "cnnlab.memory.fit", "CpuKernels": "cnnlab.memory.onednn"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cnnlab.memory' has no attribute {name!r}")


__all__ = sorted(_LAZY)
