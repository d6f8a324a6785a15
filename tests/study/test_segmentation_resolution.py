"""cnnlab study segmentation-resolution on a few tiny scenes: its numbers are its run folders'."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnlab.errors import CnnlabError
from cnnlab.study.segmentation_resolution import MODELS, SegResConfig, study

TINY = {"quick": True, "epochs": 1, "seeds": (0, 1), "scenes": 60, "size": 32}


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("segres")
    study(SegResConfig(out=str(out), **TINY), progress=False)
    return out


@pytest.mark.slow
def test_every_score_is_its_run_folders_and_the_strides_are_the_papers(report):
    r = json.loads((report / "report.json").read_text())
    assert [r["arms"][m]["output_stride"] for m in MODELS] == [32, 16, 8, 1]
    for m in MODELS:
        tests = [json.loads((report / "runs" / f"{m}-s{s}" / "test.json").read_text()) for s in (0, 1)]
        assert r["arms"][m]["miou"]["values"] == pytest.approx([t["miou"] for t in tests])
        assert r["arms"][m]["boundary_miou"]["values"] == pytest.approx([t["boundary_miou"] for t in tests])
        cfg = json.loads((report / "runs" / f"{m}-s0" / "config.json").read_text())["config"]
        assert cfg["task"] == "semantic" and cfg["model"] == m and cfg["data"] == str((report / "scenes").resolve())
    # every network trained on the same scenes: one folder, written once
    assert len(list((report / "scenes" / "test" / "images").iterdir())) == 6
    assert (report / r["figures"][0]).stat().st_size > 0
    # two seeds of one epoch: no difference is claimed ("not shown", or a network has not learnt)
    assert "every seed" not in r["findings"][1]
    assert cfg["channels_last"] is True
    # digit scenes are never mirrored (a mirrored digit is another shape): the runs and the report say so
    assert cfg["augment"] == "none" and "augment none" in (report / "report.md").read_text()
    assert "not shown" in r["findings"][1] or "not learnt" in r["findings"][1]


@pytest.mark.slow
def test_other_settings_are_refused(report):
    with pytest.raises(CnnlabError, match="made with other settings .*epochs 1"):
        study(SegResConfig(out=str(report), **{**TINY, "epochs": 2}), progress=False)


def test_scenes_drawn_with_other_settings_are_refused_not_reused(tmp_path):
    from cnnlab.study.segmentation_resolution import make_scene_folder

    cfg = SegResConfig(out=str(tmp_path), **TINY).effective()
    folder = make_scene_folder(cfg, tmp_path / "scenes")
    assert make_scene_folder(cfg, tmp_path / "scenes") == folder           # the same settings: reused
    with pytest.raises(CnnlabError, match="scenes drawn with other settings"):
        make_scene_folder(SegResConfig(out=str(tmp_path), **{**TINY, "scenes": 90}).effective(), tmp_path / "scenes")


def test_not_learnt_means_no_better_than_background_everywhere():
    import torch

    from cnnlab.study.segmentation_resolution import background_miou, learnt
    from cnnlab.train.tasks.semantic import scores

    def miou(cm):
        return scores(torch.tensor(cm))["miou"]

    # 90 background pixels, 10 of class 1: everything background scores IoU 90/100 and 0/10, mIoU 0.45
    everything_background = [[90, 0], [10, 0]]
    assert background_miou(everything_background) == pytest.approx(0.45) == pytest.approx(miou(everything_background))
    assert not learnt(miou(everything_background), everything_background)
    # on 100 pixels, one of class 1 found: mIoU (89/99 + 1/11) / 2 = 0.495, 4.5 points above: learnt
    few = [[89, 1], [9, 1]]
    assert miou(few) == pytest.approx((89 / 99 + 1 / 11) / 2) and learnt(miou(few), few)
    # on 9,996 pixels, 1 of class 1's 1,001 found: (8995/9995 + 1/1001) / 2, 0.05 points above: stray, not learnt
    stray = [[8995, 0], [1000, 1]]
    assert miou(stray) - background_miou(stray) == pytest.approx((8995 / 9995 + 1 / 1001) / 2 - 8995 / 9996 / 2)
    assert not learnt(miou(stray), stray)
    # most of class 1 found: (85/93 + 7/15) / 2 = 0.69
    found = [[85, 5], [3, 7]]
    assert miou(found) == pytest.approx((85 / 93 + 7 / 15) / 2) and learnt(miou(found), found)
    # a class the network predicts but the test truth lacks counts in both means: 4 classes, truth in 0 and 1 only;
    # the network gets background 80/87 and class 1 8/10 right, mIoU (0.920 + 0.8 + 0 + 0) / 4 = 0.43, against
    # everything background's (0.9 + 0 + 0 + 0) / 4 = 0.225 over the same classes
    extra = [[80, 0, 5, 5], [2, 8, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    assert background_miou(extra) == pytest.approx(0.9 / 4) and learnt(miou(extra), extra)
