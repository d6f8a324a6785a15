"""cnnlab study augmentation: the quick study on digits, its numbers checked against its run folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnlab.cli.main import main


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("augmentation")
    assert main(["study", "augmentation", "--quick", "--epochs", "2", "--seeds", "0,1", "--out", str(out),
                 "--no-progress"]) == 0
    return out


@pytest.mark.slow
def test_digits_get_no_flip_arm_and_every_run_is_its_folder(report):
    r = json.loads((report / "report.json").read_text())
    assert r["presets"] == ["none", "shift", "strong"] and not r["data"]["flip_ok"]   # a mirrored 2 is no 2
    assert r["sizes"][-1] == r["data"]["train_images"] and len(r["sizes"]) == 3
    full_steps = 2 * (r["sizes"][-1] // 64)
    for preset in r["presets"]:
        for n in r["sizes"]:
            accs, epochs = [], []
            for s in (0, 1):
                folder = report / "runs" / f"{preset}-n{n}-s{s}"
                accs.append(json.loads((folder / "test.json").read_text())["test_acc"])
                cfg = json.loads((folder / "config.json").read_text())["config"]
                assert cfg["augment"] == preset and cfg["seed"] == s
                assert cfg["train_size"] == (None if n == r["sizes"][-1] else n)
                epochs.append(cfg["epochs"])
            assert r["arms"][f"{preset}-n{n}"]["test_acc"]["values"] == pytest.approx(accs)
            # a smaller set gets the full set's steps, within 4× its epochs
            assert epochs[0] * (n // 64) >= full_steps or epochs[0] == 4 * 2
    assert [line.split("**")[1] for line in r["findings"]][-2:] == ["More data.", "Tolerance to variations"]


@pytest.mark.slow
def test_brightened_accuracy_is_the_run_on_images_times_one_and_a_half(report):
    from cnnlab.data import load_data
    from cnnlab.train.runs import open_run
    from cnnlab.train.tasks.classification import normalise

    r = json.loads((report / "report.json").read_text())
    n = r["sizes"][-1]
    run = open_run(report / "runs" / f"shift-n{n}-s1", "classification")
    test = load_data("digits", seed=1).test
    bright = torch.from_numpy(np.clip(test.images.numpy().astype(np.float64) * 1.5, 0, 255).astype(np.uint8))
    with torch.no_grad():
        pred = run.model.eval()(normalise(bright, run.mean, run.std)).argmax(1)
    # the study evaluates in the run's layout (channels-last here), this in NCHW: one near-tie may flip
    assert r["robustness"]["shift"]["brightened ×1.5"]["values"][1] == pytest.approx(
        float((pred == test.labels).float().mean()), abs=1.01 / len(test.labels))


def test_sizes_are_distinct_ascending_and_never_below_a_batch():
    from cnnlab.errors import CnnlabError
    from cnnlab.study.augmentation import AugmentConfig, _sizes

    assert _sizes(AugmentConfig(sizes=(4000, 1000, 4500, 1000), batch=128), 4500) == (1000, 4000, 4500)
    with pytest.raises(CnnlabError, match="--sizes 5000,9999: the training split holds 4,500 images"):
        _sizes(AugmentConfig(sizes=(4000, 1000, 5000, 9999), batch=128), 4500)     # not cut down in silence
    with pytest.raises(CnnlabError, match="--batch 5000: more than the smallest training-set size"):
        _sizes(AugmentConfig(batch=5000), 60000)                                # the defaults: --batch is to blame
    assert _sizes(AugmentConfig(batch=128), 1293) == (1000, 1293)          # full sizes on a small set: no repeats
    with pytest.raises(CnnlabError, match="--sizes 50: fewer training images than one batch of 128"):
        _sizes(AugmentConfig(sizes=(50, 1000), batch=128), 5000)


def test_a_zero_validation_share_is_refused_not_replaced_by_the_default(tmp_path):
    from cnnlab.errors import CnnlabError
    from cnnlab.study.augmentation import AugmentConfig, study

    assert AugmentConfig(quick=True, val_fraction=0.0).effective().val_fraction == 0.0
    assert AugmentConfig().effective().val_fraction == 0.05 and AugmentConfig(quick=True).effective().val_fraction == 0.1
    with pytest.raises(CnnlabError, match="val-fraction"):
        study(AugmentConfig(quick=True, val_fraction=0.0, out=str(tmp_path / "s")), progress=False)
    assert not (tmp_path / "s").exists()


def test_one_training_set_size_is_reported_once_and_not_compared_with_itself():
    from cnnlab.study.augmentation import findings
    from cnnlab.study.common import spread

    acc = {"none": [0.90, 0.91, 0.92], "shift": [0.93, 0.94, 0.95], "strong": [0.80, 0.81, 0.82]}
    r = {"sizes": [1294], "presets": list(acc), "variations": ["rotated ±15°"],
         "arms": {f"{p}-n1294": {"test_acc": spread(v)} for p, v in acc.items()},
         "robustness": {p: {"rotated ±15°": spread(v)} for p, v in acc.items()}}
    lines = findings(r)
    assert [line.split("**")[1] for line in lines] == ["1,294 training images.", "More data.", "Tolerance to variations"]
    assert "Not measured" in lines[1] and "helps here in every seed" in lines[0]     # shift's seeds all above none's


@pytest.mark.parametrize("given,says", [("1,000,4,000", "the comma separates sizes, not thousands"),
                                        ("500,0", "image counts of at least 1")])
def test_sizes_written_with_thousands_separators_are_refused_with_the_fix(given, says, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["study", "augmentation", "--sizes", given])
    assert stop.value.code == 2 and says in capsys.readouterr().err
