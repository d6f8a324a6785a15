"""The oneDNN workspace model against the allocations a real CPU convolution makes."""

from __future__ import annotations

import pytest
import torch
from torch._C._profiler import _EventType
from torch.profiler import ProfilerActivity, profile

from cnnlab.analysis.workspace import onednn_conv_workspace

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="needs oneDNN")


def peak_inside(fn) -> tuple[int, int]:
    """(peak of the running allocation sum, its final value) while ``fn`` runs."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events, stack = [], list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        node = stack.pop()
        if node.tag == _EventType.Allocation:
            events.append((node.start_time_ns, node.extra_fields.alloc_size))
        stack.extend(node.children)
    current = peak = 0
    for _, size in sorted(events):
        current += size
        peak = max(peak, current)
    return peak, current


@pytest.mark.parametrize("cin, cout, size, k, stride", [(64, 64, 16, 3, 1), (100, 200, 33, 3, 2), (16, 24, 16, 1, 1)])
def test_forward_workspace_matches_the_real_kernel(cin, cout, size, k, stride):
    torch.set_num_threads(2)
    x = torch.randn(4, cin, size, size)
    w = torch.randn(cout, cin, k, k)
    out = torch.ops.aten.convolution.default(x, w, None, [stride] * 2, [k // 2] * 2, [1, 1], False, [0, 0], 1)
    keep = []
    peak, end = peak_inside(lambda: keep.append(
        torch.ops.aten.convolution.default(x, w, None, [stride] * 2, [k // 2] * 2, [1, 1], False, [0, 0], 1)))
    predicted = onednn_conv_workspace(torch.ops.aten.convolution.default,
                                      (x, w, None, [stride] * 2, [k // 2] * 2, [1, 1], False, [0, 0], 1), {}, out)
    assert end == out.numel() * 4
    assert peak - end == predicted


CONV_CASES = [
    # (n, cin, cout, size, k, stride, groups)
    (4, 64, 64, 16, 3, 1, 1),
    (4, 3, 100, 20, 3, 1, 1),        # first layer, RGB: input not reordered
    (8, 1, 16, 32, 3, 1, 1),         # first layer, grey: reordered to 8 channels for the weight gradient
    (8, 4, 16, 32, 3, 2, 1),
    (8, 512, 512, 2, 3, 1, 1),       # ResNet's last stage on small images: oneDNN GEMM weight gradient
    (8, 64, 64, 4, 5, 1, 1),
    (8, 64, 64, 2, 3, 2, 1),
    (8, 20, 40, 51, 3, 2, 1),        # strided data gradient: plain result + one more copy
    (8, 256, 512, 4, 1, 2, 1),
    (8, 32, 32, 16, 5, 2, 32),
    (8, 32, 32, 2, 3, 1, 32),        # depthwise on a 2x2 map
    (8, 32, 32, 8, 3, 1, 32),
    (8, 32, 32, 8, 5, 1, 32),        # depthwise 5x5: GEMM weight gradient on every thread
    (4, 32, 32, 28, 5, 1, 32),       # ... on one thread for larger maps
    (1, 64, 64, 16, 3, 1, 1),        # one small image: PyTorch's slow_conv2d with an im2col buffer
    (1, 512, 512, 2, 3, 1, 1),
    (1, 64, 128, 16, 1, 1, 1),
]


def _conv_args(x, w, stride, k, groups):
    return (x, w, None, [stride] * 2, [k // 2] * 2, [1, 1], False, [0, 0], groups)


@pytest.mark.parametrize("n, cin, cout, size, k, stride, groups", CONV_CASES)
@pytest.mark.parametrize("threads", [1, 2])
def test_workspace_matches_the_real_kernels_forward_and_backward(n, cin, cout, size, k, stride, groups, threads):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        x = torch.randn(n, cin, size, size)
        w = torch.randn(cout, cin // groups, k, k)
        conv = torch.ops.aten.convolution.default
        args = _conv_args(x, w, stride, k, groups)
        y = conv(*args)
        keep = []
        peak, end = peak_inside(lambda: keep.append(conv(*args)))
        assert end == y.numel() * 4
        assert peak - end == onednn_conv_workspace(conv, args, {}, y), "forward"

        go = torch.randn_like(y)
        bw = torch.ops.aten.convolution_backward.default
        for mask in ([True, True, False], [False, True, False], [True, True, True]):
            bargs = (go, x, w, [cout] if mask[2] else None, [stride] * 2, [k // 2] * 2, [1, 1], False, [0, 0],
                     groups, mask)
            outs = bw(*bargs)
            keep.clear()
            peak, end = peak_inside(lambda bargs=bargs: keep.append(bw(*bargs)))
            assert end == sum(t.numel() * 4 for t in outs if t is not None)
            assert peak - end == onednn_conv_workspace(bw, bargs, {}, outs), f"backward {mask}"
    finally:
        torch.set_num_threads(before)
