"""Reference pooling: max/average over windows, and global pooling per channel.

"same" follows TensorFlow: max pooling pads with −∞ (padding never wins), and
average pooling divides by the number of real elements in each window.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from cnnlab.errors import OpsInputError
from cnnlab.ops.core import SAME_RULE, as_tuple, pad, pad_amounts, trace_positions, windows
from cnnlab.ops.parse import parse_array
from cnnlab.ops.result import TRACE_LIMIT, OpResult, TraceStep, fmt


def _pool(op: str, x: Any, size: Any, stride: Any, padding: str, exact: bool,
          trace_limit: int) -> OpResult:
    x = parse_array(x, "--input", exact)
    if x.ndim not in (1, 2, 3):
        raise OpsInputError(f"--input: {op} takes L (1-D), H×W or C×H×W (2-D) numbers "
                            f"(got shape {list(x.shape)})")
    dims = 1 if x.ndim == 1 else 2
    plain = x.ndim == dims
    xc = x[None] if plain else x  # (C, *S)
    size_t = as_tuple(size, dims, "--size")
    stride_t = as_tuple(stride if stride is not None else size_t, dims, "--stride")
    if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
        raise OpsInputError(f"--padding for pooling must be valid or same (got {padding!r})")
    amounts = pad_amounts(padding, xc.shape[1:], size_t, stride_t, (1,) * dims)
    is_max = op == "maxpool"
    xp = pad(xc, amounts, value=-np.inf if is_max else 0)
    win = windows(xp, size_t, stride_t, (1,) * dims, what="--size window")  # (C, *out, *K)
    axes = tuple(range(-dims, 0))
    # 1 where a window element is real input, 0 where it is padding
    real = windows(pad(np.ones(xc.shape[1:], dtype=np.int64), amounts), size_t, stride_t, (1,) * dims)
    if is_max:
        out = win.max(axis=axes)
    else:
        out = win.sum(axis=axes) / real.sum(axis=axes)  # TensorFlow: padding is not counted
    result = out[0] if plain else out

    trace = []
    for pos in trace_positions(result.shape, trace_limit):
        full = (0, *pos) if plain else pos
        w = win[full]
        vals = w[real[full[1:]] == 1]
        if is_max:
            text = f"y{list(pos)} = max({', '.join(fmt(v) for v in vals)}) = {fmt(result[pos])}"
        else:
            text = f"y{list(pos)} = ({' + '.join(fmt(v) for v in vals)}) / {vals.size} = {fmt(result[pos])}"
        trace.append(TraceStep(index=pos, window=w, reduce="max" if is_max else "mean",
                               value=result[pos], text=text))
    pad_rule = ("padding −∞ (ignored by max)" if is_max else
                "average over real elements only (padding not counted)")
    notes = [f"{dims}-D pooling, window {size_t}, stride {stride_t}, padding {padding}: "
             + ", ".join(f"{a}+{z}" for a, z in amounts) + " (before+after) per axis"]
    convention = f"{'maximum' if is_max else 'mean'} over each window"
    if padding == "same":
        convention += f"; {SAME_RULE}; {pad_rule}"
    return OpResult(op=op, output=result, convention=convention,
                    trace=trace, trace_total=int(result.size),
                    padded_input=xp[0] if plain else xp, notes=notes)


def maxpool(x: Any, size: int | Sequence[int], stride: int | Sequence[int] | None = None,
            padding: str = "valid", exact: bool = False, trace_limit: int = TRACE_LIMIT) -> OpResult:
    """Max pooling; 1-D for ``L`` inputs, 2-D for ``H×W`` or ``C×H×W``; stride defaults to size."""
    return _pool("maxpool", x, size, stride, padding, exact, trace_limit)


def avgpool(x: Any, size: int | Sequence[int], stride: int | Sequence[int] | None = None,
            padding: str = "valid", exact: bool = False, trace_limit: int = TRACE_LIMIT) -> OpResult:
    """Average pooling; 1-D for ``L`` inputs, 2-D for ``H×W`` or ``C×H×W``; stride defaults to size."""
    return _pool("avgpool", x, size, stride, padding, exact, trace_limit)


def _global(op: str, x: Any, exact: bool) -> OpResult:
    x = parse_array(x, "--input", exact)
    if x.ndim not in (1, 2, 3):
        raise OpsInputError(f"--input: {op} takes C×H×W (or C×L, or L for one channel) numbers "
                            f"(got shape {list(x.shape)})")
    xc = x[None] if x.ndim == 1 else x
    flat = xc.reshape(xc.shape[0], -1)
    is_max = op == "global-maxpool"
    out = flat.max(axis=1) if is_max else flat.sum(axis=1) / flat.shape[1]
    trace = []
    for c in range(flat.shape[0]):
        listed = ", ".join(fmt(v) for v in flat[c])
        text = (f"channel {c}: max({listed}) = {fmt(out[c])}" if is_max else
                f"channel {c}: ({' + '.join(fmt(v) for v in flat[c])}) / {flat.shape[1]} = {fmt(out[c])}")
        trace.append(TraceStep(index=(c,), window=xc[c], reduce="max" if is_max else "mean",
                               value=out[c], text=text))
    what = "maximum" if is_max else "mean"
    return OpResult(op=op, output=out, trace=trace, trace_total=int(out.size),
                    convention=f"one {what} per channel over all spatial positions "
                               "(= adaptive pooling to 1×1, then flatten)",
                    notes=[f"{xc.shape[0]} channel(s) of {flat.shape[1]} values each"])


def global_avgpool(x: Any, exact: bool = False) -> OpResult:
    """Mean of each channel of ``C×H×W`` (``exact=True``: rational inputs give fractions)."""
    return _global("global-avgpool", x, exact)


def global_maxpool(x: Any, exact: bool = False) -> OpResult:
    """Maximum of each channel of ``C×H×W``."""
    return _global("global-maxpool", x, exact)
