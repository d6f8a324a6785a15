"""Property: analyze's shapes, parameters and MACs equal a real forward pass of the built module."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings

from cnnlab.analysis import analyze
from cnnlab.spec import LAYER_TYPES, build, parse_spec
from tests.spec.strategies import specs


def _check(spec_dict: dict) -> None:
    spec = parse_spec(spec_dict)
    report = analyze(spec, batch_size=2)
    model = build(spec).eval()
    x = torch.randn(2, *spec.input_shape)
    assert len(report.layers) == len(model.blocks)
    with torch.no_grad():
        for row, block, layer, in_shape in zip(report.layers, model.blocks, spec.layers, spec.shapes):
            x = block(x)
            assert row.output_shape == tuple(x.shape[1:]), (row.name, spec_dict)
            assert row.output_bytes == x[0].numel() * 4
            real_params = sum(p.numel() for p in block.parameters())
            assert row.params == real_params == layer.params(in_shape), (row.name, spec_dict)
            assert row.macs == layer.macs(in_shape), (row.name, spec_dict)
    assert report.total_params == sum(p.numel() for p in model.parameters())
    assert sum(r.params for r in report.layers) == report.total_params


@pytest.mark.parametrize("kind", list(LAYER_TYPES))
def test_analyze_matches_real_forward(kind: str) -> None:
    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow],
              derandomize=True)
    @given(specs(must_have=kind))
    def check(spec_dict: dict) -> None:
        _check(spec_dict)

    check()
