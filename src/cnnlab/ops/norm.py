"""Reference local response normalization (AlexNet, 2012), across channels.

Two parameter conventions describe the same operation:

* PyTorch ``nn.LocalResponseNorm(size, alpha, beta, k)``:
  ``b_c = a_c / (k + alpha/size · Σ a_j²)^beta``, the sum over ``size``
  channels from ``c - size//2`` to ``c + (size-1)//2`` — alpha is **divided by
  the window size**.
* TensorFlow ``tf.nn.local_response_normalization(depth_radius, bias, alpha, beta)``
  and the AlexNet paper (n, k, α, β):
  ``b_c = a_c / (bias + alpha · Σ a_j²)^beta``, the sum over ``c - r … c + r``.

So TensorFlow's (r, bias, alpha, beta) is PyTorch's (2r+1, alpha·(2r+1), beta, bias).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnlab.errors import OpsInputError
from cnnlab.ops.core import trace_positions
from cnnlab.ops.parse import parse_array
from cnnlab.ops.result import TRACE_LIMIT, OpResult, TraceStep, fmt
from cnnlab.vocab import LRN_TF_DEFAULTS, LRN_TORCH_DEFAULTS


def lrn(x: Any, size: int = LRN_TORCH_DEFAULTS["size"], alpha: float = LRN_TORCH_DEFAULTS["alpha"],
        beta: float = LRN_TORCH_DEFAULTS["beta"], k: float = LRN_TORCH_DEFAULTS["k"],
        trace_limit: int = TRACE_LIMIT, _mapping: str | None = None) -> OpResult:
    """LRN with PyTorch's parameters (``torch.nn.functional.local_response_norm``).

    The defaults are AlexNet's constants (``cnnlab.vocab.LRN_PAPER``) in PyTorch's
    convention: size 5, alpha 5e-4 (= α·n), beta 0.75, k 2.

    ``x`` is ``C``, ``C×L`` or ``C×H×W``; channels are the first axis.
    """
    x = parse_array(x, "--input")
    if x.ndim not in (1, 2, 3):
        raise OpsInputError(f"--input: lrn takes C, C×L or C×H×W numbers (got shape {list(x.shape)})")
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size <= 0:
        raise OpsInputError(f"--size must be a positive integer (got {size!r})")
    if beta < 0:
        raise OpsInputError(f"--beta must not be negative (got {beta})")
    c_total = x.shape[0]
    before, after = size // 2, (size - 1) // 2
    sq = np.pad(x * x, [(before, after)] + [(0, 0)] * (x.ndim - 1))
    sums = np.stack([sq[c:c + size].sum(axis=0) for c in range(c_total)])
    denom_base = k + alpha / size * sums
    if np.any(denom_base <= 0) and beta != int(beta):
        raise OpsInputError(f"k + alpha/size·Σa² is not positive for some channel; use k > 0 "
                            f"(got k={k}, alpha={alpha})")
    out = x / denom_base ** beta

    trace = []
    for pos in trace_positions(out.shape, trace_limit):
        c, rest = pos[0], pos[1:]
        lo, hi = max(c - before, 0), min(c + after, c_total - 1)
        neigh = x[(slice(lo, hi + 1),) + rest]
        squares = " + ".join(f"{fmt(v)}²" for v in neigh)
        text = (f"b{list(pos)} = {fmt(x[pos])} / ({fmt(k)} + {fmt(alpha)}/{size} × ({squares}))^{fmt(beta)} "
                f"= {fmt(x[pos])} / {fmt(denom_base[pos])}^{fmt(beta)} = {fmt(out[pos])}")
        trace.append(TraceStep(index=pos, window=neigh, reduce="lrn", value=out[pos], text=text))
    notes = [f"channels c-{before} … c+{after} (clipped at the edges), PyTorch convention: "
             "alpha is divided by size"]
    if _mapping:
        notes.insert(0, _mapping)
    return OpResult(op="lrn", output=out, trace=trace, trace_total=int(out.size), notes=notes,
                    convention=f"PyTorch: b_c = a_c / (k + alpha/size · Σ_(c-{before}..c+{after}) a_j²)^beta "
                               "(TensorFlow/AlexNet paper: alpha not divided by the window; "
                               "r=depth_radius ↔ size=2r+1, alpha_torch = alpha_tf·size, k = bias)")


def lrn_tf(x: Any, depth_radius: int = LRN_TF_DEFAULTS["depth_radius"], bias: float = LRN_TF_DEFAULTS["bias"],
           alpha: float = LRN_TF_DEFAULTS["alpha"], beta: float = LRN_TF_DEFAULTS["beta"],
           trace_limit: int = TRACE_LIMIT) -> OpResult:
    """LRN with TensorFlow's parameters (``tf.nn.local_response_normalization``).

    The defaults are AlexNet's constants in TensorFlow's spelling (depth radius 2,
    bias 2, alpha 1e-4, beta 0.75), not TensorFlow's own (5, 1, 1, 0.5).

    Mapped to PyTorch's: ``size = 2·depth_radius + 1``, ``alpha = alpha·size``, ``k = bias``.
    """
    if not isinstance(depth_radius, (int, np.integer)) or isinstance(depth_radius, bool) or depth_radius < 0:
        raise OpsInputError(f"--depth-radius must be a non-negative integer (got {depth_radius!r})")
    size = 2 * depth_radius + 1
    mapping = (f"TensorFlow (depth_radius={depth_radius}, bias={fmt(bias)}, alpha={fmt(alpha)}, "
               f"beta={fmt(beta)}) = PyTorch (size={size}, alpha={fmt(alpha)}×{size}={fmt(alpha * size)}, "
               f"beta={fmt(beta)}, k={fmt(bias)})")
    return lrn(x, size=size, alpha=alpha * size, beta=beta, k=bias, trace_limit=trace_limit, _mapping=mapping)
