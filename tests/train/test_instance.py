"""The instance task: COCO AP wiring (known answers, torchmetrics), Mask R-CNN sizing, training end to end, resume."""

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
from safetensors.torch import load_file

from cnnlab.data.instances import InstSplit, coco_ground_truth, make_target
from cnnlab.train import KILL_HOOK
from cnnlab.train.tasks.instance import coco_evaluate, coco_results
from tests.helpers import run_ok, torchrun_env
from tests.zygote import run_cnnlab
from tests.helpers import run as here, run_here_ok as here_ok

CLASSES = ["background", "square", "ring"]


def square(y: int, x: int, side: int = 14, size: int = 48) -> torch.Tensor:
    m = torch.zeros(size, size, dtype=torch.bool)
    m[y:y + side, x:x + side] = True
    return m


def one_image_split(masks: list[torch.Tensor], labels: list[int]) -> InstSplit:
    return InstSplit(torch.zeros(1, 1, 48, 48, dtype=torch.uint8), [torch.stack(masks)], [torch.tensor(labels)])


def detections(masks: list[torch.Tensor], labels: list[int], scores: list[float]) -> dict[str, torch.Tensor]:
    t = make_target(torch.stack(masks), torch.tensor(labels))
    return {"boxes": t["boxes"], "labels": t["labels"], "scores": torch.tensor(scores), "masks": t["masks"].bool()}


def ap(truth_masks, truth_labels, pred_masks, pred_labels, scores) -> dict:
    split = one_image_split(truth_masks, truth_labels)
    truth = coco_ground_truth(split, CLASSES)
    return coco_evaluate(truth, coco_results([detections(pred_masks, pred_labels, scores)], list(range(3))))


def test_perfect_predictions_score_ap_one_for_boxes_and_masks():
    truth = [square(2, 2), square(20, 25, 16)]
    r = ap(truth, [1, 2], truth, [1, 2], [0.9, 0.8])
    for kind in ("box", "mask"):
        assert r[kind]["ap"] == pytest.approx(1.0) and r[kind]["ap50"] == pytest.approx(1.0)
        assert r[kind]["per_class"] == {1: pytest.approx(1.0), 2: pytest.approx(1.0)}


def test_a_14px_square_two_pixels_off_has_mask_ap_0_6():
    # IoU = 12·14 / (2·196 − 12·14) = 168/224 = 0.75: a hit at the thresholds 0.50 … 0.75, 6 of the 10
    r = ap([square(10, 10)], [1], [square(10, 12)], [1], [0.9])
    assert r["mask"]["ap"] == pytest.approx(0.6) and r["mask"]["ap50"] == pytest.approx(1.0)
    assert r["mask"]["ap75"] == pytest.approx(1.0)
    assert r["box"]["ap"] == pytest.approx(0.6)           # the boxes shift the same way
    worse = ap([square(10, 10)], [1], [square(10, 14)], [1], [0.9])   # 4 px: IoU 140/252 = 0.556
    assert worse["mask"]["ap"] == pytest.approx(0.2) and worse["mask"]["ap75"] == pytest.approx(0.0)


def test_the_wrong_class_or_no_detection_scores_zero():
    assert ap([square(5, 5)], [1], [square(5, 5)], [2], [0.9])["mask"]["ap50"] == 0.0
    split = one_image_split([square(5, 5)], [1])
    r = coco_evaluate(coco_ground_truth(split, CLASSES), [])
    assert r["mask"]["ap"] == 0.0 and r["box"]["ap50"] == 0.0


def test_coco_ap_equals_torchmetrics_on_random_detections():
    from torchmetrics.detection import MeanAveragePrecision

    g = torch.Generator().manual_seed(0)
    truths, preds = [], []
    for _ in range(6):
        boxes = [(*torch.randint(0, 30, (2,), generator=g).tolist(), int(torch.randint(6, 18, (1,), generator=g)))
                 for _ in range(int(torch.randint(1, 4, (1,), generator=g)))]
        labels = torch.randint(1, 3, (len(boxes),), generator=g).tolist()
        shifts = torch.randint(-3, 4, (len(boxes), 2), generator=g).tolist()
        moved = [square(max(y + dy, 0), max(x + dx, 0), side) for (y, x, side), (dy, dx) in zip(boxes, shifts)]
        guessed = [lab if float(torch.rand(1, generator=g)) < 0.8 else 3 - lab for lab in labels]
        truths.append((torch.stack([square(y, x, side) for y, x, side in boxes]), torch.tensor(labels)))
        preds.append(detections(moved, guessed, torch.rand(len(boxes), generator=g).tolist()))
    split = InstSplit(torch.zeros(6, 1, 48, 48, dtype=torch.uint8), [m for m, _ in truths], [lab for _, lab in truths])
    ours = coco_evaluate(coco_ground_truth(split, CLASSES), coco_results(preds, [0, 1, 2]))
    metric = MeanAveragePrecision(iou_type=("bbox", "segm"))
    metric.update(preds, [{**make_target(m, lab), "masks": m} for m, lab in truths])
    ref = metric.compute()
    assert ours["box"]["ap"] == pytest.approx(float(ref["bbox_map"]), abs=1e-6)
    assert ours["mask"]["ap"] == pytest.approx(float(ref["segm_map"]), abs=1e-6)
    assert ours["mask"]["ap50"] == pytest.approx(float(ref["segm_map_50"]), abs=1e-6)
    assert ours["mask"]["ap75"] == pytest.approx(float(ref["segm_map_75"]), abs=1e-6)
    assert 0.0 < ours["mask"]["ap"] < ours["mask"]["ap50"] < 1.0          # a case that can tell them apart


def test_maskrcnn_is_sized_for_small_images_and_trains_from_scratch():
    from torchvision.models.detection import MaskRCNN

    from cnnlab.models import create_model

    model = create_model("maskrcnn", num_classes=3, in_channels=1, image_size=48)
    assert isinstance(model, MaskRCNN)
    assert model.transform.min_size == (48,) and model.transform.max_size == 48      # no 800-px resizing
    sizes = model.rpn.anchor_generator.sizes
    assert [s[0] for s in sizes] == [8, 16, 32, 64, 128]
    bns = [m for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(p.requires_grad for m in bns for p in m.parameters())      # not frozen
    model.train()
    losses = model([torch.randn(1, 48, 48)], [make_target(square(4, 4)[None], torch.tensor([1]))])
    assert set(losses) == {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg", "loss_mask"}


def test_roi_sampling_is_torchvisions_sampling_ratio_and_the_recipe_records_one_point():
    """Oracle: torchvision's MultiScaleRoIAlign defaults (sampling_ratio 2, outputs 7 and 14) for the builder's
    default; the instance recipe asks for 1 and records it, so a run made before (no key) rebuilds with 2."""
    from torchvision.ops import MultiScaleRoIAlign

    from cnnlab.models import create_model
    from cnnlab.train.recipes import model_options

    ref = MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2)
    default = create_model("maskrcnn", num_classes=3, in_channels=1, image_size=48)
    pools = (default.roi_heads.box_roi_pool, default.roi_heads.mask_roi_pool)
    assert [p.sampling_ratio for p in pools] == [ref.sampling_ratio] * 2
    assert [p.output_size for p in pools] == [(7, 7), (14, 14)] and pools[0].featmap_names == ref.featmap_names
    options = model_options("instance", "maskrcnn")
    assert options["roi_sampling"] == 1
    one = create_model("maskrcnn", num_classes=3, in_channels=1, image_size=48, **options)
    assert one.roi_heads.box_roi_pool.sampling_ratio == one.roi_heads.mask_roi_pool.sampling_ratio == 1
    assert one.state_dict().keys() == default.state_dict().keys()          # no weights change: old runs load
    from cnnlab.errors import CnnlabError

    for bad in (0, True, 1.5):                                             # one line for the user, not a traceback
        with pytest.raises(CnnlabError, match="roi_sampling must be a whole number"):
            create_model("maskrcnn", num_classes=3, in_channels=1, image_size=48, roi_sampling=bad)


def test_analyze_refuses_maskrcnn_with_an_explanation():
    p = run_cnnlab("analyze", "maskrcnn")
    assert p.returncode == 2 and "depend on the image" in p.stderr and p.stderr.count("\n") == 1, p.stderr
    p = run_cnnlab("memory", "maskrcnn", "--batch", "4")
    assert p.returncode == 2 and "non-maximum suppression" in p.stderr, p.stderr


@pytest.fixture(scope="module")
def easy_scenes(tmp_path_factory) -> Path:
    """Scenes of filled squares and hollow rings on black, written as COCO instances by 'scenes make'."""
    root = tmp_path_factory.mktemp("easy_instances")
    items = root / "items"
    for cls in ("square", "ring"):
        (items / cls).mkdir(parents=True)
    for i in range(20):
        a = np.zeros((12, 12), np.uint8)
        a[1:11, 1:11] = 100 + 5 * i
        Image.fromarray(a).save(items / "square" / f"{i}.png")
        a[4:8, 4:8] = 0
        Image.fromarray(a).save(items / "ring" / f"{i}.png")
    run_ok("scenes", "make", "--source", str(items), "--count", "60", "--size", "32,32", "--objects", "1..2",
           "--item-px", "10..14", "--out", str(root / "scenes"), "--no-progress")
    return root / "scenes"


TINY = ["--width", "16", "--batch", "8", "--no-progress"]


@pytest.mark.slow
def test_train_eval_predict_end_to_end(easy_scenes, tmp_path, capsys):
    # in this process (main(), as `cnnlab` runs it): `python -m cnnlab` itself is tested by the kill test below
    run = tmp_path / "run"
    out = here_ok(capsys, "segment", "train", "--task", "instance", "--data", str(easy_scenes), "--epochs", "1",
                  *TINY, "--out", str(run))
    assert "test mask AP50" in out
    report = json.loads((run / "test.json").read_text())
    assert report["classes"] == ["background", "ring", "square"] and report["images"] == 6
    assert report["evaluator"].startswith("pycocotools")
    for kind in ("box", "mask"):
        assert 0.0 <= report[kind]["ap"] <= report[kind]["ap50"] <= 1.0
        assert set(report[kind]["per_class"]) == {"ring", "square"}
    for name in ("curves.png", "overlays.png", "metrics.csv", "model.safetensors", "test_predictions.json"):
        assert (run / name).stat().st_size > 0
    truth = json.loads((run / "test_annotations.json").read_text())
    assert len(truth["annotations"]) == report["instances"] > 0
    ev = json.loads(here_ok(capsys, "segment", "eval", str(run), "--json"))
    assert ev["mask"] == report["mask"] and ev["box"] == report["box"]
    image = next((easy_scenes / "test" / "images").glob("*.png"))
    pred = json.loads(here_ok(capsys, "segment", "predict", str(run), str(image), "--score-threshold", "0",
                              "--out", str(tmp_path / "p"), "--json"))
    label = np.asarray(Image.open(pred["predictions"][0]["instances"]))
    dets = pred["predictions"][0]["detections"]
    assert label.shape == (32, 32) and label.max() <= len(dets)
    assert all(d["class"] in ("ring", "square") and 0 <= d["score"] <= 1 for d in dets)
    assert Image.open(pred["predictions"][0]["overlay"]).size[0] > 0
    code, _, err = here(capsys, "segment", "train", "--task", "instance", "--model", "unet", "--data",
                        str(easy_scenes))
    assert code == 2 and "--model unet is a semantic-segmentation network" in err


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_gives_the_uninterrupted_weights(easy_scenes, tmp_path):
    # one epoch (the classification and semantic tests cross an epoch end; here the instance task's own state —
    # its flips, its per-image crops — is what must come back exactly)
    common = ["segment", "train", "--task", "instance", "--data", str(easy_scenes), "--epochs", "1",
              "--checkpoint-every", "3", "--augment", "flip", *TINY]
    run_ok(*common, "--out", str(tmp_path / "ref"), fresh=True)    # an interpreter of its own
    env = {**os.environ, KILL_HOOK: "5"}        # 6 steps per epoch: killed at step 5, checkpoint at 3
    killed = run_cnnlab(*common, "--out", str(tmp_path / "run"), env=env)
    assert killed.returncode == -9
    run_ok("segment", "train", "--resume", str(tmp_path / "run"), "--no-progress")
    assert "resumed at epoch 1, step 3" in (tmp_path / "run" / "log.txt").read_text()
    a, b = load_file(str(tmp_path / "ref" / "last.safetensors")), load_file(str(tmp_path / "run" / "last.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None,
                    reason="torchrun not installed next to this Python")
def test_torchrun_two_processes_train_mask_rcnn(easy_scenes, tmp_path):
    """A smoke test: DDP wraps Mask R-CNN (a forward that takes targets and returns a dict of losses), the run
    finishes and rank 0 alone writes.
    Not compared with one process: the mask loss averages over each process's positive RoIs."""
    run = tmp_path / "two"
    torchrun = str(Path(sys.executable).parent / "torchrun")
    p = subprocess.run([torchrun, "--nproc-per-node", "2", "-m", "cnnlab", "segment", "train", "--task", "instance",
                        "--data", str(easy_scenes), "--epochs", "1", *TINY, "--out", str(run)],
                       capture_output=True, text=True, env=torchrun_env(tmp_path))
    assert p.returncode == 0, p.stderr[-3000:]
    assert (run / "log.txt").read_text().count("epoch 1:") == 1
    report = json.loads((run / "test.json").read_text())
    assert report["images"] == 6 and 0.0 <= report["mask"]["ap50"] <= 1.0
