"""``cnnlab.zoo.compare``: the comparison rows equal a direct ``analyze`` of the model."""

from __future__ import annotations

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
