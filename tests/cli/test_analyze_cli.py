"""cnnlab analyze from the command line: output, JSON and one-line errors (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import run
from tests.zygote import run_cnnlab


def test_json_geron(capsys, examples):
    code, out, _ = run(capsys, "analyze", str(examples / "geron_ex2.yaml"), "--batch", "50", "--json")
    assert code == 0
    d = json.loads(out)
    assert d["total_params"] == 903_400
    assert [layer["output_shape"] for layer in d["layers"]] == [[100, 100, 150], [200, 50, 75], [400, 25, 38]]
    assert d["memory"]["textbook"]["inference_bytes"] == 12_613_600
    assert d["memory"]["textbook"]["training_bytes"] == 565_613_600


def test_the_shipped_examples_by_name_from_any_folder(capsys, tmp_path, monkeypatch):
    """The README's headline example works after pip install, from anywhere (the book's answer: 903,400)."""
    import tomllib
    from pathlib import Path

    from cnnlab.packaged import EXAMPLE_SPECS, PACKAGED_SPECS

    monkeypatch.chdir(tmp_path)
    (tmp_path / "geron_ex2").mkdir()          # a folder of that name here (a run, say) does not hide it
    code, out, _ = run(capsys, "analyze", "geron_ex2", "--batch", "50", "--json")
    assert code == 0 and json.loads(out)["total_params"] == 3 * 3 * 3 * 100 + 100 + 3 * 3 * 100 * 200 + 200 + \
        3 * 3 * 200 * 400 + 400
    assert {"geron_ex2", "maxpool_vs_conv", "dense_head", "separable_net"} <= set(EXAMPLE_SPECS)
    # each packaged spec is matched by the wheel's package-data (else pip install leaves it out)
    package = Path(__file__).parents[2] / "src" / "cnnlab"
    globs = tomllib.loads((package.parents[1] / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["cnnlab"]
    for path in PACKAGED_SPECS.values():
        assert any(path.relative_to(package).match(g) for g in globs), path


def test_table_and_explain(capsys, examples):
    code, out, _ = run(capsys, "analyze", str(examples / "geron_ex2.yaml"), "--batch", "50", "--explain")
    assert code == 0
    assert "conv_3" in out and "400×25×38" in out
    assert "565,613,600 B (565.61 MB, 539.41 MiB)" in out
    assert "Derivation for geron_ex2" in out


def test_module_target(capsys):
    code, out, _ = run(capsys, "analyze", "torchvision.models:resnet18", "--input", "3,224,224", "--json")
    assert code == 0 and json.loads(out)["total_params"] == 11_689_512


def test_dtype_flag(capsys, examples):
    code, out, _ = run(capsys, "analyze", str(examples / "geron_ex2.yaml"), "--dtype", "float16", "--json")
    d = json.loads(out)
    assert d["dtype"] == "float16" and d["memory"]["textbook"]["param_bytes"] == 1_806_800


@pytest.fixture
def factories(tmp_path, monkeypatch):
    (tmp_path / "my_nets.py").write_text(textwrap.dedent("""
        from torch import nn
        def good():
            return nn.Sequential(nn.Flatten(), nn.Linear(12, 2))
        def not_a_module():
            return 42
        def needs_args(width):
            return nn.Linear(width, 2)
        CONSTANT = 3
    """))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_file_module_target(capsys, factories):
    code, out, _ = run(capsys, "analyze", "my_nets.py:good", "--input", "3,2,2", "--json")
    assert code == 0 and json.loads(out)["total_params"] == 26


def test_the_table_says_what_the_totals_hold_beyond_its_rows(capsys):
    code, out, _ = run(capsys, "analyze", "torchvision.models:vit_b_16", "--input", "3,224,224")
    assert code == 0 and "not in any row, but in the totals: the network's own parameters: class_token (768 parameters)" in out
    code, out, _ = run(capsys, "analyze", "torchvision.models:googlenet", "--input", "3,224,224")
    # the auxiliary classifiers run only in training mode: 1×1 conv C→128 (no bias) + BN 128 + fc 2048→1024
    # + fc 1024→1000 = 128·C + 256 + 2,098,176 + 1,025,000, with C = 512 (aux1) and 528 (aux2)
    assert ("not in any row, but in the totals: modules this forward never calls: aux1 (3,188,968 parameters), "
            "aux2 (3,191,016 parameters), 6,379,984 parameters in all") in out
    code, out, _ = run(capsys, "analyze", "torchvision.models:resnet18", "--input", "3,224,224")
    assert "not in any row" not in out


@pytest.mark.parametrize("argv,needle", [
    (["analyze", "my_nets:not_a_module", "--input", "3,2,2"], "returned int, not an nn.Module"),
    (["analyze", "my_nets:needs_args", "--input", "3,2,2"], "cannot be called with no arguments"),
    (["analyze", "my_nets:CONSTANT", "--input", "3,2,2"], "neither an nn.Module nor callable"),
    (["analyze", "my_nets:missing", "--input", "3,2,2"], "has no attribute 'missing'"),
    (["analyze", "no_such_pkg.mod:f", "--input", "3,2,2"], "cannot import module 'no_such_pkg.mod'"),
    (["analyze", "my_nets:good"], "--input C,H,W is required"),
    (["analyze", "my_nets:good", "--input", "3,x,2"], "--input '3,x,2' must be C,H,W"),
    (["analyze", "my_nets:good", "--input", "3,2,2", "--batch", "0"], "must be a positive integer"),
    (["analyze", "missing.yaml"], "missing.yaml: no such file"),
    (["analyze", "resnet9000"], "unknown zoo model 'resnet9000' (did you mean resnet18"),
    (["analyze", "nets/missing.pt"], "no such spec file"),
    (["analyze", "lenet5", "--input", "1,28,28"], "lenet5 needs inputs of at least 32×32"),
    (["analyze", "resnet50", "--input", "64"], "--input must be C,H,W for a zoo model"),
    (["analyze", "my_nets:good", "--input", "5,5,5"], "does not accept input [5, 5, 5]"),
])
def test_errors_are_one_line_exit_2(capsys, factories, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert needle in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert out == ""


def test_spec_error_names_file_layer_field(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: [3, 8, 8]\nlayers:\n  - conv: {filters: 4, kernel: 9}\n")
    code, _, err = run(capsys, "analyze", str(bad))
    assert code == 2
    assert err.startswith(f"cnnlab: error: {bad}: layer 1 (conv): field 'kernel': kernel 9 is larger")


def test_console_script_and_module_entry(examples):
    # The real entry points, each a new interpreter: the installed console script and python -m cnnlab.
    script = Path(sys.executable).parent / "cnnlab"
    ok = subprocess.run([str(script), "analyze", str(examples / "geron_ex2.yaml"), "--json"], capture_output=True,
                        text=True)
    assert ok.returncode == 0 and json.loads(ok.stdout)["total_params"] == 903_400
    bad = run_cnnlab("analyze", "nope.yaml", fresh=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and bad.stderr.count("\n") == 1


def test_zoo_name_target_uses_its_usual_input_or_the_given_one(capsys):
    code, out, _ = run(capsys, "analyze", "resnet50", "--json")
    report = json.loads(out)
    assert code == 0 and report["name"] == "resnet50" and report["input_shape"] == [3, 224, 224]
    assert report["total_params"] == 25_557_032 and report["total_macs"] == 4_089_184_256
    code, out, _ = run(capsys, "analyze", "ResNet-18", "--input", "1,64,64", "--json")
    report = json.loads(out)
    assert report["input_shape"] == [1, 64, 64]
    assert report["total_params"] == 11_689_512 - 2 * 7 * 7 * 64  # one input channel instead of three


@pytest.mark.parametrize("command", [["analyze"], ["memory"]])
def test_the_packaged_small_cnn_is_a_target_everywhere(capsys, command):
    """``train --model small_cnn`` works, so every command takes the name (one model resolution)."""
    from cnnlab.train.model import build_model

    code, out, err = run(capsys, *command, "small_cnn", "--json")
    assert code == 0, err
    net, _ = build_model("small_cnn", (1, 28, 28), 10)
    params = json.loads(out).get("total_params", json.loads(out).get("params"))
    assert params == sum(p.numel() for p in net.parameters()) == 266_602


def test_keras_order_input_option_is_one_line_with_the_fix(capsys):
    code, _, err = run(capsys, "analyze", "lenet5", "--input", "32,32,1")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "use --input 1,32,32" in err
