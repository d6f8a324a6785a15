"""Per-step batches; on a GPU, step k + 1's batch is made in a background thread while step k computes.

A batch is a pure function of (seed, epoch, step): the epoch's shuffle comes
from a generator seeded with ``(seed, epoch)`` and the augmentation draws from
a generator seeded with ``(seed, global step)``. So the batch at global step
k is the same whether the run was interrupted or not, and making it in
another thread cannot change it (torch's global generator, which dropout
uses, is never touched here). PyTorch operators release the GIL, so the
thread's indexing, warping and standardising run beside the model's step
while a GPU computes it. On a CPU the engine makes the batch between steps:
there the thread would run on the cores computing the step, and on 2 cores
it slowed training by 3-8 % while the batch itself (``strong`` augmentation
included) costs 0.5-2 % of a step (docs/benchmarks.md, "Overhead against a
hand-written loop").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch

SEED_STRIDE = 100_003   # seed * SEED_STRIDE + epoch / + global step: disjoint streams for nearby seeds


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled order of ``n`` training items in ``epoch``."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * SEED_STRIDE + epoch))


def step_generator(seed: int, global_step: int) -> torch.Generator:
    """The generator a step's augmentation draws from."""
    return torch.Generator().manual_seed(seed * SEED_STRIDE + 7919 * (global_step + 1))


def prefetch(make: Callable[[int], Any], steps: range, enabled: bool = True) -> Iterator[tuple[int, Any]]:
    """``(step, make(step))`` for each step; with ``enabled``, the next one is made while the caller works."""
    if not enabled:
        for step in steps:
            yield step, make(step)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cnnlab-batches") as pool:
        todo = iter(steps)
        step = next(todo, None)
        pending: Future | None = pool.submit(make, step) if step is not None else None
        while pending is not None:
            item = pending.result()          # re-raises the thread's exception here
            following = next(todo, None)
            pending = pool.submit(make, following) if following is not None else None
            yield step, item                 # type: ignore[misc]
            step = following
