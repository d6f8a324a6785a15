"""``cnnlab.zoo.compare``: the comparison rows equal a direct ``analyze`` of the model."""

from __future__ import annotations

import json

import pytest
import torch

from cnnlab import analyze
from cnnlab.models import create_model
from cnnlab.zoo import compare


def test_compare_row_equals_analyze_of_the_real_model():
    (row,) = compare(["googlenet"], (3, 96, 96), batch_size=4)
    report = analyze(create_model("googlenet"), (3, 96, 96), batch_size=4)
    assert (row.params, row.macs) == (report.total_params, report.total_macs)
    assert row.training_bytes == report.memory.training_bytes
    assert row.inference_bytes == report.memory.inference_bytes
    assert row.depth == 22 and row.to_dict()["input_shape"] == [3, 96, 96]


def test_compare_macs_match_pytorch_flop_counter_on_a_real_forward():
    from torch.utils.flop_counter import FlopCounterMode

    (row,) = compare(["resnet18"], (3, 64, 64))
    model = create_model("resnet18").eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, 64, 64))
    assert row.macs == counter.get_total_flops() // 2


def test_on_row_is_called_for_each_model():
    seen = []
    compare(["lenet5", "mlp"], on_row=lambda r: seen.append(r.name))
    assert seen == ["lenet5", "mlp"]


# Tan & Le, "EfficientNet" (2019): the input resolution of each scaled model
PAPER_RESOLUTION = {"b0": 224, "b1": 240, "b2": 260, "b3": 300, "b4": 380, "b5": 456, "b6": 528, "b7": 600}


@pytest.mark.parametrize("variant", sorted(PAPER_RESOLUTION))
def test_efficientnets_default_to_their_paper_resolution(variant):
    """Resolution is one of compound scaling's three axes: the default input is the paper's."""
    import torchvision.models as tvm

    from cnnlab.targets import resolve_target

    name, res = f"efficientnet_{variant}", PAPER_RESOLUTION[variant]
    assert resolve_target(name).input_shape == (3, res, res)
    weights = tvm.get_model_weights(name).IMAGENET1K_V1
    if weights.transforms().crop_size[0] == res:    # torchvision's MACs figure is at its own crop (B2: 288)
        assert compare([name])[0].macs / 1e9 == pytest.approx(weights.meta["_ops"], rel=5e-4)


def test_xception_defaults_to_299():
    timm = pytest.importorskip("timm", reason="timm is the reference for Xception's input")
    from cnnlab.targets import resolve_target

    assert resolve_target("xception").input_shape == tuple(
        timm.create_model("legacy_xception", pretrained=False).default_cfg["input_size"])


def test_a_model_that_cannot_take_the_input_does_not_hide_the_others(capsys):
    from cnnlab.cli.main import main

    rows = compare(["lenet5", "mlp", "alexnet"], (1, 28, 28))
    assert [r.error is None for r in rows] == [False, True, False]
    assert "32×32" in rows[0].error and rows[1].params == 266_610
    assert main(["zoo", "compare", "lenet5", "mlp", "--input", "1,28,28", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc[0]["error"] and doc[1]["error"] is None and doc[1]["params"] == 266_610
    assert main(["zoo", "compare", "lenet5", "alexnet", "--input", "1,28,28"]) == 2   # nothing to show
