"""cnnlab ops from the command line: the issue's examples, JSON, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers import run

SEQ = ["--input", "1,2,3,4,5,6,7,8", "--kernel", "-1,0,1"]
GRID = "[[1,2,3,-1],[4,5,6,-2],[7,8,9,-3],[10,0,0,3]]"


@pytest.mark.parametrize("extra,expected", [
    (["--padding", "valid"], [2, 2, 2, 2, 2, 2]),
    (["--padding", "same"], [2, 2, 2, 2, 2, 2, 2, -7]),
    (["--padding", "same", "--flip"], [-2, -2, -2, -2, -2, -2, -2, 7]),
])
def test_conv1d_json(capsys, extra, expected):
    code, out, _ = run(capsys, "ops", "conv1d", *SEQ, *extra, "--json")
    assert code == 0
    d = json.loads(out)
    assert d["output"] == expected and d["output_shape"] == [len(expected)]
    assert "cross-correlation" in d["convention"] or "flipped" in d["convention"]


def test_conv1d_explain_json_has_trace(capsys):
    code, out, _ = run(capsys, "ops", "conv1d", *SEQ, "--padding", "same", "--json", "--explain")
    d = json.loads(out)
    assert d["padded_input"] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 0]
    assert d["trace"][7]["text"] == "y[7] = 7×(-1) + 8×0 + 0×1 = -7"
    assert d["trace"][7]["products"] == [-7, 0, 0] and d["trace_capped"] is False


def test_maxpool_grid(capsys):
    code, out, _ = run(capsys, "ops", "maxpool", "--input", GRID, "--size", "2", "--stride", "2")
    assert code == 0
    assert out.splitlines()[1:] == [" 5   6", "10   9"]


def test_global_avgpool_exact(capsys):
    x = "[[[1,2,3],[4,5,6],[10,0,3]],[[1,1,1],[1,1,2],[0,0,0]]]"
    code, out, _ = run(capsys, "ops", "global-avgpool", "--input", x, "--exact", "--json")
    d = json.loads(out)
    assert d["output"] == ["34/9", "7/9"] and d["output_shape"] == [2]
    assert abs(d["output_float"][0] - 34 / 9) < 1e-12


def test_lrn_both_conventions(capsys):
    _, tf_out, _ = run(capsys, "ops", "lrn", "--input", "1,2,3,4", "--depth-radius", "1", "--bias", "1",
                       "--alpha", "1", "--beta", "0.5", "--json", "--explain")
    _, pt_out, _ = run(capsys, "ops", "lrn", "--input", "1,2,3,4", "--size", "3", "--k", "1",
                       "--alpha", "3", "--beta", "0.5", "--json")
    tf, pt = json.loads(tf_out), json.loads(pt_out)
    assert np.allclose(tf["output"], pt["output"])
    assert "size=3, alpha=1×3=3" in tf["notes"][0]


def test_explain_text_and_cap(capsys):
    code, out, _ = run(capsys, "ops", "conv2d", "--input", "[[1,2,3],[4,5,6],[7,8,9]]",
                       "--kernel", "[[1,0],[0,-1]]", "--explain", "--trace-limit", "2")
    assert code == 0
    assert "padded input" in out and "y[0, 0] = 1×1 + 2×0 + 4×0 + 5×(-1) = -4" in out
    assert "trace capped: 2 of 4" in out


def test_npy_and_json_files(capsys, tmp_path):
    np.save(tmp_path / "x.npy", np.arange(1.0, 9.0))
    (tmp_path / "k.json").write_text("[-1, 0, 1]")
    code, out, _ = run(capsys, "ops", "conv1d", "--input", str(tmp_path / "x.npy"),
                       "--kernel", str(tmp_path / "k.json"), "--json")
    assert code == 0 and json.loads(out)["output"] == [2] * 6


@pytest.mark.parametrize("argv,needle", [
    (["conv1d", "--input", "[[1,2],[3]]", "--kernel", "1"], "ragged list"),
    (["conv1d", "--input", "1,a,3", "--kernel", "1"], "'a' is not a number"),
    (["conv1d", "--input", "1,2", "--kernel", "1,2,3"], "larger than the padded input"),
    (["conv1d", "--input", "1,2,3", "--kernel", "1", "--stride", "0"], "--stride must be >= 1"),
    (["maxpool", "--input", "1,2,3", "--size", "-1"], "--size must be >= 1"),
    (["conv2d", "--input", "[[[1,2],[3,4]],[[1,2],[3,4]]]", "--kernel", "[[[1]],[[1]],[[1]]]"],
     "3 input channel(s) but --input has 2"),
    (["conv1d", "--input", "1,2,3", "--kernel", "1", "--padding", "wide"], "argument --padding"),
    (["conv1d", "--input", "missing.npy", "--kernel", "1"], "no such file 'missing.npy'"),
    (["lrn", "--input", "1,2", "--size", "3", "--bias", "1"], "not both"),
    (["conv1d", "--input", "1,2,3"], "--kernel"),
    # bounds (robustness issue): no overflow traceback, no allocation of terabytes
    (["conv1d", "--input", "1,2,1e400", "--kernel", "1,1"], "too large; numbers go up to ±1e100"),
    (["conv1d", "--input", "1,2," + "9" * 5000, "--kernel", "1,1"], "a number of 5000 characters"),
    (["conv1d", "--input", "1,2,3", "--kernel", "1,1", "--padding", "100000000000"], "go up to 256"),
    (["conv2d", "--input", "[[1,2],[3,4]]", "--kernel", "[[1]]", "--padding", "257", "--exact"], "go up to 256"),
    (["lrn", "--input", "1,2,3", "--size", "3000000000"], "go up to 256"),
])
def test_errors(capsys, argv, needle):
    code, out, err = run(capsys, "ops", *argv)
    assert code == 2 and needle in err
    assert err.count("\n") == 1 and "Traceback" not in err and out == ""


def test_maxpool_same_padding_explains_and_serialises_minus_infinity(capsys):
    """'same' max pooling pads with −∞: the text shows it, the JSON (which has no infinity) says "-inf"."""
    import torch

    grid = "[[1,2,3],[4,5,6],[7,8,9]]"
    code, out, _ = run(capsys, "ops", "maxpool", "--input", grid, "--size", "2", "--padding", "same", "--explain")
    assert code == 0 and "−∞" in out and "y[1, 1] = max(9) = 9" in out
    code, out, _ = run(capsys, "ops", "maxpool", "--input", grid, "--size", "2", "--padding", "same",
                       "--json", "--explain")
    d = json.loads(out)   # strict JSON: json.loads would accept -Infinity, so check the text too
    assert "Infinity" not in out and d["padded_input"][3] == ["-inf"] * 4
    x = torch.tensor([[[[1., 2, 3], [4, 5, 6], [7, 8, 9]]]])
    ref = torch.nn.functional.max_pool2d(torch.nn.functional.pad(x, (0, 1, 0, 1), value=float("-inf")), 2)
    assert d["output"] == ref[0, 0].int().tolist()
