"""Built modules have the spec's shapes and parameters, and TF "same" semantics."""

from __future__ import annotations

import math

import pytest
import torch

from cnnlab.layers.same_pad import SameAvgPool2d, same_pad_amounts
from cnnlab.spec import build, load_spec, parse_spec


def test_geron_built_forward(examples):
    spec = load_spec(examples / "geron_ex2.yaml")
    model = build(spec)
    x = torch.randn(2, *spec.input_shape)
    shapes = []
    for block in model.blocks:
        x = block(x)
        shapes.append(tuple(x.shape[1:]))
    assert shapes == list(spec.shapes[1:])
    assert sum(p.numel() for p in model.parameters()) == 903_400


def test_build_on_meta_allocates_nothing(examples):
    model = build(load_spec(examples / "geron_ex2.yaml"), device="meta")
    assert all(p.is_meta for p in model.parameters())


@pytest.mark.parametrize("size,k,s", [(200, 3, 2), (7, 2, 2), (8, 4, 3), (5, 5, 1), (1, 3, 2), (10, 1, 4)])
def test_same_rule_extra_pad_after(size, k, s):
    before, after = same_pad_amounts(size, k, s)
    assert after - before in (0, 1)
    assert (size + before + after - k) // s + 1 == math.ceil(size / s)


def test_same_conv_matches_tf_rule_even_kernel():
    # 6 wide, kernel 2, stride 2: TF pads nothing; kernel 4 stride 1: pads 1 before, 2 after.
    spec = parse_spec({"input": [1, 1, 6], "layers": [
        {"conv": {"filters": 1, "kernel": [1, 4], "padding": "same", "bias": False}}]})
    model = build(spec)
    with torch.no_grad():
        model.blocks[0][1].weight.fill_(1.0)
    y = model(torch.arange(1.0, 7.0).view(1, 1, 1, 6))
    # padded: 0 1 2 3 4 5 6 0 0 -> window sums of 4
    assert y.flatten().tolist() == [6.0, 10.0, 14.0, 18.0, 15.0, 11.0]


def test_same_maxpool_ignores_padding():
    spec = parse_spec({"input": [1, 3, 3], "layers": [{"maxpool": {"size": 2, "padding": "same"}}]})
    y = build(spec)(-torch.ones(1, 1, 3, 3))
    assert y.shape == (1, 1, 2, 2) and (y == -1).all()  # zero padding would give 0


def test_same_avgpool_averages_real_elements_only():
    x = torch.arange(1.0, 10.0).view(1, 1, 3, 3)
    y = SameAvgPool2d((2, 2), (2, 2))(x)
    # windows: [1,2,4,5] [3,6] [7,8] [9]
    assert y.flatten().tolist() == [3.0, 4.5, 7.5, 9.0]


def test_separable_and_depthwise_params():
    spec = parse_spec({"input": [32, 16, 16], "layers": [
        {"separable_conv": {"filters": 64, "kernel": 3, "padding": "same"}},
        {"depthwise_conv": {"kernel": 3, "depth_multiplier": 2}}]})
    model = build(spec)
    assert sum(p.numel() for p in model.blocks[0].parameters()) == 3 * 3 * 32 + (32 + 1) * 64
    assert sum(p.numel() for p in model.blocks[1].parameters()) == (3 * 3 + 1) * 128
    assert spec.total_params() == sum(p.numel() for p in model.parameters())
    assert model(torch.randn(1, 32, 16, 16)).shape == (1, 128, 14, 14)


def test_lrn_batchnorm_vector_and_image():
    spec = parse_spec({"input": [8, 6, 6], "layers": [
        {"lrn": {"size": 3}}, "batchnorm", "global_maxpool", "batchnorm", {"dense": {"units": 2}}]})
    model = build(spec).eval()
    assert model(torch.randn(3, 8, 6, 6)).shape == (3, 2)
    assert spec.total_params() == 16 + 16 + 9 * 2
