"""Buffers a CPU convolution allocates inside itself, which fake tensors cannot see.

A fake run sees every tensor an ATen op returns but not the scratch buffers a
CPU kernel takes from PyTorch's allocator while it runs, so the tracker adds
them as a transient *workspace* on top of what is live when the op returns.
PyTorch runs a float32 CPU convolution on one of two back ends, chosen by the
same rule as ``ConvParams::use_mkldnn`` in ``aten/src/ATen/native/Convolution.cpp``:

oneDNN ("mkldnn")
    reorders the input, the weight and the output into a blocked channel
    layout (channels padded to a multiple of 8 with AVX2, 16 with AVX-512).
    The sequences below were read off the profiler's allocation events for
    single convolutions (``benchmarks/cpu_conv_workspace_probe.py``)::

        forward   [rtus], in_r, w_r, out_b │ free w_r, in_r, [rtus] │ out │ free out_b
        backward  go_r, w_r, gi_b │ free w_r, go_r │ gi │ free gi_b │ go_r, in_r, gw_b, gb_b │ free go_r, in_r │ gw, gb │ free gw_b, gb_b

    where ``_r`` is a reordered copy, ``_b`` a blocked result, ``rtus`` the
    subsampled input of a strided 1×1 convolution (one image per thread, +128 B);
    a strided data gradient makes ``gi_b`` plain and one more ``gi``-sized
    copy beside ``gi`` (its GEMM scratchpad, 0.1–2 MB in our probes, is not
    modelled); ``in`` is reordered in the forward pass only when it has at
    least 8 channels, in the weight gradient always except for a 3-channel
    (RGB) input, which is also the one case where ``gw_b`` does not pad the
    input channels. When the input is smaller than the kernel in height or
    width (ResNet's last stage on small images), and for depthwise kernels of
    5×5 and up, oneDNN's direct kernels do not apply and the weight gradient
    goes through its GEMM implementation, whose scratchpad holds per-thread
    copies of the weight gradient and an im2col buffer:
    ``t × (4·|w| + C_in/g·k_h·k_w·H_out·W_out·4 B) + 256 B``, where ``t`` is
    every thread for outputs up to 20×20 and one thread from 24×24 (fitted
    exactly for 1, 2 and 4 threads; the switch between 20 and 24 is not
    pinned down).

PyTorch's own ``slow_conv2d`` ("THNN")
    for a single small image with kernels of at most 3×3 and no groups; it
    unfolds the input into an im2col buffer of ``C_in·k_h·k_w × H_out·W_out``
    floats per image in both passes (none for an unpadded 1×1 stride-1 conv).
"""

from __future__ import annotations

import math

import torch

_conv = torch.ops.aten.convolution.default
_conv_bw = torch.ops.aten.convolution_backward.default
_SCRATCH_ALIGN = 256
_RTUS_ALIGN = 128
_GEMM_ALL_THREADS_MAX_SIDE = 20   # measured: every thread up to 20x20 outputs, one from 24x24


def _block() -> int:
    cap = torch.backends.cpu.get_cpu_capability()
    return 16 if "AVX512" in cap.upper() else 8


def _pad(c: int, blk: int) -> int:
    return -(-c // blk) * blk


def uses_onednn(x_shape, w_shape, stride, dilation, groups: int) -> bool:  # type: ignore[no-untyped-def]
    """PyTorch's choice between oneDNN and ``slow_conv2d`` for a float32 CPU convolution."""
    if not torch.backends.mkldnn.is_available() or not torch.backends.mkldnn.enabled:
        return False
    n = x_shape[0]
    kh, kw = w_shape[-2:]
    strided = any(s != 1 for s in stride)
    dilated = any(d != 1 for d in dilation)
    one_by_one_ok = strided or dilated or n >= 16 or kh != 1 or kw != 1 or torch.get_num_threads() > 1
    native_faster = not (groups > 1 or (kh > 3 and kw > 3) or n > 1 or math.prod(x_shape) > 20480)
    return one_by_one_ok and not native_faster


def _im2col_bytes(x_shape, w_shape, y_shape, stride, padding, groups: int, item: int) -> int:  # type: ignore[no-untyped-def]
    kh, kw = w_shape[-2:]
    if kh == 1 and kw == 1 and all(s == 1 for s in stride) and all(p == 0 for p in padding):
        return 0
    return x_shape[0] * (x_shape[1] // groups) * kh * kw * math.prod(y_shape[-2:]) * item * groups


def onednn_conv_workspace(func, args, kwargs, out) -> int:  # type: ignore[no-untyped-def]
    """Peak extra bytes inside a CPU float32 convolution (forward or backward), beyond its outputs."""
    if func is not _conv and func is not _conv_bw:
        return 0
    if func is _conv:
        x, w = args[0], args[1]
        stride, padding, dilation, transposed, groups = args[3], args[4], args[5], args[6], args[8]
        y = out
    else:
        go, x, w = args[0], args[1], args[2]
        stride, padding, dilation, transposed, groups, mask = args[4], args[5], args[6], args[7], args[9], args[10]
        y = go
    if transposed or x.dtype != torch.float32 or x.dim() != 4:
        return 0
    item = x.element_size()
    if not uses_onednn(x.shape, w.shape, stride, dilation, groups):
        return _im2col_bytes(x.shape, w.shape, y.shape, stride, padding, groups, item)
    blk = _block()
    n, cin, h, wd = x.shape
    cout, cin_g, kh, kw = w.shape
    ho, wo = y.shape[-2:]
    out_b = n * _pad(cout, blk) * ho * wo * item
    if func is _conv:
        in_r = n * _pad(cin, blk) * h * wd * item if cin >= blk else 0
        w_r = _pad(cout, blk) * (_pad(cin_g, blk) if cin_g >= blk else cin_g) * kh * kw * item
        out_bytes = math.prod(y.shape) * item
        rtus = 0
        if kh == kw == 1 and any(st > 1 for st in stride):   # 1x1 strided: one subsampled image per thread
            rtus = torch.get_num_threads() * cin * ho * wo * item + _RTUS_ALIGN
        return max(rtus + in_r + w_r + out_b - out_bytes, rtus + out_b)
    go_r = out_b
    gi = math.prod(x.shape) * item if mask[0] else 0
    gi_b = n * _pad(cin, blk) * h * wd * item if mask[0] else 0
    depthwise = groups > 1 and cin_g == 1
    w_r = _pad(cout, blk) * (cin_g if depthwise else _pad(cin_g, blk)) * kh * kw * item if mask[0] else 0
    gw = math.prod(w.shape) * item if mask[1] else 0
    gb = cout * item if mask[2] else 0
    if mask[0] and not depthwise and any(st > 1 for st in stride):
        # strided data gradient: a plain gi_b, then gi and one more gi-sized copy
        # (its GEMM scratchpad, 0.1-2 MB in our probes, is not modelled)
        stages = [go_r + w_r - gw - gb, 2 * gi - gw - gb, 0]
    else:
        stages = [(go_r + w_r + gi_b - gi - gw - gb) if mask[0] else 0, gi_b - gw - gb, 0]
    if mask[1] and (h < kh or wd < kw or (depthwise and kh >= 5)):   # oneDNN's GEMM weight gradient
        threads = torch.get_num_threads() if max(ho, wo) <= _GEMM_ALL_THREADS_MAX_SIDE else 1
        scratch = threads * (4 * gw + cin_g * kh * kw * ho * wo * item) + _SCRATCH_ALIGN
        stages += [scratch, gw]   # gb, gw_b (unpadded) + scratch, then gw_b + gw
    elif mask[1]:
        rgb = cin_g == 3 and not depthwise   # oneDNN reads a 3-channel input as it is
        in_r = 0 if rgb else n * _pad(cin, blk) * h * wd * item
        gw_b = _pad(cout, blk) * (cin_g if rgb or depthwise else _pad(cin_g, blk)) * kh * kw * item
        stages += [go_r + in_r + gw_b + gb - gw - gb, gw_b + gb]
    return max(stages)
