"""How oneDNN splits a convolution's weight gradient over threads, and the scratchpad that costs.

The weight gradient sums over the minibatch. When oneDNN gives several threads
parts of the same sum, each extra thread accumulates into a private copy of
(part of) the weight gradient, held in the primitive's *scratchpad*, which
PyTorch allocates for the call (``attr-scratchpad:user`` in ``ONEDNN_VERBOSE``).
Whether that happens depends on oneDNN's thread balancing heuristics, ported
here line for line from oneDNN v3.x (the version in torch 2.14.1, 3.12):

* ``jit_avx512_common_conv_bwd_weights_kernel_f32_t::balance`` in
  ``src/cpu/x64/jit_avx512_common_conv_kernel.cpp`` (the AVX-512 direct kernel:
  threads over minibatch × groups × output-channel blocks × input-channel blocks);
* ``reduce_balancer_t::balance`` in ``src/cpu/x64/cpu_reducer.cpp`` (the
  reducers of the AVX2 direct kernel's weights and of both kernels' bias).

Scratchpad bookings follow ``memory_tracking::registrar_t::book``: each entry
takes its size plus its alignment (at least 128 B); a barrier context
(``simple_barrier::ctx_t``) is one 4 KiB-aligned 4 KiB block per group.
Every figure here was checked against the profiler's allocation events at
1–4 threads (``tests/memory/test_workspace.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

F32 = 4
_ALIGN = 128          # memory_tracking default_alignment
_PAGE = 4096          # PAGE_4K, and sizeof/alignof(simple_barrier::ctx_t)
_MIN_OH_REDUCE = 9    # jit_avx512_common_conv_bwd_weights_kernel_f32_t::min_oh_reduce


def div_up(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class WeightGradShape:
    """The blocked problem a direct weight-gradient kernel solves (oneDNN's ``jcp`` fields)."""

    mb: int
    groups: int
    nb_ic: int
    nb_oc: int
    ic_block: int
    oc_block: int
    ih: int
    iw: int
    oh: int
    ow: int
    kh: int
    kw: int
    stride_h: int
    stride_w: int
    dilate_h: int          # oneDNN counts dilation from 0


def avx512_threads(j: WeightGradShape, nthreads: int) -> tuple[int, int]:
    """(threads over the minibatch, threads used) of the AVX-512 direct weight-gradient kernel."""
    if nthreads < j.groups:
        return 1, nthreads
    nthr = nthreads // j.groups
    two_d = j.dilate_h == 0 and j.oh > _MIN_OH_REDUCE     # harness_2d_reduction
    ih_red, oh_red = (j.ih, j.oh) if two_d else (1, 1)
    ih_keep, oh_keep = (1, 1) if two_d else (j.ih, j.oh)
    nthr_oh_reduce = max(1, oh_red // _MIN_OH_REDUCE)

    def mem_cost(n_mb: int, n_oc: int, n_ic: int) -> int:
        return (div_up(j.mb * ih_red, n_mb) * div_up(j.nb_ic, n_ic) * j.ic_block * ih_keep * j.iw
                // j.stride_h // j.stride_w
                + div_up(j.mb * oh_red, n_mb) * div_up(j.nb_oc, n_oc) * j.oc_block * oh_keep * j.ow
                + 8 * div_up(j.nb_oc, n_oc) * div_up(j.nb_ic, n_ic) * j.kh * j.kw * j.ic_block * j.oc_block)

    def comp_cost(n_mb: int, n_oc: int, n_ic: int) -> int:
        return div_up(j.mb * oh_red, n_mb) * div_up(j.nb_oc, n_oc) * div_up(j.nb_ic, n_ic)

    def splits():  # type: ignore[no-untyped-def]
        for n_mb in range(1, min(nthr, j.mb * nthr_oh_reduce) + 1):
            par = nthr // n_mb
            for n_oc in range(1, min(par, j.nb_oc) + 1):
                yield n_mb, n_oc, min(par // n_oc, j.nb_ic)

    best = (1, 1, 1)
    best_mem = mem_cost(*best)
    for s in splits():                       # step 1: the lowest memory traffic
        if mem_cost(*s) <= best_mem:
            best_mem, best = mem_cost(*s), s
    best_comp = comp_cost(*best)
    for s in splits():                       # step 2: less compute at <110 % of that traffic
        c = comp_cost(*s)
        if (c <= best_comp and mem_cost(*s) < 1.1 * best_mem) or 4 * c <= 3 * best_comp:
            best_comp, best = c, s
    n_mb = best[0]
    if nthreads // 2 < n_mb < nthreads:
        n_mb = min(j.mb * nthr_oh_reduce, nthreads)
    return n_mb, n_mb * j.groups * best[1] * best[2]


def avx512_scratchpad(j: WeightGradShape, nthreads: int, cout: int, bias: bool) -> int:
    """Scratchpad bytes of the AVX-512 direct weight gradient (``init_scratchpad`` + bias reducer)."""
    n_mb, used = avx512_threads(j, nthreads)
    total = 0
    if n_mb > 1:
        wei = j.groups * j.nb_oc * j.oc_block * j.nb_ic * j.ic_block * j.kh * j.kw
        total += (n_mb - 1) * (wei + j.groups * j.nb_oc * j.oc_block) * F32 + _ALIGN + 2 * _PAGE
    if bias and cout % j.oc_block:
        total += j.groups * j.nb_oc * j.oc_block * F32 + _ALIGN        # key_conv_padded_bias
    if bias:
        max_buffer = used * 3 * 5 * 5 * 16 * 16
        total += reducer_scratchpad(used, j.oc_block, j.groups * j.nb_oc, j.mb, max_buffer)
    return total


def avx2_scratchpad(j: WeightGradShape, nthreads: int, cout: int, bias: bool) -> int:
    """Scratchpad bytes of the AVX2 direct weight gradient (padded bias, bias and weight reducers)."""
    total = 0
    if bias and cout % j.oc_block:
        total += j.groups * j.nb_oc * j.oc_block * F32 + _ALIGN
    if bias:
        total += reducer_scratchpad(nthreads, j.oc_block, j.groups * j.nb_oc, j.mb, 1 << 21)
    job = j.kh * j.kw * j.ic_block * j.oc_block
    total += reducer_scratchpad(nthreads, job, j.groups * j.nb_ic * j.nb_oc, j.mb, 1 << 21)
    return total


def reducer_scratchpad(nthr: int, job_size: int, njobs: int, reduction: int, max_buffer: int) -> int:
    """Bytes a ``cpu_reducer_t`` books: partial sums of the extra threads of each group, and barriers."""
    groups, per_group, jobs_ub = reduce_balance(nthr, job_size, njobs, reduction, max_buffer)
    if per_group == 1:
        return 0
    space = groups * (per_group - 1) * jobs_ub * job_size * F32
    return space + _PAGE + groups * _PAGE + _PAGE


def reduce_balance(nthr: int, job_size: int, njobs: int, reduction: int,
                   max_buffer: int) -> tuple[int, int, int]:
    """oneDNN's ``reduce_balancer_t::balance``: (groups, threads per group, jobs per group)."""
    min_jobs = max(1, njobs // nthr)
    max_jobs = max(1, max_buffer // (nthr * job_size))
    groups = min(njobs // min_jobs, nthr)
    per_group = min(nthr // groups, reduction)
    jobs_ub = div_up(njobs, groups)
    best = njobs * job_size * reduction
    for c_jobs in range(min_jobs, njobs):
        c_groups = min(njobs // c_jobs, nthr)
        c_per_group = min(nthr // c_groups, reduction)
        c_jobs_ub = div_up(njobs, c_groups)
        if c_per_group > 1 and c_jobs_ub > max_jobs:
            continue
        cost = job_size * c_jobs_ub * (div_up(reduction, c_per_group) + (c_per_group != 1))
        if cost < best:
            groups, per_group, jobs_ub, best = c_groups, c_per_group, c_jobs_ub, cost
    return groups, per_group, jobs_ub


def best_divider(value: int, min_divider: int, max_divider: int, find_max: bool) -> int:
    """oneDNN's ``best_divider`` (``jit_uni_1x1_conv_utils.hpp``): the block size wasting least of ``value``."""
    top = max(1, min(max_divider, value))
    low = max(1, min(min_divider, top))
    best, best_loss = top, float("inf")
    for d in range(top, low - 1, -1):
        total = div_up(value, d) * d
        loss = (total - value) / total
        if (find_max and loss < best_loss) or (not find_max and loss <= best_loss):
            best, best_loss = d, loss
    return best


def avx512_1x1_threads(mb: int, groups: int, nb_ic: int, nb_oc: int, spatial: int, iw: int,
                       nthreads: int, block: int = 16) -> tuple[int, int]:
    """(threads over the minibatch, threads used) of the AVX-512 1×1 weight gradient.

    ``jit_avx512_common_1x1_conv_kernel_t::balance``; ``spatial`` is the
    (unit-stride) output size ``H_out·W_out`` the kernel reduces over.
    """
    if nthreads < groups:
        return 1, 1
    reduce_block = best_divider(spatial, 7, 16, True)
    if spatial % reduce_block:
        reduce_block = best_divider(iw, 4, iw, False)
    if reduce_block > 256:
        reduce_block = 1
    nb_reduce = div_up(spatial, reduce_block)
    nthr = nthreads // groups

    def mem_cost(n_mb: int, n_oc: int, n_ic: int) -> int:
        return (div_up(mb * nb_reduce, n_mb) * div_up(nb_ic, n_ic) * block * reduce_block
                + div_up(mb * nb_reduce, n_mb) * div_up(nb_oc, n_oc) * block * reduce_block
                + 12 * div_up(nb_oc, n_oc) * div_up(nb_ic, n_ic) * block * block)

    best, best_mem = (1, 1, 1), mem_cost(1, 1, 1)
    for n_mb in range(1, min(nthr, mb * nb_reduce) + 1):
        par = nthr // n_mb
        for n_oc in range(1, min(par, nb_oc) + 1):
            s = (n_mb, n_oc, min(par // n_oc, nb_ic))
            if mem_cost(*s) <= best_mem:
                best_mem, best = mem_cost(*s), s
    n_mb = best[0]
    if nthreads // 2 < n_mb < nthreads:
        n_mb = min(mb, nthreads)
    return n_mb, n_mb * groups * best[1] * best[2]


def avx512_1x1_scratchpad(mb: int, groups: int, cin_g: int, cout_g: int, spatial: int, iw: int,
                          nthreads: int, bias: bool) -> int:
    """Scratchpad bytes of the AVX-512 1×1 weight gradient (weight reduction, padded bias, bias reducer)."""
    nb_ic, nb_oc = div_up(cin_g, 16), div_up(cout_g, 16)
    n_mb, used = avx512_1x1_threads(mb, groups, nb_ic, nb_oc, spatial, iw, nthreads)
    total = 0
    if bias and cout_g % 16:
        total += groups * nb_oc * 16 * F32 + _ALIGN
    if n_mb > 1:
        total += groups * nb_oc * nb_ic * 256 * (n_mb - 1) * F32 + _ALIGN + 2 * _PAGE
    if bias:
        total += reducer_scratchpad(used, 16, groups * nb_oc, mb, used * 3 * 5 * 5 * 16 * 16)
    return total


def depthwise_scratchpad(channels: int, kh: int, kw: int, mb: int, nthreads: int, block: int, bias: bool) -> int:
    """Scratchpad bytes of the depthwise weight gradient (``jit_uni_dw_conv_bwd_weights_kernel_t``).

    Threads go to channel blocks first, the rest share the minibatch, each extra
    one with its own copy of the weight (and bias) gradient.
    """
    nthr_g = min(div_up(channels, block), nthreads)
    nthr_mb = min(max(1, nthreads // nthr_g), mb)
    if nthr_mb == 1:
        return 0
    total = channels * kh * kw * (nthr_mb - 1) * F32 + _ALIGN
    if bias:
        total += channels * (nthr_mb - 1) * F32 + _ALIGN
    return total


def gemm_threads(out_pixels: int, mb: int, groups: int, nthreads: int) -> int:
    """Threads of oneDNN's GEMM weight gradient (``gemm_convolution_utils.cpp``, "outer threading").

    Each thread then holds its own weight-gradient copy and im2col buffer.
    """
    outer = out_pixels // nthreads < 256 and (mb != 1 or groups > 2)
    return nthreads if outer else 1
