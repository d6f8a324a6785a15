"""The learning-rate schedule: warm-up then cosine decay, one segment per stretch of training.

A run is one segment from step 0 to its last step: the rate rises along a
half cosine from ``peak / 25`` to ``peak`` over the first ``warmup`` share of
the steps, then falls along a half cosine to ``peak / 25 / 10⁴`` — exactly the
learning rate of PyTorch's ``OneCycleLR`` (its defaults, ``anneal_strategy="cos"``;
momentum is not cycled). When
``cnnlab train --resume RUN --epochs N`` extends a finished or unfinished run,
a new segment starts at the epoch the extension began, so the added epochs
get their own warm-up and decay; the segments are saved in the run's config.

The rate is a pure function of the global step, so a resumed run follows
the schedule of an uninterrupted one exactly.
"""

from __future__ import annotations

import math

import torch

START_DIV = 25.0        # OneCycleLR's div_factor
FINAL_DIV = 1e4         # OneCycleLR's final_div_factor


def segment_bounds(epochs: int, segments: list[int], steps_per_epoch: int) -> list[tuple[int, int]]:
    """(first step, end step) of each segment."""
    starts = [0, *sorted(s for s in segments if 0 < s < epochs)]
    ends = [*starts[1:], epochs]
    return [(a * steps_per_epoch, b * steps_per_epoch) for a, b in zip(starts, ends)]


def _cos(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def factor(step: int, bounds: list[tuple[int, int]], warmup: float) -> float:
    """Multiplier of the peak rate at ``step`` (0-based): ``OneCycleLR``'s two cosine phases per segment."""
    first, end = next(((a, b) for a, b in bounds if a <= step < b), bounds[-1])
    total = max(end - first, 1)
    t = min(step - first, total - 1)
    low, final = 1 / START_DIV, 1 / (START_DIV * FINAL_DIV)
    peak_at = float(warmup * total) - 1           # OneCycleLR: end of phase 1
    if t <= peak_at:
        return _cos(low, 1.0, t / peak_at) if peak_at > 0 else 1.0
    last = total - 1
    return _cos(1.0, final, (t - peak_at) / (last - peak_at)) if last > peak_at else final


def make_scheduler(optimizer: torch.optim.Optimizer, epochs: int, segments: list[int], steps_per_epoch: int,
                   warmup: float) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` stepping once per optimizer step."""
    bounds = segment_bounds(epochs, segments, steps_per_epoch)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: factor(step, bounds, warmup))
