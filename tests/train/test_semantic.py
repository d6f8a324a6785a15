"""The semantic task: metrics against torchmetrics, the boundary band, training end to end, exact resume."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassJaccardIndex

from cnnlab.train import KILL_HOOK
from cnnlab.train.tasks.semantic import boundary_band, iou_per_class, pixel_confusion, scores
from tests.helpers import run_ok, torchrun_env, weights
from tests.zygote import run_cnnlab
from tests.helpers import run as here, run_here_ok as here_ok

K = 5


def random_masks(seed: int, n: int = 6, size: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    truth = torch.randint(0, K, (n, size, size), generator=g)
    truth[torch.rand(truth.shape, generator=g) < 0.1] = 255           # some ignored pixels
    truth[truth == 3] = 0                                              # class 3 never true ...
    pred = torch.where(torch.rand(truth.shape, generator=g) < 0.6, truth.clamp(max=K - 1),
                       torch.randint(0, K, truth.shape, generator=g))
    pred[pred == 4] = 1                                                # ... class 4 never predicted
    return truth, pred


@pytest.mark.parametrize("seed", range(4))
def test_confusion_iou_and_pixel_accuracy_equal_torchmetrics(seed):
    truth, pred = random_masks(seed)
    cm = pixel_confusion(truth, pred, K)
    ref_cm = MulticlassConfusionMatrix(K, ignore_index=255)(pred, truth)      # rows: true class
    assert torch.equal(cm, ref_cm)
    ref_iou = MulticlassJaccardIndex(K, average="none", ignore_index=255)(pred, truth)
    ours = iou_per_class(cm)
    for c in range(K):
        assert ours[c] == pytest.approx(float(ref_iou[c]), abs=1e-6)
    s = scores(cm)
    assert s["miou"] == pytest.approx(float(MulticlassJaccardIndex(K, average="macro", ignore_index=255)(pred, truth)),
                                      abs=1e-6)
    assert s["pixel_accuracy"] == pytest.approx(
        float(MulticlassAccuracy(K, average="micro", ignore_index=255)(pred, truth)), abs=1e-6)


def test_a_class_in_neither_truth_nor_prediction_is_left_out_of_the_mean():
    truth = torch.tensor([[0, 0, 1, 1]])
    pred = torch.tensor([[0, 1, 1, 1]])
    iou = iou_per_class(pixel_confusion(truth, pred, 3))
    assert iou == [pytest.approx(1 / 2), pytest.approx(2 / 3), None]
    assert scores(pixel_confusion(truth, pred, 3))["miou"] == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_the_boundary_band_is_the_pixels_within_two_of_an_edge():
    m = torch.zeros(1, 20, 20, dtype=torch.uint8)
    m[0, 5:15, 5:15] = 1                                   # a 10×10 square
    band = boundary_band(m, 2)[0]
    # outside ring rows/cols 3..4 and 15..16, inside ring 5..6 and 13..14: the 14×14 square minus the 6×6 core
    expected = torch.zeros(20, 20, dtype=torch.bool)
    expected[3:17, 3:17] = True
    expected[7:13, 7:13] = False
    assert torch.equal(band, expected)


@pytest.fixture(scope="module")
def easy_scenes(tmp_path_factory) -> Path:
    """Scenes of two easy item classes: filled squares and hollow rings, on black."""
    root = tmp_path_factory.mktemp("easy")
    items = root / "items"
    for cls in ("square", "ring"):
        (items / cls).mkdir(parents=True)
    for i in range(30):
        a = np.zeros((12, 12), np.uint8)
        a[1:11, 1:11] = 100 + 5 * i
        Image.fromarray(a).save(items / "square" / f"{i}.png")
        r = a.copy()
        r[4:8, 4:8] = 0
        Image.fromarray(r).save(items / "ring" / f"{i}.png")
    run_ok("scenes", "make", "--source", str(items), "--count", "240", "--size", "32,32", "--objects", "1..2",
           "--item-px", "10..14", "--out", str(root / "scenes"), "--no-progress")
    return root / "scenes"


@pytest.mark.slow
def test_train_eval_predict_end_to_end_on_easy_scenes(easy_scenes, tmp_path, capsys):
    # in this process (main(), as `cnnlab` runs it; one torch import less per command): `python -m cnnlab` itself
    # is tested in tests/cli/test_startup.py and by the kill tests below
    run = tmp_path / "run"
    code, out, _ = here(capsys, "segment", "train", "--data", str(easy_scenes), "--model", "unet", "--width", "8",
                        "--depth", "2", "--epochs", "8", "--batch", "16", "--lr", "0.01", "--out", str(run),
                        "--no-progress")
    assert code == 0 and "test mIoU" in out
    report = json.loads((run / "test.json").read_text())
    assert report["classes"] == ["background", "ring", "square"]
    assert report["miou"] > 0.8, report                      # easy scenes: a tiny U-Net learns them
    assert json.loads((run / "config.json").read_text())["config"]["lr"] == 0.01     # a given rate wins the recipe's
    for name in ("curves.png", "iou.png", "overlays.png", "metrics.csv", "model.safetensors"):
        assert (run / name).stat().st_size > 0
    ev = json.loads(here_ok(capsys, "segment", "eval", str(run), "--json"))
    assert ev["miou"] == pytest.approx(report["miou"]) and ev["confusion"] == report["confusion"]
    image = next((easy_scenes / "test" / "images").glob("*.png"))
    pred = json.loads(here_ok(capsys, "segment", "predict", str(run), str(image), "--out", str(tmp_path / "p"),
                              "--json"))
    mask = Image.open(pred["predictions"][0]["mask"])
    assert mask.mode == "P" and mask.size == (32, 32)
    truth = np.asarray(Image.open(easy_scenes / "test" / "masks" / image.name))
    assert (np.asarray(mask) == truth).mean() > 0.9
    assert Image.open(pred["predictions"][0]["overlay"]).mode == "RGB"
    for wrong in (["eval", str(run)], ["predict", str(run), str(image)], ["fcn", "convert", str(run), "--out",
                                                                           str(tmp_path / "f")]):
        code, _, err = here(capsys, *wrong)
        assert code == 2 and "segmentation" in err and err.count("\n") == 1, err


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_gives_the_uninterrupted_weights(easy_scenes, tmp_path):
    common = ["segment", "train", "--data", str(easy_scenes), "--model", "fcn8s", "--width", "4", "--epochs", "2",
              "--batch", "32", "--augment", "basic", "--checkpoint-every", "4", "--no-progress"]
    run_ok(*common, "--out", str(tmp_path / "ref"), fresh=True)    # an interpreter of its own
    env = {**os.environ, KILL_HOOK: "9"}        # 6 steps per epoch: killed at step 3 of epoch 2, checkpoint at 8
    killed = run_cnnlab(*common, "--out", str(tmp_path / "run"), env=env)
    assert killed.returncode == -9
    run_ok("segment", "train", "--resume", str(tmp_path / "run"), "--no-progress")
    assert "resumed at epoch 2, step 2" in (tmp_path / "run" / "log.txt").read_text()
    a, b = weights(tmp_path / "ref"), weights(tmp_path / "run")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    import csv

    def metrics(run: Path) -> list[dict[str, str]]:   # the epoch sums restored from the checkpoint, not the times
        with open(run / "metrics.csv", newline="") as f:
            return [{k: v for k, v in row.items() if k.startswith(("train_", "val_", "epoch,", "lr"))}
                    for row in csv.DictReader(f)]

    assert metrics(tmp_path / "ref") == metrics(tmp_path / "run")


def test_a_classifier_is_refused_as_a_segmentation_model(easy_scenes, tmp_path):
    from cnnlab.errors import CnnlabError
    from cnnlab.train.tasks.semantic import build_semantic_model

    with pytest.raises(CnnlabError, match="resnet18 is a classifier"):
        build_semantic_model("resnet18", (1, 32, 32), 3, {})
    model, _ = build_semantic_model("fcn8s", (1, 48, 48), 3, {"width": 4})    # any size: padded inside
    assert model(torch.zeros(1, 1, 48, 48)).shape == (1, 3, 48, 48)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None,
                    reason="torchrun not installed next to this Python")
def test_torchrun_two_processes_train_a_segmentation_network(easy_scenes, tmp_path):
    """A smoke test: DDP over a segmentation network finishes and rank 0 alone writes. Not compared with one
    process: batch norm's statistics are each process's half batch (as in torchvision's and timm's references
    without --sync-bn)."""
    run = tmp_path / "two"
    torchrun = str(Path(sys.executable).parent / "torchrun")
    p = subprocess.run([torchrun, "--nproc-per-node", "2", "-m", "cnnlab", "segment", "train", "--data",
                        str(easy_scenes), "--model", "fcn8s", "--width", "4", "--epochs", "1", "--batch", "32",
                        "--no-progress", "--out", str(run)],
                       capture_output=True, text=True, env=torchrun_env(tmp_path))
    assert p.returncode == 0, p.stderr[-3000:]
    assert (run / "log.txt").read_text().count("epoch 1:") == 1
    assert 0.0 <= json.loads((run / "test.json").read_text())["miou"] <= 1.0
