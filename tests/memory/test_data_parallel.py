"""The training peak of a process under DistributedDataParallel (gloo, two real processes), measured at the
allocator, against the single-process measurement and ``cnnlab fit``'s data-parallel prediction."""

from __future__ import annotations

import functools

import pytest

from cnnlab.memory.fit import fit
from cnnlab.memory.measure import measure_data_parallel, measure_memory
from cnnlab.memory.step import StepConfig
from cnnlab.packaged import PACKAGED_SPECS
from cnnlab.spec import build, load_spec
from cnnlab.study.remedies import build_net

SHAPE = (1, 16, 16)


@pytest.mark.slow
def test_ddp_holds_its_gradient_buckets_beside_the_step_and_fit_predicts_them():
    spec = str(PACKAGED_SPECS["small_cnn"])
    cfg = StepConfig("adam")
    peaks = measure_data_parallel(functools.partial(build_net, spec, SHAPE, 10), SHAPE, 32, cfg, world=2)
    alone, _ = measure_memory(build_net(spec, SHAPE, 10), SHAPE, 32, cfg)
    params = sum(p.numel() for p in build_net(spec, SHAPE, 10).parameters())
    buckets = 4 * params               # DDP's gradient buckets: a float32 copy of the gradients
    # every process holds the buckets beside the step; at times one bucket-sized tensor more (gloo's all-reduce)
    for peak in peaks:
        assert 0.5 * buckets < peak - alone <= 2 * buckets + 64 * 1024
    net = build(load_spec(spec).with_input(SHAPE), device="meta")
    report = fit(net, SHAPE, budget=1, batch_size=64, optimizer="adam", devices=(2,))
    predicted = next(r for r in report.remedies if r.name == "data parallel ×2")
    assert predicted.details["ddp_bucket_bytes"] == buckets
    assert 0.99 * predicted.peak_bytes <= max(peaks) <= predicted.peak_bytes + buckets + 64 * 1024
    # the measured single-process step at the same batch, plus the buckets the measurement shows DDP holds
    assert predicted.peak_bytes >= alone + 0.99 * buckets


def test_a_failing_process_is_one_clear_error():
    from cnnlab.errors import CnnlabError

    with pytest.raises(CnnlabError, match="data-parallel memory measurement failed: process [01]: SpecError: .*no such file"):
        measure_data_parallel(functools.partial(build_net, "/nonexistent/net.yaml", SHAPE, 10), SHAPE, 4,
                              StepConfig("adam"), world=2)
