"""``cnnlab zoo list`` and ``cnnlab zoo compare``."""

from __future__ import annotations

import json

import pytest

from cnnlab.models import ZOO, analyzable_names
from tests.helpers import run

FIELDS = {"name", "family", "year", "innovation", "depth", "params", "macs", "input_shape",
          "batch_size", "param_bytes", "inference_bytes", "training_bytes", "reference"}


def test_list_names_every_model(capsys):
    code, out, _ = run(capsys, "zoo", "list", "--json")
    rows = json.loads(out)
    assert code == 0 and [r["name"] for r in rows] == list(ZOO)
    assert {"resnet50", "seresnet50", "xception", "efficientnet_b7", "lenet5", "mlp"} <= set(ZOO)
    code, out, _ = run(capsys, "zoo", "list")
    assert "skip (residual) connections" in out and "efficientnet_b3" in out


@pytest.mark.slow
def test_compare_json_lists_every_model_with_its_numbers(capsys):
    code, out, _ = run(capsys, "zoo", "compare", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert code == 0 and list(rows) == analyzable_names()   # no shape table
    code, out, _ = run(capsys, "zoo", "compare", "maskrcnn", "--json")
    assert code == 2                                 # asked by name: the one model cannot be analysed
    for r in rows.values():
        assert FIELDS <= set(r) and r["params"] > 0 and r["macs"] > 0
        assert r["inference_bytes"] > r["param_bytes"] == 4 * r["params"]
    # the standard figure: ResNet-50 at 224×224 is 4.1 G multiply-accumulates (8.2 GFLOPs)
    assert rows["resnet50"]["macs"] == 4_089_184_256 and rows["resnet50"]["depth"] == 50
    assert rows["lenet5"]["input_shape"] == [1, 32, 32] and rows["vgg16"]["input_shape"] == [3, 224, 224]


def test_compare_some_models_at_one_input_and_batch_with_a_plot(capsys, tmp_path):
    plot = tmp_path / "zoo.png"
    code, out, _ = run(capsys, "zoo", "compare", "lenet5", "GoogLeNet", "mlp", "--input", "3,64,64",
                       "--batch", "8", "--json", "--plot", str(plot))
    rows = json.loads(out)
    assert code == 0 and [r["name"] for r in rows] == ["lenet5", "googlenet", "mlp"]
    assert all(r["input_shape"] == [3, 64, 64] and r["batch_size"] == 8 for r in rows)
    assert rows[2]["params"] == 3 * 64 * 64 * 300 + 300 + 30_100 + 1_010  # the MLP grows with the image
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out, _ = run(capsys, "zoo", "compare", "resnet18", "alexnet")
    assert code == 0 and "11,689,512" in out and "61,100,840" in out and "FLOPs = 2 × MACs" in out


@pytest.mark.parametrize("argv,needle", [
    (["zoo", "compare", "resnet18", "vgg17"], "unknown zoo model 'vgg17' (did you mean vgg11"),
    (["zoo", "compare", "alexnet", "--input", "3,32,32"], "alexnet needs inputs of at least 63×63"),
    (["zoo", "compare", "lenet5", "--plot", "chart.svg"], "figures are PNG files"),
    (["zoo", "compare", "lenet5", "--batch", "-3"], "must be a positive integer"),
    # the learner's audit: the papers' names, every unknown name at once (SENet's models are SE-ResNets)
    (["zoo", "compare", "senet", "alexnet", "Inception", "EfficientNet"],
     "unknown zoo models 'senet' (did you mean seresnet50?); 'Inception' (did you mean googlenet"),
    (["zoo", "compare", "SE-ResNet", "foo"], "(did you mean seresnet18, seresnet34, seresnet50"),
    (["zoo"], "required"),
])
def test_zoo_errors_are_one_line_exit_2(capsys, tmp_path, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv)
    assert code == 2 and needle in err and err.count("\n") == 1
    assert out == "" and not list(tmp_path.iterdir())  # nothing written
