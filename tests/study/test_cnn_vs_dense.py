"""The CNN-vs-dense study: shifts against torchvision, the matched dense network, the report, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from cnnlab.cli.main import main
from cnnlab.errors import CnnlabError
from cnnlab.study.cnn_vs_dense import StudyConfig, plan, shift_images, study


@pytest.mark.parametrize("dy, dx", [(0, 0), (2, 0), (0, -3), (-1, 4), (5, 5)])
def test_shift_is_torchvisions_integer_translation_with_zero_fill(dy, dx):
    x = torch.randint(1, 255, (3, 2, 9, 11), dtype=torch.uint8)
    ref = TF.affine(x, angle=0.0, translate=[dx, dy], scale=1.0, shear=[0.0, 0.0],
                    interpolation=TF.InterpolationMode.NEAREST, fill=0)
    assert torch.equal(shift_images(x, dy, dx), ref)


def test_the_dense_network_matches_the_cnns_parameter_count(tmp_path):
    p = plan(StudyConfig(data="digits", out=str(tmp_path), epochs=1, quick=True))
    from cnnlab.train.model import build_model

    n = {m: sum(t.numel() for t in build_model(p.models[m], p.shape, p.classes)[0].parameters()) for m in p.models}
    assert abs(n["dense"] - n["cnn"]) / n["cnn"] < 0.01
    assert n["cnn_gap"] < n["cnn"]
    # every subset run gets the steps of the full run (fewer images, more epochs), within 4× its epochs
    full = p.runs["cnn"]
    for key, tc in p.runs.items():
        if tc.train_size:
            steps = tc.epochs * (tc.train_size // tc.batch)
            assert steps >= full.epochs * (p.train_images // full.batch) or tc.epochs == 4 * full.epochs


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("study")
    assert main(["study", "cnn-vs-dense", "--data", "digits", "--quick", "--epochs", "2", "--out", str(out),
                 "--no-progress"]) == 0
    return out


@pytest.mark.slow
def test_the_report_holds_all_five_measurements(report):
    r = json.loads((report / "report.json").read_text())
    assert set(r) >= {"sizes", "runs", "efficiency", "translation", "permutation", "findings", "figures"}
    assert [x["input"] for x in r["sizes"]["dense"]] == [8, 16, 32, 64]
    # a dense first layer grows with the pixels (×64 at 8× the side), a convolution's does not
    first = [x["first_layer_params"] for x in r["sizes"]["dense"]]
    assert first[-1] > 60 * first[0] and len({x["first_layer_params"] for x in r["sizes"]["cnn"]}) == 1
    assert len({x["params"] for x in r["sizes"]["cnn_gap"]}) == 1
    assert [e["train_images"] for e in r["efficiency"]["cnn"]] == sorted(e["train_images"] for e in r["efficiency"]["cnn"])
    assert r["shifts"][0] == 0 and set(r["translation"]) == {"dense", "dense-shift", "cnn", "cnn-shift", "cnn_gap",
                                                             "cnn_gap-shift"}
    text = (report / "report.md").read_text()
    for heading in ("## 1. Parameters", "## 2. Accuracy", "## 3. Data efficiency", "## 4. Translation",
                    "## 5. Pixel order"):
        assert heading in text
    for f in r["figures"]:
        assert (report / f).stat().st_size > 0
    assert [line.split("**")[1] for line in r["findings"]] == ["Parameters.", "Accuracy.", "Data.", "Translation.",
                                                               "Pixel order."]
    # the numbers in the sentences are the measured ones
    assert f"{100 * r['runs']['cnn']['test_acc']:.2f} %" in r["findings"][1]


@pytest.mark.slow
def test_a_fixed_pixel_permutation_leaves_the_dense_network_within_noise(report):
    perm = json.loads((report / "report.json").read_text())["permutation"]["dense"]
    assert abs(perm["permuted"] - perm["plain"]) <= 0.03


@pytest.mark.slow
def test_a_finished_study_is_reused_and_other_settings_are_refused(report):
    weights = report / "runs" / "cnn" / "model.safetensors"
    before = weights.stat().st_mtime_ns
    study(StudyConfig(data="digits", quick=True, epochs=2, out=str(report)), progress=False)
    assert weights.stat().st_mtime_ns == before                   # nothing retrained
    with pytest.raises(CnnlabError, match="made with other settings .*epochs 2"):
        study(StudyConfig(data="digits", quick=True, epochs=3, out=str(report)), progress=False)
