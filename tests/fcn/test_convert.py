"""Dense → convolution: exact logits at the training input, exact window scores for valid networks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from torch import nn

from cnnlab.cli.main import main
from cnnlab.fcn.convert import ConversionError, convert
from cnnlab.fcn.scan import output_stride
from cnnlab.models import create_model
from cnnlab.train.model import build_model


def _classifier(name: str, shape: tuple[int, int, int]) -> nn.Module:
    torch.manual_seed(0)
    if name.startswith("small_cnn"):
        return build_model(name, shape, 10)[0].eval()
    return create_model(name, num_classes=10, in_channels=shape[0], input_size=shape[1]).eval()


@pytest.mark.parametrize("name,shape", [("small_cnn", (1, 28, 28)), ("small_cnn_valid", (1, 28, 28)),
                                        ("lenet5", (1, 32, 32)), ("mlp", (1, 28, 28)),
                                        ("alexnet", (3, 224, 224)), ("vgg11", (3, 224, 224)),
                                        ("resnet18", (3, 64, 64))])
def test_at_the_training_input_the_fcn_gives_the_classifiers_logits(name, shape):
    model = _classifier(name, shape)
    conversion = convert(model, shape)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        ref, out = model(x), conversion.fcn(x)
    assert sum(p.numel() for p in conversion.fcn.parameters()) == sum(p.numel() for p in model.parameters())
    if conversion.global_pool == "avg":         # a GAP head: the grid is a class activation map, its mean the logits
        assert (out.mean((2, 3)) - ref).abs().max() <= 1e-5
    else:
        assert out.shape[-2:] == (1, 1) and (out.flatten(1) - ref).abs().max() <= 1e-5
    assert not any(isinstance(m, nn.Linear) for m in conversion.fcn.modules())


def test_the_books_grid_arithmetic_for_vgg16():
    """Géron: a network ending on a 7×7 map at 224×224 gives an 8×8 grid at 448×448 (stride 32)."""
    with torch.device("meta"):
        vgg = create_model("vgg16")
    conversion = convert(vgg.to_empty(device="cpu").eval(), (3, 224, 224))
    assert output_stride(conversion.fcn) == 32
    with torch.no_grad():
        grid = conversion.fcn.to("meta")(torch.zeros(1, 3, 448, 448, device="meta")).shape[-2:]
    assert tuple(grid) == (8, 8)


VALID = _classifier("small_cnn_valid", (1, 28, 28))
VALID_FCN = convert(VALID, (1, 28, 28)).fcn


@settings(max_examples=12, deadline=None)
@given(h=st.integers(28, 64), w=st.integers(28, 64), seed=st.integers(0, 2**16))
def test_valid_padding_each_grid_score_is_the_classifier_on_its_window(h, w, seed):
    image = torch.randn(1, 1, h, w, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        grid = VALID_FCN(image)[0]                              # (10, rows, cols)
        s = 4
        assert grid.shape[1:] == ((h - 28) // s + 1, (w - 28) // s + 1)
        crops = torch.stack([image[0, :, i * s:i * s + 28, j * s:j * s + 28]
                             for i in range(grid.shape[1]) for j in range(grid.shape[2])])
        ref = VALID(crops).T.reshape(10, grid.shape[1], grid.shape[2])
    assert (grid - ref).abs().max() <= 1e-4


def test_same_padding_scores_differ_from_the_window_alone():
    """Why small_cnn_valid exists: a padded network's window sees real pixels where the classifier saw zeros."""
    model = _classifier("small_cnn", (1, 28, 28))
    fcn = convert(model, (1, 28, 28)).fcn
    image = torch.randn(1, 1, 40, 40, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        grid = fcn(image)[0]
        ref = model(image[:, :, 4:32, 4:32])[0]                 # the window of grid position (1, 1)
    assert (grid[:, 1, 1] - ref).abs().max() > 1e-3


@pytest.mark.parametrize("head,needle", [
    ([nn.Flatten(), nn.BatchNorm1d(8 * 4 * 4), nn.Linear(128, 3)], "BatchNorm1d"),
    ([nn.Flatten(), nn.Unflatten(1, (8, 16)), nn.Flatten(), nn.Linear(128, 3)], "Unflatten"),
    ([nn.Conv2d(8, 3, 4)], "no dense layer after a feature map"),
])
def test_layers_without_a_convolutional_equivalent_are_named(head, needle):
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.MaxPool2d(2), *head).eval()
    with pytest.raises(ConversionError, match=needle):
        convert(net, (1, 8, 8))


def test_vgg_at_a_size_where_its_adaptive_pool_resizes_is_refused():
    with torch.device("meta"):
        vgg = create_model("vgg11", input_size=112)
    with pytest.raises(ConversionError, match="adaptive pooling from 3×3 to 7×7"):
        convert(vgg.to_empty(device="cpu").eval(), (3, 112, 112))


def test_convert_and_scan_from_the_command_line(tmp_path, capsys):
    assert main(["fcn", "convert", "small_cnn_valid", "--out", str(tmp_path / "f"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["output_stride"] == 4 and report["exact_scan"] and report["max_abs_diff"] < 1e-5
    assert report["grid_at_double_input"]["grid"] == [8, 8]
    canvas = np.random.default_rng(0).integers(0, 256, (60, 44), dtype=np.uint8)
    Image.fromarray(canvas).save(tmp_path / "canvas.png")
    assert main(["fcn", "scan", str(tmp_path / "f"), str(tmp_path / "canvas.png"), "--out", str(tmp_path / "s")]) == 0
    probs = np.load(tmp_path / "s" / "canvas.npy")
    assert probs.shape == (10, (60 - 28) // 4 + 1, (44 - 28) // 4 + 1)
    assert np.allclose(probs.sum(0), 1, atol=1e-5) and (tmp_path / "s" / "canvas_heatmaps.png").stat().st_size > 0
    summary = json.loads((tmp_path / "s" / "canvas.json").read_text())
    assert len(summary["top_class"]) == probs.shape[1] and len(summary["top_class"][0]) == probs.shape[2]


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    spec = tmp_path / "conv_only.yaml"
    spec.write_text("input: [1, 8, 8]\nlayers:\n  - conv: {filters: 4, kernel: 3}\n  - global_avgpool\n")
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((10, 10), dtype=np.uint8)).save(small)
    assert main(["fcn", "convert", "small_cnn_valid", "--out", str(tmp_path / "f")]) == 0
    capsys.readouterr()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "fcn.json").write_text("{not json")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{damaged")
    cases = [(["fcn", "convert", str(spec), "--out", str(tmp_path / "o")], "no dense layer"),
             (["fcn", "convert", str(tmp_path / "run"), "--out", str(tmp_path / "o2")], "the run folder is damaged"),
             (["fcn", "scan", str(tmp_path / "f"), str(small)], "smaller than the network's 28×28 window"),
             (["fcn", "scan", str(tmp_path / "broken"), str(small)], "unreadable"),
             (["fcn", "scan", str(tmp_path), str(small)], "not an FCN folder")]
    for argv, needle in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and needle in err, (argv, err)


def test_the_callers_network_is_left_as_it_was():
    model = _classifier("small_cnn", (1, 28, 28)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fcn = convert(model, (1, 28, 28)).fcn
    with torch.no_grad():
        for p in fcn.parameters():
            p.add_(1.0)
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_global_max_pool_head_is_not_claimed_exact(capsys, tmp_path):
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval()
    conversion = convert(net, (1, 8, 8))
    assert conversion.global_pool == "max" and not conversion.mean_is_exact
    gap_relu = nn.Sequential(nn.Conv2d(1, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 4), nn.ReLU(),
                             nn.Linear(4, 3)).eval()
    assert not convert(gap_relu, (1, 8, 8)).mean_is_exact


def test_scan_checks_every_image_before_writing_and_convert_never_overwrites(tmp_path, capsys):
    assert main(["fcn", "convert", "small_cnn_valid", "--out", str(tmp_path / "f")]) == 0
    assert main(["fcn", "convert", "small_cnn_valid", "--out", str(tmp_path / "f")]) == 2
    assert "already holds fcn.json and fcn.safetensors" in capsys.readouterr().err
    Image.fromarray(np.zeros((40, 40), dtype=np.uint8)).save(tmp_path / "good.png")
    assert main(["fcn", "scan", str(tmp_path / "f"), str(tmp_path / "good.png"), str(tmp_path / "missing.png"),
                 "--out", str(tmp_path / "s")]) == 2
    assert "nothing was written" in capsys.readouterr().err and not (tmp_path / "s").exists()


def test_a_runs_input_is_used_where_its_network_takes_it_and_refused_where_not(tmp_path, capsys):
    """The learner's audit: `fcn convert RUN --input 1,8,8` used to convert at the run's size, silently."""
    gap = tmp_path / "gap.yaml"
    gap.write_text("input: [1, 8, 8]\nlayers:\n  - conv: {filters: 4, kernel: 3, padding: same}\n"
                   "  - activation: relu\n  - global_avgpool\n  - dense: {units: 10}\n")
    for name, model in (("flat", "small_cnn"), ("gap", str(gap))):
        assert main(["train", "--model", model, "--epochs", "1", "--train-size", "64", "--no-progress",
                     "--precision", "fp32", "--out", str(tmp_path / name)]) == 0
    capsys.readouterr()
    assert main(["fcn", "convert", str(tmp_path / "flat"), "--input", "1,6,6", "--out", str(tmp_path / "f1")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "trained on 1×8×8" in err and "--input" in err
    assert not (tmp_path / "f1" / "fcn.json").exists()
    assert main(["fcn", "convert", str(tmp_path / "gap"), "--input", "3,8,8", "--out", str(tmp_path / "f2")]) == 2
    assert "1 channel" in capsys.readouterr().err
    assert main(["fcn", "convert", str(tmp_path / "gap"), "--input", "1,16,16", "--out", str(tmp_path / "f3"),
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["window"] == [16, 16] and report["max_abs_diff"] < 1e-5
    assert json.loads((tmp_path / "f3" / "fcn.json").read_text())["input_shape"] == [1, 16, 16]
