"""cnnlab study pooling-vs-stride: its quick form on digits, its numbers checked against its run folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.transforms.v2 import functional as TF

from cnnlab.cli.main import main
from cnnlab.errors import CnnlabError
from cnnlab.study.pooling_vs_stride import ARMS, PoolingConfig, study


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pooling")
    assert main(["study", "pooling-vs-stride", "--quick", "--epochs", "2", "--seeds", "0,1", "--out", str(out),
                 "--no-progress"]) == 0
    return out


@pytest.mark.slow
def test_parameters_pooling_adds_none_the_strided_convolutions_add_their_weights(report):
    r = json.loads((report / "report.json").read_text())
    sz = r["sizes"]
    assert sz["maxpool"]["params"] == sz["avgpool"]["params"]
    # small_cnn's two pools (after 32 and 64 channels) become 3×3 stride-2 convolutions with batch norm
    added = sum(p.numel() for m in (nn.Conv2d(32, 32, 3, bias=False), nn.BatchNorm2d(32),
                                    nn.Conv2d(64, 64, 3, bias=False), nn.BatchNorm2d(64)) for p in m.parameters())
    assert sz["conv"]["params"] - sz["maxpool"]["params"] == added
    assert sz["conv"]["macs"] > sz["maxpool"]["macs"]
    assert f"add {added:,}" in r["findings"][0]


@pytest.mark.slow
def test_every_accuracy_is_its_run_folders(report):
    r = json.loads((report / "report.json").read_text())
    assert r["config"]["seeds"] == [0, 1] and r["data"]["name"] == "digits" and "torch threads" in r["machine"]
    for arm in ARMS:
        accs = [json.loads((report / "runs" / f"{arm}-s{s}" / "test.json").read_text())["test_acc"] for s in (0, 1)]
        assert r["arms"][arm]["test_acc"]["values"] == pytest.approx(accs)
        assert r["arms"][arm]["shifted"]["0"]["values"] == pytest.approx(accs, abs=1e-6)   # no shift: the test
        cfg = json.loads((report / "runs" / f"{arm}-s0" / "config.json").read_text())["config"]
        assert cfg["epochs"] == 2 and cfg["model"].endswith(f"{arm}.yaml")
    # with two seeds no difference is claimed
    assert "not shown" in r["findings"][2] and "not shown" in r["findings"][3]


@pytest.mark.slow
def test_shifted_accuracy_is_torchvisions_translation(report):
    """The 1-pixel shift figure, recomputed with torchvision's affine translation (zero fill)."""
    from cnnlab.data import load_data
    from cnnlab.train.runs import open_run
    from cnnlab.train.tasks.classification import normalise

    r = json.loads((report / "report.json").read_text())
    run = open_run(report / "runs" / "conv-s0", "classification")
    test = load_data("digits", seed=0).test
    accs = []
    for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        moved = TF.affine(test.images, angle=0.0, translate=[dx, dy], scale=1.0, shear=[0.0, 0.0],
                          interpolation=TF.InterpolationMode.NEAREST, fill=0)
        with torch.no_grad():
            pred = run.model.eval()(normalise(moved, run.mean, run.std)).argmax(1)
        accs.append(float((pred == test.labels).float().mean()))
    # the study evaluates in the run's layout (channels-last here), this in NCHW: one near-tie may flip
    assert r["arms"]["conv"]["shifted"]["1"]["values"][0] == pytest.approx(sum(accs) / 4, abs=1.01 / len(test.labels))


@pytest.mark.slow
def test_a_finished_study_is_reused_and_other_settings_refused(report):
    weights = report / "runs" / "maxpool-s0" / "model.safetensors"
    before = weights.stat().st_mtime_ns
    study(PoolingConfig(quick=True, epochs=2, seeds=(0, 1), out=str(report)), progress=False)
    assert weights.stat().st_mtime_ns == before
    with pytest.raises(CnnlabError, match="made with other settings .*epochs 2"):
        study(PoolingConfig(quick=True, epochs=3, seeds=(0, 1), out=str(report)), progress=False)


@pytest.mark.slow
def test_the_command_prints_each_finding_whole_on_one_line(report, capsys):
    # rerun on the finished folder (only the report is written again), output to a pipe: no paragraph is cut at a
    # console width (rich hard-wrapped them at 160 columns)
    assert main(["study", "pooling-vs-stride", "--quick", "--epochs", "2", "--seeds", "0,1", "--out", str(report),
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out.splitlines()
    findings = json.loads((report / "report.json").read_text())["findings"]
    assert max(map(len, findings)) > 160
    for finding in findings:
        assert "- " + finding.replace("**", "") in printed
    assert printed[-1] == f"report: {report / 'report.md'}"


def test_a_data_folder_is_compared_as_the_engine_saves_it(tmp_path, monkeypatch):
    """A study on --data DIR (relative) resumes: its runs' data is the folder made absolute, as config.json has it."""
    from cnnlab.study.common import seed_runs
    from cnnlab.train.config import TrainConfig

    monkeypatch.chdir(tmp_path)
    (tmp_path / "imgs").mkdir()
    runs = seed_runs(TrainConfig(data="imgs"), {"a": {}}, (0, 1), tmp_path / "out")
    assert {tc.data for tc in runs.values()} == {str(tmp_path / "imgs")}
    assert seed_runs(TrainConfig(data="digits"), {"a": {}}, (0,), tmp_path / "out")["a-s0"].data == "digits"
