"""Touching same-class objects: merged by a semantic mask, separated by instance masks (hand-made scenes), and the
study that counts them on trained networks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnlab.errors import CnnlabError

from cnnlab.study.semantic_vs_instance import PairCounts, matched, semantic_merges, touching_pairs


def rect(y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
    m = torch.zeros(12, 12, dtype=torch.bool)
    m[y0:y1, x0:x1] = True
    return m


LEFT, RIGHT, FAR = rect(0, 12, 1, 5), rect(0, 12, 5, 9), rect(10, 12, 10, 12)  # LEFT and RIGHT share an edge (48 px each)


def test_touching_means_4_neighbours_of_one_class():
    masks = torch.stack([LEFT, RIGHT, FAR])
    assert touching_pairs(masks, torch.tensor([1, 1, 1])) == [(0, 1)]
    assert touching_pairs(masks, torch.tensor([1, 2, 1])) == []                 # different classes
    diagonal = torch.stack([rect(0, 2, 0, 2), rect(2, 4, 2, 4)])                 # corners only: not 4-neighbours
    assert touching_pairs(diagonal, torch.tensor([1, 1])) == []


def det(*masks: torch.Tensor, labels=None, scores=None) -> dict[str, torch.Tensor]:
    n = len(masks)
    return {"masks": torch.stack(masks) if n else torch.zeros(0, 12, 12, dtype=torch.bool),
            "labels": torch.tensor(labels or [1] * n), "scores": torch.tensor(scores or [0.9] * n)}


def test_one_blob_merges_and_a_gap_separates():
    masks, labels = torch.stack([LEFT, RIGHT]), torch.tensor([1, 1])
    blob = (LEFT | RIGHT).numpy().astype(np.uint8)
    gap = blob.copy()
    gap[:, 5] = 0                                   # a background column between them
    assert semantic_merges(blob, masks, labels, 0, 1) is True
    assert semantic_merges(gap, masks, labels, 0, 1) is False
    assert semantic_merges(np.zeros_like(blob), masks, labels, 0, 1) is None
    c = PairCounts()
    c.add(blob, det(LEFT, RIGHT), masks, labels, 0.5)
    c.add(gap, det(LEFT | RIGHT), masks, labels, 0.5)          # one detection over both: not separated
    c.add(np.zeros((12, 12), np.uint8), det(LEFT, RIGHT, scores=[0.9, 0.3]), masks, labels, 0.5)
    assert (c.pairs, c.semantic_merged, c.semantic_separated, c.semantic_missed) == (3, 1, 1, 1)
    assert c.instance_separated == 1
    # the mask's own parts by the same rule: the blob matches one object at most (IoU 48/96), the gap's two parts
    # match both (LEFT exactly, RIGHT at IoU 36/48, both ≥ MIN_PART px), nothing predicted finds nothing
    assert c.semantic_found == 1


def test_each_detection_finds_at_most_one_instance():
    masks, labels = torch.stack([LEFT, RIGHT]), torch.tensor([1, 1])
    assert matched(det(LEFT, RIGHT), masks, labels, 0.5) == [0, 1]
    assert matched(det(LEFT), masks, labels, 0.5) == [0, None]
    assert matched(det(LEFT, labels=[2]), masks, labels, 0.5) == [None, None]    # the wrong class finds nothing


# ---- the study: cnnlab study semantic-vs-instance on a few tiny scenes ----

TINY = {"quick": True, "epochs": 1, "seeds": (0, 1), "scenes": 60, "size": 32, "jobs": 2}


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    from cnnlab.study.semantic_vs_instance import SviConfig, study

    out = tmp_path_factory.mktemp("svi")
    study(SviConfig(out=str(out), **TINY), progress=False)
    return out


def touching_in_pngs(folder: Path) -> int:
    """Oracle for the pair count: touching same-class pairs read from the test scenes' label PNGs, by shifting each
    instance id image one pixel (an independent way to find 4-neighbours)."""
    from PIL import Image

    pairs = 0
    for png in sorted((folder / "test" / "instances").glob("*.png")):
        ids = np.asarray(Image.open(png)).astype(np.int64)
        classes = np.asarray(Image.open(folder / "test" / "masks" / png.name)).astype(np.int64)
        found = set()
        for a, b in ((ids[:, :-1], ids[:, 1:]), (ids[:-1, :], ids[1:, :])):
            for u, v in zip(a.ravel(), b.ravel()):
                if u and v and u != v:
                    found.add((min(u, v), max(u, v)))
        cls = {int(i): int(classes[ids == i][0]) for i in np.unique(ids) if i}
        pairs += sum(1 for u, v in found if cls[u] == cls[v])
    return pairs


@pytest.mark.slow
def test_every_number_is_its_run_folders_and_the_pairs_are_the_scenes(report):
    r = json.loads((report / "report.json").read_text())
    assert r["data"]["touching_pairs"] == touching_in_pngs(report / "scenes") > 0
    for arm, key, metric in (("unet", "miou", lambda t: t["miou"]), ("maskrcnn", "mask_ap50", lambda t: t["mask"]["ap50"])):
        tests = [json.loads((report / "runs" / f"{arm}-s{s}" / "test.json").read_text()) for s in (0, 1)]
        assert r["arms"][arm][key]["values"] == pytest.approx([metric(t) for t in tests])
        doc = json.loads((report / "runs" / f"{arm}-s0" / "config.json").read_text())
        assert doc["config"]["model"] == arm and doc["config"]["data"] == str((report / "scenes").resolve())
        assert r["arms"][arm]["params"] == doc["params"]
        assert doc["config"]["augment"] == "none"              # digits: a mirrored digit is another shape
    u = r["arms"]["unet"]
    for k in range(2):                                        # merged + kept apart + missed: every pair once
        assert u["merged"]["values"][k] + u["apart"]["values"][k] + u["missed"]["values"][k] == pytest.approx(1)
        assert u["separated"]["values"][k] <= u["apart"]["values"][k] + 1e-9    # found as two ⊂ in two parts
    assert (report / r["figures"][0]).stat().st_size > 0
    assert not any("in every seed" in line for line in r["findings"])      # two seeds: no difference claimed


@pytest.mark.slow
def test_the_quick_mask_rcnn_is_the_narrow_one_the_report_names(report):
    """--quick trains a Mask R-CNN with a half-width ResNet-18 and a 32-channel pyramid and mask head (recorded,
    counted and said), the U-Net channels-last: the run's parameter count is that of the builder at those widths,
    fewer than the recipe's."""
    from cnnlab.models.segmentation.maskrcnn import maskrcnn

    doc = json.loads((report / "runs" / "maskrcnn-s0" / "config.json").read_text())
    args = doc["config"]["model_args"]
    assert (args["fpn_channels"], args["mask_channels"], args["width"]) == (32, 32, 32)
    narrow = maskrcnn(num_classes=11, in_channels=1, image_size=32, **args)
    assert doc["params"] == sum(p.numel() for p in narrow.parameters()) < sum(
        p.numel() for p in maskrcnn(num_classes=11, in_channels=1, image_size=32, fpn_channels=64).parameters())
    assert json.loads((report / "runs" / "unet-s0" / "config.json").read_text())["config"]["channels_last"]
    md = (report / "report.md").read_text()
    assert "resnet18 of width 32 with a 32-channel feature pyramid and a 32-channel mask head" in md
    assert "4 runs trained up to 2 at a time, on 1 torch thread each" in md          # as run_all recorded it


@pytest.mark.slow
def test_other_settings_are_refused(report):
    from cnnlab.study.semantic_vs_instance import SviConfig, study

    with pytest.raises(CnnlabError, match="made with other settings .*epochs 1"):
        study(SviConfig(out=str(report), **{**TINY, "epochs": 2}), progress=False)
    with pytest.raises(CnnlabError, match="report is over seeds 0,1; --seeds 0 would replace it"):
        study(SviConfig(out=str(report), **{**TINY, "seeds": (0,)}), progress=False)


def test_the_count_threshold_is_the_score_that_counts_the_validation_scenes_best():
    """Oracle: hand-made detections whose scores make 0.35 the only threshold that counts every scene right."""
    from types import SimpleNamespace

    from cnnlab.study.semantic_vs_instance import count_threshold

    scores = [[0.9, 0.4, 0.3], [0.38, 0.2], [0.1]]          # true counts 2, 1, 0
    truth = [2, 1, 0]

    class Fixed(torch.nn.Module):
        def forward(self, images):
            out = []
            for image in images:
                k = round(float(image[0, 0, 0]) * 255)         # the scene index, as the image holds it
                s = torch.tensor(scores[k])
                out.append({"boxes": torch.zeros(len(s), 4), "labels": torch.ones(len(s), dtype=torch.long),
                            "scores": s, "masks": torch.zeros(len(s), 1, 4, 4)})
            return out

    images = torch.stack([torch.full((1, 4, 4), k, dtype=torch.uint8) for k in range(3)])
    split = SimpleNamespace(images=images, labels=[torch.ones(n, dtype=torch.long) for n in truth])
    run = SimpleNamespace(model=Fixed(), mean=torch.zeros(1, 1, 1, 1), std=torch.ones(1, 1, 1, 1))
    assert count_threshold(run, split) == 0.35


def spread(*values: float) -> dict:
    from cnnlab.study.common import spread as s

    return s(values)


def report_with(separated_unet, merged, separated_rcnn, ap50, pairs=10) -> dict:
    arm = {"train_s": spread(10.0, 11.0, 12.0), "count_error": spread(1.0, 1.0, 1.0)}
    return {"data": {"touching_pairs": pairs, "scenes_with_pairs": 5, "test_scenes": 20},
            "recipe": {"score_threshold": None, "min_part_pixels": 20}, "score_thresholds": [0.3, 0.35, 0.3],
            "arms": {"unet": {**arm, "merged": spread(*merged), "separated": spread(*separated_unet),
                              "missed": spread(0.0, 0.0, 0.0), "miou": spread(0.6, 0.6, 0.6)},
                     "maskrcnn": {**arm, "separated": spread(*separated_rcnn), "mask_ap50": spread(*ap50)}}}


def test_the_findings_claim_only_what_every_seed_shows():
    """The verdict rules on hand-made numbers: non-overlapping seeds claim, overlapping ones say 'not shown', an
    untrained Mask R-CNN says nothing, no touching pair tests nothing."""
    from cnnlab.study.semantic_vs_instance import findings

    held = findings(report_with((0.1, 0.1, 0.2), (0.8, 0.9, 0.9), (0.5, 0.6, 0.7), (0.5, 0.6, 0.7)))
    assert "merges more pairs than it finds as two objects in every seed" in held[1]
    assert "the chapter's claim held" in held[2] and "score ≥ 0.3–0.35" in held[2]
    overlap = findings(report_with((0.1, 0.3, 0.5), (0.2, 0.5, 0.9), (0.2, 0.4, 0.6), (0.5, 0.6, 0.7)))
    assert "not shown here" in overlap[1] and "not shown here" in overlap[2]
    untrained = findings(report_with((0.1, 0.1, 0.2), (0.8, 0.9, 0.9), (0.0, 0.0, 0.0), (0.0, 0.01, 0.02)))
    assert "has not learnt" in untrained[2] and "claim" not in untrained[2]
    nothing = findings(report_with((0.0,) * 3, (0.0,) * 3, (0.0,) * 3, (0.5,) * 3, pairs=0))
    assert len(nothing) == 1 and "not tested here" in nothing[0]


def test_scenes_with_another_same_class_chance_are_refused_not_reused(tmp_path):
    from cnnlab.study.common import scene_folder

    folder = scene_folder(tmp_path / "scenes", "digits", 30, 32, None, objects=(2, 4), same_class=0.5)
    assert scene_folder(tmp_path / "scenes", "digits", 30, 32, None, objects=(2, 4), same_class=0.5) == folder
    with pytest.raises(CnnlabError, match="scenes drawn with other settings"):
        scene_folder(tmp_path / "scenes", "digits", 30, 32, None, objects=(2, 4), same_class=0.25)


def test_a_semantic_masks_objects_are_its_connected_parts_of_each_class_without_specks():
    from cnnlab.study.semantic_vs_instance import MIN_PART, semantic_objects

    pred = np.zeros((12, 12), np.uint8)
    pred[0:12, 0:4] = 2                     # 48 px of class 2
    pred[0:2, 6:11] = 2                     # 10 px of class 2, apart: a speck
    pred[4:10, 6:11] = 3                    # 30 px of class 3
    objects = semantic_objects(pred)
    assert MIN_PART > 10 and objects["labels"].tolist() == [2, 3]
    assert [int(m.sum()) for m in objects["masks"]] == [48, 30]
    assert len(semantic_objects(np.zeros((5, 5), np.uint8))["labels"]) == 0


def test_jobs_is_how_many_runs_train_at_a_time(monkeypatch, capsys):
    """--jobs reaches the study (default: 2 with --quick, else 1), and a count below 1 is refused in one line."""
    from cnnlab.cli.main import main
    from cnnlab.study import semantic_vs_instance

    seen = []
    monkeypatch.setattr(semantic_vs_instance, "study", lambda cfg, progress: seen.append(cfg.jobs) or Path("report.md"))
    monkeypatch.setattr("cnnlab.cli.study._say_findings", lambda path: 0)
    assert main(["study", "semantic-vs-instance", "--quick"]) == 0
    assert main(["study", "semantic-vs-instance", "--quick", "--jobs", "1"]) == 0
    assert main(["study", "semantic-vs-instance"]) == 0
    assert main(["study", "semantic-vs-instance", "--jobs", "3"]) == 0
    assert seen == [2, 1, 1, 3]
    with pytest.raises(SystemExit) as exit_:
        main(["study", "semantic-vs-instance", "--jobs", "0"])
    assert exit_.value.code == 2 and "--jobs" in capsys.readouterr().err
