"""Buffers a CPU convolution allocates inside itself, which fake tensors cannot see.

PyTorch runs float32 convolutions on the CPU with oneDNN ("mkldnn"), which
reorders the input, the weight and the output into a blocked channel layout
(channels padded to a multiple of 8 with AVX2, 16 with AVX-512) in buffers
taken from PyTorch's CPU allocator, inside the op. A fake run sees the op's
outputs but not those buffers, so the tracker adds them as a transient
*workspace* on top of what is live when the op returns.

The sequences below were read off the profiler's allocation events for single
convolutions (``benchmarks/cpu_conv_workspace_probe.py``):

forward   in_r, w_r, out_b │ free w_r, in_r │ out │ free out_b
backward  go_r, w_r, gi_b │ free w_r, go_r │ gi │ free gi_b │ go_r, in_r, gw_b, gb_b │ free go_r, in_r │ gw, gb │ free gw_b, gb_b

where ``_r`` is a reordered copy, ``_b`` a blocked result, and ``in`` is
reordered in the forward pass only when it has at least 8 channels.
"""

from __future__ import annotations

import math

import torch

_conv = torch.ops.aten.convolution.default
_conv_bw = torch.ops.aten.convolution_backward.default


def _block() -> int:
    cap = torch.backends.cpu.get_cpu_capability()
    return 16 if "AVX512" in cap.upper() else 8


def _pad(c: int, blk: int) -> int:
    return -(-c // blk) * blk


def onednn_conv_workspace(func, args, kwargs, out) -> int:  # type: ignore[no-untyped-def]
    """Peak extra bytes inside a CPU float32 convolution (forward or backward), beyond its outputs."""
    if func is not _conv and func is not _conv_bw:
        return 0
    if func is _conv:
        x, w = args[0], args[1]
        transposed = args[6]
        y = out
    else:
        go, x, w = args[0], args[1], args[2]
        transposed, mask = args[7], args[10]
        y = go
    if transposed or x.dtype != torch.float32 or x.dim() != 4 or not torch.backends.mkldnn.is_available():
        return 0
    blk, item = _block(), x.element_size()
    n, cin, h, wd = x.shape
    cout, cin_g, kh, kw = w.shape
    ho, wo = y.shape[-2:]
    out_b = n * _pad(cout, blk) * ho * wo * item
    if func is _conv:
        in_r = n * _pad(cin, blk) * h * wd * item if cin >= blk else 0
        w_r = _pad(cout, blk) * (_pad(cin_g, blk) if cin_g >= blk else cin_g) * kh * kw * item
        out_bytes = math.prod(y.shape) * item
        return max(in_r + w_r + out_b - out_bytes, out_b)
    go_r = out_b
    gi = math.prod(x.shape) * item if mask[0] else 0
    gi_b = n * _pad(cin, blk) * h * wd * item if mask[0] else 0
    w_r = _pad(cout, blk) * _pad(cin_g, blk) * kh * kw * item if mask[0] else 0
    gw = math.prod(w.shape) * item if mask[1] else 0
    gw_b = _pad(cout, blk) * _pad(cin_g, blk) * kh * kw * item if mask[1] else 0
    gb = cout * item if mask[2] else 0
    in_r = n * _pad(cin, blk) * h * wd * item if mask[1] else 0
    outputs = gi + gw + gb
    return max(go_r + w_r + gi_b - outputs, gi_b - gw - gb, go_r + in_r + gw_b + gb - gw - gb, gw_b + gb, 0)
