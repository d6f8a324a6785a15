"""Reference 1-D and 2-D convolution (cross-correlation by default), with a trace.

``y[f, i] = bias[f] + Σ_c Σ_j x[c, i·stride + j·dilation] · k[f, c, j]`` on the
padded input — the deep-learning convention, no kernel flip. ``flip=True``
flips the kernel first, which is convolution as signal processing defines it.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from cnnlab.errors import OpsInputError
from cnnlab.ops.core import SAME_RULE, as_tuple, pad, pad_amounts, trace_positions, windows
from cnnlab.ops.parse import parse_array
from cnnlab.ops.result import TRACE_LIMIT, OpResult, TraceStep, fmt

MAX_TERMS = 27  # products written out in one trace line


def _shapes(x: np.ndarray, k: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """Normalise to x: (C, *S), k: (F, C, *K); say whether to drop the filter axis."""
    if x.ndim == dims:
        x = x[None]
    if x.ndim != dims + 1:
        want = "L or C×L" if dims == 1 else "H×W or C×H×W"
        raise OpsInputError(f"--input: expected {want} numbers for conv{dims}d (got shape {list(x.shape)})")
    c = x.shape[0]
    squeeze = k.ndim < dims + 2
    if k.ndim == dims:
        k = k[None, None]
    elif k.ndim == dims + 1:
        # (C, *K) for one filter; with a one-channel input, (F, *K) for several filters
        k = k[None] if k.shape[0] == c else (k[:, None] if c == 1 else k[None])
        squeeze = squeeze and k.shape[0] == 1
    if k.ndim != dims + 2:
        raise OpsInputError(f"--kernel: expected rank {dims} to {dims + 2} "
                            f"([filters][channels]{'[k]' if dims == 1 else '[kh][kw]'}), got {list(k.shape)}")
    if k.shape[1] != c:
        raise OpsInputError(f"--kernel has {k.shape[1]} input channel(s) but --input has {c}; "
                            f"give the kernel as [filters][{c} channels]{'[k]' if dims == 1 else '[kh][kw]'}")
    return x, k, squeeze


def _bias(bias: Any, filters: int, exact: bool) -> np.ndarray | None:
    if bias is None:
        return None
    b = parse_array(bias, "--bias", exact).reshape(-1)
    if b.size == 1:
        b = np.repeat(b, filters)
    if b.size != filters:
        raise OpsInputError(f"--bias has {b.size} values for {filters} filter(s); give one per filter")
    return b


def _conv(op: str, dims: int, x: Any, kernel: Any, bias: Any, stride: Any, padding: Any,
          dilation: Any, flip: bool, exact: bool, trace_limit: int) -> OpResult:
    x = parse_array(x, "--input", exact)
    k = parse_array(kernel, "--kernel", exact)
    plain = x.ndim == dims  # typed without a channel axis: show the padded input the same way
    x, k, squeeze = _shapes(x, k, dims)
    stride_t = as_tuple(stride, dims, "--stride")
    dilation_t = as_tuple(dilation, dims, "--dilation")
    b = _bias(bias, k.shape[0], exact)
    if flip:
        k = k[(slice(None), slice(None)) + (slice(None, None, -1),) * dims]
    amounts = pad_amounts(padding, x.shape[1:], k.shape[2:], stride_t, dilation_t)
    xp = pad(x, amounts)
    win = windows(xp, k.shape[2:], stride_t, dilation_t)  # (C, *out, *K)
    spatial = "ijkl"[:dims]
    kdims = "pqrs"[:dims]
    out = np.einsum(f"c{spatial}{kdims},fc{kdims}->f{spatial}", win, k)
    if b is not None:
        out = out + b.reshape((-1,) + (1,) * dims)
    result_out = out[0] if squeeze else out

    trace = []
    for pos in trace_positions(result_out.shape, trace_limit):
        f, loc = (0, pos) if squeeze else (pos[0], pos[1:])
        w = win[(slice(None),) + loc]  # (C, *K)
        kern = k[f]
        if plain:  # typed without channels: trace without them too
            w, kern = w[0], kern[0]
        terms = [f"{fmt(a)}×{fmt(c) if not _neg(c) else '(' + fmt(c) + ')'}"
                 for a, c in zip(w.reshape(-1), kern.reshape(-1))]
        shown = " + ".join(terms[:MAX_TERMS]) + (f" + … ({len(terms)} terms)" if len(terms) > MAX_TERMS else "")
        bias_text = f" + {fmt(b[f])} (bias)" if b is not None else ""
        trace.append(TraceStep(index=pos, window=w, kernel=kern, reduce="sum",
                               bias=b[f] if b is not None else None, value=result_out[pos],
                               text=f"y{list(pos)} = {shown}{bias_text} = {fmt(result_out[pos])}"))

    convention = ("true convolution: kernel flipped, y[i] = Σ_j x[i·s + j·d] · k[K-1-j]" if flip else
                  "cross-correlation (kernel not flipped, the deep-learning convention): "
                  "y[i] = Σ_j x[i·s + j·d] · k[j]")
    notes = [f"padding {padding!r}: " + ", ".join(f"{a}+{z}" for a, z in amounts) + " zeros (before+after) per axis"]
    if isinstance(padding, str) and padding.lower() == "same":
        convention += f"; {SAME_RULE}"
    return OpResult(op=op, output=result_out, convention=convention, trace=trace,
                    trace_total=int(result_out.size), padded_input=xp[0] if plain else xp,
                    notes=notes)


def _neg(v: Any) -> bool:
    try:
        return v < 0
    except TypeError:
        return False


def conv1d(x: Any, kernel: Any, bias: Any = None, stride: int = 1, padding: Any = "valid",
           dilation: int = 1, flip: bool = False, exact: bool = False,
           trace_limit: int = TRACE_LIMIT) -> OpResult:
    """1-D convolution of ``x`` (``L`` or ``C×L``) with ``kernel`` (``k``, ``C×k`` or ``F×C×k``).

    ``padding``: ``"valid"``, ``"same"`` (TensorFlow rule), an int, or ``(left, right)``.
    """
    return _conv("conv1d", 1, x, kernel, bias, stride, padding, dilation, flip, exact, trace_limit)


def conv2d(x: Any, kernel: Any, bias: Any = None, stride: int | Sequence[int] = 1,
           padding: Any = "valid", dilation: int | Sequence[int] = 1, flip: bool = False,
           exact: bool = False, trace_limit: int = TRACE_LIMIT) -> OpResult:
    """2-D convolution of ``x`` (``H×W`` or ``C×H×W``) with ``kernel``
    (``kh×kw``, ``C×kh×kw`` or ``F×C×kh×kw``).

    ``padding``: ``"valid"``, ``"same"`` (TensorFlow rule), an int, or
    ``(top, bottom, left, right)``.
    """
    return _conv("conv2d", 2, x, kernel, bias, stride, padding, dilation, flip, exact, trace_limit)
