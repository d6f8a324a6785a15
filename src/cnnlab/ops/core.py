"""Shared machinery of the reference ops: argument checks, padding, sliding windows."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cnnlab.errors import OpsInputError
from cnnlab.padding import same_pad_amounts

SAME_RULE = ("'same' = TensorFlow/Keras rule: out = ceil(in / stride), total padding "
             "max((out-1)*stride + k_eff - in, 0), odd extra zero at the end (bottom/right)")


def as_tuple(value: int | Sequence[int], dims: int, name: str, minimum: int = 1) -> tuple[int, ...]:
    """``2`` or ``(2, 3)`` -> a tuple of ``dims`` ints, each >= ``minimum``."""
    values = (value,) * dims if isinstance(value, (int, np.integer)) else tuple(value)
    if len(values) == 1:
        values = values * dims
    if len(values) != dims or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                      for v in values):
        raise OpsInputError(f"{name}: expected an integer or {dims} integers (got {value!r})")
    if min(values) < minimum:
        raise OpsInputError(f"{name} must be >= {minimum} (got {value!r})")
    return tuple(int(v) for v in values)


def pad_amounts(padding: Any, spatial: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                dilation: Sequence[int]) -> list[tuple[int, int]]:
    """(before, after) per spatial axis for ``valid``, ``same``, an int, or explicit amounts.

    Explicit amounts: 1-D ``(left, right)``; 2-D ``(top, bottom, left, right)``.
    """
    dims = len(spatial)
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return [(0, 0)] * dims
        if mode == "same":
            return [same_pad_amounts(n, k, s, d) for n, k, s, d in zip(spatial, kernel, stride, dilation)]
        raise OpsInputError(f"--padding must be valid, same, an integer or explicit amounts (got {padding!r})")
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        if padding < 0:
            raise OpsInputError(f"--padding must not be negative (got {padding})")
        return [(int(padding), int(padding))] * dims
    amounts = tuple(padding)
    if len(amounts) != 2 * dims or any(not isinstance(a, (int, np.integer)) or a < 0 for a in amounts):
        want = "left,right" if dims == 1 else "top,bottom,left,right"
        raise OpsInputError(f"--padding: expected {want} as non-negative integers (got {padding!r})")
    return [(int(amounts[2 * i]), int(amounts[2 * i + 1])) for i in range(dims)]


def pad(x: np.ndarray, amounts: list[tuple[int, int]], value: Any = 0) -> np.ndarray:
    """Pad the trailing ``len(amounts)`` axes of ``x`` (object arrays too)."""
    widths = [(0, 0)] * (x.ndim - len(amounts)) + list(amounts)
    return np.pad(x, widths, mode="constant", constant_values=value)


def windows(xp: np.ndarray, kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
            what: str = "kernel") -> np.ndarray:
    """All windows of the padded input: shape ``(*leading, *out, *kernel)``.

    ``xp`` is ``(..., *spatial)``; a dilated window takes every ``d``-th element.
    """
    dims = len(kernel)
    spatial = xp.shape[-dims:]
    k_eff = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    for axis, (n, k, ke) in enumerate(zip(spatial, kernel, k_eff)):
        if ke > n:
            dil = f" (effective {ke} with dilation)" if ke != k else ""
            raise OpsInputError(
                f"{what} size {k}{dil} is larger than the padded input ({n}) along axis {axis}; "
                "use --padding same, a smaller window, or a larger input")
    axes = tuple(range(xp.ndim - dims, xp.ndim))
    view = sliding_window_view(xp, k_eff, axis=axes)
    lead = (slice(None),) * (xp.ndim - dims)
    return view[lead + tuple(slice(None, None, s) for s in stride)
                + tuple(slice(None, None, d) for d in dilation)]


def trace_positions(shape: Sequence[int], limit: int) -> list[tuple[int, ...]]:
    """The first ``limit`` output positions in C order."""
    out = []
    for flat in range(min(limit, int(np.prod(shape)) if len(shape) else 1)):
        out.append(tuple(int(i) for i in np.unravel_index(flat, shape)))
    return out
