"""Receptive field and effective stride per layer: the literature's figures and a gradient oracle."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnlab import analyze
from cnnlab.analysis.receptive import field_of, receptive_fields
from cnnlab.models import create_model


@pytest.mark.parametrize("name,layer,size,stride", [
    # Araujo, Norris & Sim, "Computing Receptive Fields of CNNs" (Distill 2019), Table 1
    ("alexnet", "features", 195, 32),       # torchvision's AlexNet: conv1 11/4 … pool5
    ("vgg16", "features", 212, 32),         # VGG-16 pool5
    ("resnet50_v1", "layer4", 483, 32),     # ResNet-50 as the paper strides it (first 1×1)
    ("resnet50", "layer4", 427, 32),        # v1.5: stages 2–4 stride in the 3×3, 2·(8−4) + 2·(16−8) + 2·(32−16) = 56 fewer
    ("resnet18", "layer4", 435, 32),
])
def test_the_literatures_receptive_fields(name, layer, size, stride):
    with torch.device("meta"):
        model = create_model(name)
    f = field_of(receptive_fields(model), layer)
    assert f is not None and f.size == (size, size) and f.stride == (stride, stride)


def test_a_units_field_is_where_its_gradient_reaches():
    """Oracle: with positive weights, the input pixels with a non-zero gradient of one output unit."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.AvgPool2d(2), nn.Conv2d(2, 2, 3, dilation=2),
                        nn.AvgPool2d(3, stride=2), nn.Conv2d(2, 1, (1, 3)))
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.uniform_(m.weight, 0.5, 1.0)
            nn.init.constant_(m.bias, 1.0)
    x = torch.ones(1, 1, 64, 64, requires_grad=True)
    out = net(x)
    out[0, 0, 2, 2].backward()
    rows = x.grad[0, 0].abs().sum(1).nonzero()
    cols = x.grad[0, 0].abs().sum(0).nonzero()
    f = receptive_fields(net)["5"]
    assert f.size == (int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1))
    # the effective stride: the next unit's field starts that many pixels later
    x.grad = None
    net(x)[0, 0, 2, 3].backward()
    shift = int(x.grad[0, 0].abs().sum(0).nonzero().min() - cols.min())
    assert f.stride[1] == shift


def test_analyze_reports_them_per_spec_layer(examples):
    rows = analyze(examples / "geron_ex2.yaml").to_dict()["layers"]
    assert [r["receptive_field"] for r in rows] == [[3, 3], [7, 7], [15, 15]]
    assert [r["effective_stride"] for r in rows] == [[2, 2], [4, 4], [8, 8]]
    from cnnlab.targets import PACKAGED_SPECS

    dense = analyze(PACKAGED_SPECS["small_cnn"]).to_dict()["layers"][-1]
    assert dense["receptive_field"] == "all" and dense["effective_stride"] == [4, 4]
