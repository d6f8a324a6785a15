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
