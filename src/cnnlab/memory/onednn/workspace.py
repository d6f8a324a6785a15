"""Buffers a CPU convolution allocates inside itself, which fake tensors cannot see.

A fake run sees every tensor an ATen op returns but not the scratch buffers a
CPU kernel takes from PyTorch's allocator while it runs, so the tracker adds
them as a transient *workspace* on top of what is live when the op returns.
What those buffers are depends on the kernels, so the rules are keyed on what
the kernels depend on: the back end PyTorch picks (the same rule as
``ConvParams::use_mkldnn`` in ``aten/src/ATen/native/Convolution.cpp``), the
instruction set oneDNN runs (:class:`CpuKernels`: AVX2 or AVX-512, which sets
the channel block, 8 or 16 floats) and the number of threads.

oneDNN ("mkldnn")
    reorders the input, the weight and the output into a blocked channel
    layout (channels padded to a multiple of the block). The sequences below
    were read off the profiler's allocation events for single convolutions
    (``benchmarks/cpu_conv_workspace_probe.py``)::

        forward   [rtus], in_r, w_r, out_b │ free w_r, in_r, [rtus] │ out │ free out_b
        backward  go_r, w_r, gi_b │ free w_r, go_r │ gi │ free gi_b │ go_r, in_r, gw_b, [scratchpad], gb_b
                  │ free scratchpad, go_r, in_r │ gw, gb │ free gw_b, gb_b

    where ``_r`` is a reordered copy, ``_b`` a blocked result, ``rtus`` the
    subsampled input of a strided 1×1 convolution (one image per thread, +128 B);
    a strided data gradient makes ``gi_b`` plain and one more ``gi``-sized
    copy beside ``gi`` (its GEMM scratchpad, 0.1–2 MB in our probes, is not
    modelled); ``in`` is reordered in the forward pass only when it has at
    least one block of channels.

    The weight gradient runs on one of three kernels, chosen as oneDNN's
    dispatch list does (first that accepts the problem):

    * AVX-512 direct (``jit:avx512_core``), AVX-512 only: one group, or channels
      per group multiples of 16; kernels up to 14 wide. A 1-, 2- or 3-channel
      input is read as it is (oneDNN's "first convolution"); 4–15 input
      channels are refused and go to the AVX2 kernel.
    * AVX2 direct (``jit:avx2``): block 8; a 3-channel input read as it is;
      needs the map at least as tall as the kernel, no dilation, kernels under 14 wide.
    * GEMM (``x64:gemm:jit``), for the rest (small maps on AVX2, dilation, depthwise
      5×5 and up): its scratchpad holds per-thread copies of the weight gradient and
      an im2col buffer: ``t × (4·|w| + C_in/g·k_h·k_w·H_out·W_out·4 B) + 256 B``,
      where ``t`` is every thread when ``H_out·W_out / threads < 256`` (and
      more than one image), else one.

    The direct kernels' scratchpad (per-thread partial weight and bias sums,
    a padded bias) follows oneDNN's thread balancing: :mod:`cnnlab.memory.onednn.threads`.

PyTorch's own ``slow_conv2d`` ("THNN")
    for a single small image with kernels of at most 3×3 and no groups; it
    unfolds the input into an im2col buffer of ``C_in·k_h·k_w × H_out·W_out``
    floats per image in both passes (none for an unpadded 1×1 stride-1 conv).

Measured and tested on oneDNN 3.12 (torch 2.14.1) with AVX2 and AVX-512 kernels
at 1 and 2 threads; other CPUs and versions are reported as unverified
(:attr:`CpuKernels.verified`).
"""

from __future__ import annotations

import functools
import math
import platform
from dataclasses import dataclass

import torch

from cnnlab.memory.onednn.threads import (
    WeightGradShape,
    avx2_scratchpad,
    avx512_1x1_scratchpad,
    avx512_scratchpad,
    depthwise_scratchpad,
    gemm_threads,
)

_conv = torch.ops.aten.convolution.default
_conv_bw = torch.ops.aten.convolution_backward.default
_batch_norm = torch.ops.aten.native_batch_norm.default
_max_pool_bw = torch.ops.aten.max_pool2d_with_indices_backward.default
_mean_dim = torch.ops.aten.mean.dim
_SCRATCH_ALIGN = 256
_RTUS_ALIGN = 128
_PADDED_BIAS_ALIGN = 128        # oneDNN's scratchpad alignment for the zero-padded bias
MODELLED_ISAS = ("avx2", "avx512")
MODELLED_TORCH = "2.14"           # oneDNN 3.12: the version whose kernels were measured
# oneDNN's instruction-set caps (ONEDNN_MAX_CPU_ISA), lowest first; a cap limits the kernels to its level
# oneDNN's instruction-set caps (ONEDNN_MAX_CPU_ISA) by rank, lowest first; aliases share a rank
ONEDNN_ISA_RANK = {"SSE41": 0, "AVX": 1, "AVX2": 2, "AVX2_VNNI": 3, "AVX2_VNNI_2": 4, "AVX512_CORE": 5,
                   "AVX512_CORE_VNNI": 6, "AVX512_CORE_BF16": 7, "AVX512_CORE_FP16": 8, "AVX10_1_512": 8,
                   "AVX512_CORE_AMX": 9, "AVX10_1_512_AMX": 9, "AVX512_CORE_AMX_FP16": 10,
                   "AVX10_1_512_AMX_FP16": 10, "ALL": 11, "DEFAULT": 11}
ONEDNN_ISA_ORDER = tuple(ONEDNN_ISA_RANK)
# (kernel family, convolution dtype, layout) whose scratch rules were measured against real steps on the
# benchmark grid (docs/benchmarks.md); every other combination is flagged "unverified" with the bytes at stake
VERIFIED = frozenset({("avx2", "fp32", "nchw"), ("avx512", "fp32", "nchw")})


@functools.lru_cache(maxsize=1)
def _cpu_flags() -> frozenset[str]:
    """The CPU's bfloat16 feature flags (read once per process): torch's own probes, which work on every OS,
    and Linux's /proc/cpuinfo."""
    probes = {"avx512_bf16": "_is_avx512_bf16_supported", "amx_bf16": "_is_amx_tile_supported"}
    found = {flag for flag, name in probes.items() if _probe(name)}
    return frozenset(found) | _proc_flags()


def _probe(name: str) -> bool:
    """``torch.cpu.<name>()``; False where this torch lacks the probe or it cannot run."""
    probe = getattr(torch.cpu, name, None)
    try:
        return bool(probe is not None and probe())
    except RuntimeError:          # a build without the CPU feature query: say "not found", the note still flags
        return False


def _proc_flags() -> frozenset[str]:
    """The CPU's feature flags in Linux's /proc/cpuinfo; empty where there is no such file (macOS, Windows)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = next((line for line in f if line.startswith("flags")), "flags:")
    except OSError:
        return frozenset()
    return frozenset(flags.split(":", 1)[1].split())


def _isa_cap() -> int:
    """The rank (:data:`ONEDNN_ISA_RANK`) of ``ONEDNN_MAX_CPU_ISA`` (or ``DNNL_MAX_CPU_ISA``); no cap: the top."""
    import os

    cap = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "ALL").upper()
    return ONEDNN_ISA_RANK.get(cap, ONEDNN_ISA_RANK["ALL"])


def bf16_family(isa: str, flags: frozenset[str], cap: int) -> str:
    """The kernel family oneDNN runs bfloat16 convolutions on: "amx", "avx512_bf16" (native dot products),
    "avx512_core" (bfloat16 converted in registers) or "none" (no bfloat16 kernels: reference code)."""
    at_least = lambda name: cap >= ONEDNN_ISA_RANK[name]  # noqa: E731
    if isa == "avx512" and "amx_bf16" in flags and at_least("AVX512_CORE_AMX"):
        return "amx"
    if isa == "avx512" and "avx512_bf16" in flags and at_least("AVX512_CORE_BF16"):
        return "avx512_bf16"
    if isa == "avx512" and at_least("AVX512_CORE"):
        return "avx512_core"
    return "none"


@dataclass(frozen=True)
class CpuKernels:
    """What the CPU kernels' scratch buffers depend on: oneDNN's instruction set, the thread count, and the
    family of the bfloat16 kernels ("unknown" when predicting for another machine)."""

    isa: str        # "avx2", "avx512" (ATen's capability, lower case), or what else the CPU reports
    threads: int
    bf16: str = "unknown"

    @classmethod
    def current(cls) -> CpuKernels:
        """The kernels this process runs (honours ``ONEDNN_MAX_CPU_ISA``/``ATEN_CPU_CAPABILITY``)."""
        isa, cap = torch.backends.cpu.get_cpu_capability().lower(), _isa_cap()
        if isa == "avx512" and cap < ONEDNN_ISA_RANK["AVX512_CORE"]:
            isa = "avx2"                 # oneDNN capped below AVX-512: its convolutions run AVX2 kernels
        return cls(isa, torch.get_num_threads(), bf16_family(isa, _cpu_flags(), cap))

    def family(self, dtype: str) -> str:
        """The kernel family of convolutions in ``dtype`` ("fp32", "bf16", "fp16")."""
        return self.isa if dtype == "fp32" else self.bf16 if dtype == "bf16" else f"{self.isa}-{dtype}"

    def verified_for(self, dtype: str, channels_last: bool) -> bool:
        """Whether the scratch rules were measured on these kernels for ``dtype`` convolutions in that layout."""
        return self.verified and (self.family(dtype), dtype, "nhwc" if channels_last else "nchw") in VERIFIED

    @property
    def block(self) -> int:
        """oneDNN's channel block for float32: one vector register of floats."""
        return 16 if self.isa == "avx512" else 8

    @property
    def verified(self) -> bool:
        """Whether the workspace rules were measured on kernels like these."""
        return (self.isa in MODELLED_ISAS and platform.machine().lower() in ("x86_64", "amd64")
                and torch.__version__.startswith(MODELLED_TORCH))


def _pad(c: int, blk: int) -> int:
    return -(-c // blk) * blk


def uses_onednn(x_shape, w_shape, stride, dilation, groups: int, threads: int | None = None) -> bool:  # type: ignore[no-untyped-def]
    """PyTorch's choice between oneDNN and ``slow_conv2d`` for a float32 CPU convolution."""
    if not torch.backends.mkldnn.is_available() or not torch.backends.mkldnn.enabled:
        return False
    threads = torch.get_num_threads() if threads is None else threads
    n = x_shape[0]
    kh, kw = w_shape[-2:]
    strided = any(s != 1 for s in stride)
    dilated = any(d != 1 for d in dilation)
    one_by_one_ok = strided or dilated or n >= 16 or kh != 1 or kw != 1 or threads > 1
    native_faster = not (groups > 1 or (kh > 3 and kw > 3) or n > 1 or math.prod(x_shape) > 20480)
    return one_by_one_ok and not native_faster


def _im2col_bytes(x_shape, w_shape, y_shape, stride, padding, groups: int, item: int) -> int:  # type: ignore[no-untyped-def]
    kh, kw = w_shape[-2:]
    if kh == 1 and kw == 1 and all(s == 1 for s in stride) and all(p == 0 for p in padding):
        return 0
    return x_shape[0] * (x_shape[1] // groups) * kh * kw * math.prod(y_shape[-2:]) * item * groups


def cpu_kernel_workspace(func, args, kwargs, out, kernels: CpuKernels | None = None,  # type: ignore[no-untyped-def]
                         estimated: set[str] | None = None) -> int:
    """Peak extra bytes a CPU op allocates inside itself, beyond its outputs: convolutions (oneDNN's or
    PyTorch's own buffers), eval-mode batch norm, and the fast path's max-pool gradient and half-precision
    mean; 0 for every other op. The rules that are estimates (not measured on the benchmark grid to 3 %) add
    their name to ``estimated``, so a step that used one is reported unverified whatever its settings."""
    if func is _batch_norm:
        return _batch_norm_eval(args)
    if func is _max_pool_bw:
        n = _max_pool_backward(args)
        return _mark(estimated, "channels-last max-pool gradient", n)
    if func is _mean_dim:
        return _mark(estimated, "half-precision mean", _half_mean(args, out))
    n = onednn_conv_workspace(func, args, kwargs, out, kernels)
    if estimated is not None and func in (_conv, _conv_bw):
        x, w = (args[0], args[1]) if func is _conv else (args[1], args[2])
        if x.dtype != torch.float32 and x.dim() == 4:
            estimated.add(f"{str(x.dtype).removeprefix('torch.')} convolutions")
        elif x.dim() == 4 and (_channels_last(x) or _channels_last(w)):
            estimated.add("channels-last convolutions")
    return n


def _mark(estimated: set[str] | None, rule: str, n: int) -> int:
    if estimated is not None and n:
        estimated.add(rule)
    return n


def _half_mean(args, out) -> int:  # type: ignore[no-untyped-def]
    """A bfloat16/float16 mean on CPU (global average pooling, squeeze-and-excitation) sums in float32: a float32
    copy of the whole input and a float32 result live while it runs (``at::mean`` → ``sum(dtype=float)``;
    read off the profiler's allocations)."""
    x = args[0]
    if x.dtype not in (torch.bfloat16, torch.float16) or x.device.type not in ("cpu", "meta"):
        return 0
    return 4 * x.numel() + 4 * out.numel()


def _max_pool_backward(args) -> int:  # type: ignore[no-untyped-def]
    """A max-pool gradient whose input is channels-last but whose incoming gradient is not (the gradient a
    flatten hands back is NCHW): ATen's CPU kernel works in the gradient's layout, on a contiguous copy of the
    indices and a gradient-input buffer it then copies into the channels-last result (read off the
    profiler's allocations; ``aten/src/ATen/native/DilatedMaxPool2d.cpp``)."""
    grad, x, indices = args[0], args[1], args[7]
    if x.dim() != 4 or not _channels_last(x) or grad.is_contiguous(memory_format=torch.channels_last):
        return 0
    return indices.numel() * indices.element_size() + x.numel() * x.element_size()


def onednn_conv_workspace(func, args, kwargs, out, kernels: CpuKernels | None = None) -> int:  # type: ignore[no-untyped-def]
    """Peak extra bytes inside a CPU convolution (forward or backward), beyond its outputs: measured rules for
    float32 NCHW; bfloat16/float16 NCHW take the same reorders at their element size and NHWC its own
    estimate (:func:`_channels_last_workspace`) — both flagged unverified unless measured (:data:`VERIFIED`).

    ``kernels`` defaults to this process's (:meth:`CpuKernels.current`).
    """
    if func is not _conv and func is not _conv_bw:
        return 0
    if func is _conv:
        x, w = args[0], args[1]
        stride, padding, dilation, transposed, groups = args[3], args[4], args[5], args[6], args[8]
    else:
        x, w = args[1], args[2]
        stride, padding, dilation, transposed, groups = args[4], args[5], args[6], args[7], args[9]
    if transposed or x.dtype not in (torch.float32, torch.bfloat16, torch.float16) or x.dim() != 4:
        return 0
    env = kernels or CpuKernels.current()
    if x.dtype != torch.float32 and env.bf16 == "none":     # no oneDNN kernels for it: PyTorch's slow_conv2d
        y = out if func is _conv else args[0]
        im2col = _im2col_bytes(x.shape, w.shape, y.shape, stride, padding, groups, x.element_size())
        if func is _conv:
            return im2col
        return max(im2col, 4 * y.numel() if args[10][2] else 0)     # the bias gradient sums in float32
    if (_channels_last(x) or _channels_last(w)) and env.isa == "avx512":   # mkldnn_conv_use_channels_last;
        return _channels_last_workspace(func, x, w, groups, env)   # AVX2 has no NHWC kernels: it reorders as NCHW
    if x.dtype == torch.float32 and not uses_onednn(x.shape, w.shape, stride, dilation, groups, env.threads):
        y = out if func is _conv else args[0]
        return _im2col_bytes(x.shape, w.shape, y.shape, stride, padding, groups, x.element_size())
    if func is _conv:
        return _forward(x, w, out, stride, args[2] is not None, env)
    return _backward(args[0], x, w, stride, dilation, groups, args[10], env)


def _channels_last(x: torch.Tensor) -> bool:
    """A 4-D tensor with NHWC strides, by its exact strides (as PyTorch's ``suggest_memory_format`` sees it): a
    one-channel NHWC tensor is also NCHW-contiguous by ``is_contiguous``, but its strides tell them apart."""
    if x.dim() != 4:
        return False
    _, c, h, w = x.shape
    return tuple(x.stride()) == (h * w * c, 1, w * c, c) and tuple(x.stride()) != (c * h * w, h * w, w, 1)


CL_FORWARD_SCRATCH = 12_336     # oneDNN's NHWC brgemm convolution scratchpad (most shapes, oneDNN 3.12)
CL_BACKWARD_SCRATCH = 12_464    # its data-gradient scratchpad


def _channels_last_workspace(func, x, w, groups: int, env: CpuKernels) -> int:  # type: ignore[no-untyped-def]
    """NHWC convolutions (``--channels-last``) read and write activations in place: no reordered copies of
    the input or output, only the reordered weight and a small scratchpad (read off single convolutions;
    the weight gradient's scratchpad varies with the shape and is estimated by the weight's size). An
    estimate: every NHWC row is reported unverified (:data:`VERIFIED`)."""
    item = x.element_size()
    cout, cin_g, kh, kw = w.shape
    depthwise = groups > 1 and cin_g == 1
    w_r = cout * (cin_g if depthwise or cin_g < env.block else _pad(cin_g, env.block)) * kh * kw * item
    if func is _conv:
        return w_r + (0 if depthwise else CL_FORWARD_SCRATCH)
    if depthwise and kh >= 5:
        # the weight gradient's GEMM path: a (C, k², 256) buffer in the activations' type and a scratchpad,
        # float32 partial sums per channel (bfloat16: also a float32 copy of that buffer and of a padded plane)
        h, wd = x.shape[-2:]
        buffer = cout * kh * kw * 256 * item
        if x.dtype == torch.float32:
            return buffer + 64 * cout + 128
        return buffer + cout * (kh * kw * 256 * 4 + 64 * (h + 1) * (wd + 1)) + 8_584
    return 2 * w_r + CL_BACKWARD_SCRATCH


def _batch_norm_eval(args) -> int:  # type: ignore[no-untyped-def]
    """A CPU batch norm in eval mode folds the running statistics into per-channel ``alpha`` and ``beta``
    (``aten/src/ATen/native/cpu/batch_norm_kernel.cpp``): two temporaries of one float per channel while
    it runs (training mode is left to the measured grid: not modelled)."""
    x, training = args[0], args[5]
    if training or x.dim() < 2:
        return 0
    item = 4 if x.dtype in (torch.float16, torch.bfloat16) else x.element_size()   # opmath: float
    return 2 * x.shape[1] * item


def _forward(x, w, y, stride, bias: bool, env: CpuKernels) -> int:  # type: ignore[no-untyped-def]
    blk, item = env.block, x.element_size()
    n, cin, h, wd = x.shape
    cout, cin_g, kh, kw = w.shape
    ho, wo = y.shape[-2:]
    out_b = n * _pad(cout, blk) * ho * wo * item
    in_r = n * _pad(cin, blk) * h * wd * item if cin >= blk else 0
    w_r = _pad(cout, blk) * (_pad(cin_g, blk) if cin_g >= blk else cin_g) * kh * kw * item
    padded_bias = _pad(cout, blk) * item + _PADDED_BIAS_ALIGN if bias and cout % blk else 0
    rtus = 0
    if kh == kw == 1 and any(st > 1 for st in stride):   # 1x1 strided: one subsampled image per thread
        rtus = env.threads * cin * ho * wo * item + _RTUS_ALIGN
    return max(rtus + padded_bias + in_r + w_r + out_b - math.prod(y.shape) * item, rtus + out_b)


def _backward(go, x, w, stride, dilation, groups: int, mask, env: CpuKernels) -> int:  # type: ignore[no-untyped-def]
    item = x.element_size()
    n, cin, h, wd = x.shape
    cout, cin_g, kh, kw = w.shape
    ho, wo = go.shape[-2:]
    depthwise = groups > 1 and cin_g == 1
    # channels are padded to whole blocks with one group; grouped kernels take a block that divides them
    blk = env.block if groups == 1 or depthwise else 1
    gi = math.prod(x.shape) * item if mask[0] else 0
    gw = math.prod(w.shape) * item if mask[1] else 0
    gb = cout * item if mask[2] else 0
    stages = [0]
    if mask[0]:
        go_r = n * _pad(cout, blk) * ho * wo * item
        gi_b = n * _pad(cin, blk) * h * wd * item
        w_r = _pad(cout, blk) * (cin_g if depthwise else _pad(cin_g, blk)) * kh * kw * item
        brgconv_strided = any(st > 1 for st in stride) and not depthwise and (groups == 1 or env.isa != "avx512")
        if brgconv_strided:
            # strided data gradient: a plain gi_b, then gi and one more gi-sized copy
            # (its GEMM scratchpad, 0.1-2 MB in our probes, is not modelled)
            stages += [go_r + w_r - gw - gb, 2 * gi - gw - gb]
        else:
            stages += [go_r + w_r + gi_b - gi - gw - gb, gi_b - gw - gb]
    if mask[1]:
        stages += _weight_grad_stages(go, x, w, stride, dilation, groups, bool(mask[2]), env)
    return max(stages)


def weight_grad_kernel(x_shape, w_shape, dilation, groups: int, env: CpuKernels) -> str:  # type: ignore[no-untyped-def]
    """Which oneDNN kernel computes a convolution's weight gradient: "avx512", "avx2", "depthwise" or "gemm"."""
    h, wd = x_shape[2:]
    cout, cin_g, kh, kw = w_shape
    cout_g = cout // groups
    if groups > 1 and cin_g == 1:
        return "gemm" if kh >= 5 or h < kh or wd < kw else "depthwise"
    if env.isa == "avx512" and kw <= 14 and (
            (groups == 1 and (cin_g <= 3 or cin_g >= 16)) or (cin_g % 16 == 0 and cout_g % 16 == 0)):
        return "avx512"
    dilated = any(d != 1 for d in dilation)
    if (groups == 1 or (cin_g % 8 == 0 and cout_g % 8 == 0)) and kh <= h and kw <= wd \
            and kw < 14 and not dilated:
        return "avx2"
    return "gemm"


def _weight_grad_stages(go, x, w, stride, dilation, groups: int, bias: bool, env: CpuKernels) -> list[int]:  # type: ignore[no-untyped-def]
    """Transient bytes (beyond the outputs) while the weight gradient is computed, stage by stage."""
    item = x.element_size()
    n, cin, h, wd = x.shape
    cout, cin_g, kh, kw = w.shape
    ho, wo = go.shape[-2:]
    gw, gb = math.prod(w.shape) * item, (cout * item if bias else 0)
    kernel = weight_grad_kernel(x.shape, w.shape, dilation, groups, env)
    if kernel == "gemm":
        scratch = gemm_threads(ho * wo, n, groups, env.threads) * (4 * gw + cin_g * kh * kw * ho * wo * item) + _SCRATCH_ALIGN
        return [scratch, gw]   # gb, gw_b (unpadded) + scratch, then gw_b + gw
    blk = 16 if kernel == "avx512" else 8 if kernel == "avx2" else env.block
    plain = cin_g == 3 if kernel == "avx2" else (kernel == "avx512" and groups == 1 and cin_g <= 3)
    in_r = 0 if plain else n * _pad(cin, blk) * h * wd * item
    ic = cin_g if plain or kernel == "depthwise" else _pad(cin_g, blk)
    gw_b = _pad(cout, blk) * ic * kh * kw * item
    go_r = n * _pad(cout, blk) * ho * wo * item
    if kernel == "avx512" and kh == kw == 1:       # the 1x1 kernel balances its threads its own way
        scratch = avx512_1x1_scratchpad(n, groups, cin_g, cout // groups, ho * wo, wo, env.threads, bias)
    elif kernel == "depthwise":
        scratch = depthwise_scratchpad(cout, kh, kw, n, env.threads, env.block, bias)
    else:
        shape = WeightGradShape(n, groups, ic // (cin_g if plain else blk), _pad(cout // groups, blk) // blk,
                                cin_g if plain else blk, blk, h, wd, ho, wo, kh, kw, stride[0], stride[1],
                                dilation[0] - 1)
        pad_fn = avx512_scratchpad if kernel == "avx512" else avx2_scratchpad
        scratch = pad_fn(shape, env.threads, cout // groups, bias)
    return [go_r + in_r + gw_b + scratch + gb - gw - gb, gw_b + gb]
