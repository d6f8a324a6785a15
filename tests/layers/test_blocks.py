"""The shared blocks: parameter formulas from the papers, shapes, and stochastic depth."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnlab.layers import (ConvNormAct, DropPath, Inception, MBConv, SeparableConv2d, SqueezeExcite,
                           make_divisible, paper_lrn)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_conv_norm_act_drops_the_bias_before_batch_norm():
    block = ConvNormAct(16, 32, 3)
    assert block[0].bias is None and n_params(block) == 3 * 3 * 16 * 32 + 2 * 32
    plain = ConvNormAct(16, 32, 3, norm_layer=None, act_layer=None)
    assert len(plain) == 1 and n_params(plain) == 3 * 3 * 16 * 32 + 32
    assert block(torch.zeros(1, 16, 9, 9)).shape == (1, 32, 9, 9)  # k // 2 padding keeps the size


def test_separable_convolution_has_the_xception_parameter_count():
    sep = SeparableConv2d(728, 728, 3)
    assert n_params(sep) == 3 * 3 * 728 + 728 * 728 == 536_536
    assert n_params(nn.Conv2d(728, 728, 3, bias=False)) / n_params(sep) == pytest.approx(8.89, abs=0.01)
    x = torch.randn(2, 8, 10, 10)
    small = SeparableConv2d(8, 4, 3, stride=2)
    assert small(x).shape == (2, 4, 5, 5)


def test_squeeze_excite_scales_each_channel_by_a_gate_in_0_1():
    se = SqueezeExcite(64, 4)
    assert n_params(se) == 2 * 64 * 4 + 4 + 64
    x = torch.rand(3, 64, 5, 5) + 0.1
    ratio = se(x) / x
    per_channel = ratio.flatten(2)
    assert torch.allclose(per_channel, per_channel[..., :1].expand_as(per_channel), atol=1e-6)
    assert ((ratio > 0) & (ratio < 1)).all()


def test_make_divisible_rounds_to_multiples_of_8_without_losing_more_than_10_percent():
    assert make_divisible(32 * 1.1) == 32 and make_divisible(16 * 1.4) == 24 and make_divisible(3) == 8
    assert make_divisible(10) == 16  # 8 would lose more than 10 %
    assert make_divisible(256 / 16, 8, round_limit=0.0) == 16


def test_inception_concatenates_its_four_branches():
    block = Inception(192, 64, 96, 128, 16, 32, 32, big_kernel=3)  # torchvision's
    assert block.out_channels == 256
    assert block(torch.zeros(1, 192, 28, 28)).shape == (1, 256, 28, 28)
    paper = Inception(192, 64, 96, 128, 16, 32, 32)  # the paper's 5×5
    assert n_params(paper) - n_params(block) == (25 - 9) * 16 * 32


def test_mbconv_residual_only_when_shapes_match():
    assert MBConv(16, 16, 3, 1, 6).use_residual
    assert not MBConv(16, 24, 3, 2, 6).use_residual
    block = MBConv(16, 24, 5, 2, 6)
    assert block(torch.zeros(2, 16, 14, 14)).shape == (2, 24, 7, 7)


def test_drop_path_drops_whole_samples_and_keeps_the_expectation():
    torch.manual_seed(0)
    drop = DropPath(0.25).train()
    x = torch.ones(20_000, 3, 2, 2)
    y = drop(x)
    per_sample = y.flatten(1)
    values = sorted(per_sample.unique().tolist())
    assert values[0] == 0.0 and values[1] == pytest.approx(1 / 0.75) and len(values) == 2
    assert (per_sample == 0).all(1).float().mean().item() == pytest.approx(0.25, abs=0.01)
    assert y.mean().item() == pytest.approx(1.0, abs=0.02)
    assert torch.equal(drop.eval()(x), x)
    with pytest.raises(ValueError):
        DropPath(1.0)


def test_paper_lrn_uses_the_papers_alpha_not_pytorchs_alpha_over_n():
    lrn = paper_lrn()
    x = torch.randn(1, 7, 3, 3)
    c = 3
    window = x[0, c - 2:c + 3].pow(2).sum(0)
    expected = x[0, c] / (2 + 1e-4 * window).pow(0.75)
    torch.testing.assert_close(lrn(x)[0, c], expected)
