"""Semantic vs instance segmentation on touching objects of one class: ``cnnlab study semantic-vs-instance``.

The chapter's question on semantic vs instance segmentation (its second exercise set, question 10): semantic
segmentation gives each pixel a class, so "different objects of the
same class are not distinguished"; instance segmentation (Mask R-CNN) gives each object its own mask. The study
draws scenes where objects of one class often touch (each further item repeats the first one's class with
chance 0.5), trains a U-Net (semantic) and a Mask R-CNN (instance) on them with the same seeds, and counts, for
every touching same-class pair of the test scenes, what each made of it. A semantic mask's *connected
components* (scipy.ndimage.label, 4-connectivity) are the objects it implies. For every pair of true instances
of the same class whose masks touch (a pixel of one is a 4-neighbour of a pixel of the other):

- the semantic prediction **merges** the pair when the component holding most
  of one instance's correctly-labelled pixels also holds most of the other's;
- a network **finds the pair as two objects** when both instances are matched by
  two different objects of its own (same class, mask IoU ≥ 0.5; each object
  matched to at most one instance, best IoU first): Mask R-CNN's detections
  scoring ≥ the threshold, or the semantic mask's connected parts of ≥
  ``MIN_PART`` pixels (:func:`semantic_objects`) — one rule for both.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab.study import common

ARMS = ("unet", "maskrcnn")
TASKS = {"unet": "semantic", "maskrcnn": "instance"}
LABELS = {"unet": "U-Net (semantic)", "maskrcnn": "Mask R-CNN (instance)"}
SAME_CLASS = 0.5        # chance each further item repeats the first one's class: touching same-class pairs
OBJECTS = (2, 4)        # items per scene
# --quick's Mask R-CNN for 32×32 scenes of 14-px items: a 32-channel feature pyramid and mask head (the recipe: 64 and
# 64), a ResNet-18 of half width (32→256 planes: a 2.8 M-parameter trunk, not 11.2 M) and 20 detections per image (scenes
# hold 2–4 objects; the recipe keeps 50): docs/benchmarks.md "Studies: the quick forms" has what each costs
QUICK_ARGS = {"unet": {}, "maskrcnn": {"fpn_channels": 32, "mask_channels": 32, "width": 32, "detections": 20}}
MIN_PART = 20           # pixels a connected part of a semantic mask needs to count as an object (items: 60+)
TRAINED = "trained.json"  # how each run was trained: how many at a time, on how many threads (common.run_all)
THRESHOLDS = tuple(round(0.05 * k, 2) for k in range(1, 20))      # detection scores tried: 0.05 … 0.95


def touching_pairs(masks: torch.Tensor, labels: torch.Tensor) -> list[tuple[int, int]]:
    """Index pairs (i < j) of same-class instances whose masks are 4-neighbours somewhere."""
    import torch.nn.functional as F

    cross = torch.tensor([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=torch.float32)[None, None]
    grown = F.conv2d(masks.float()[:, None], cross, padding=1)[:, 0] > 0
    return [(i, j) for i in range(len(labels)) for j in range(i + 1, len(labels))
            if labels[i] == labels[j] and bool((grown[i] & masks[j]).any())]


def semantic_merges(pred: np.ndarray, masks: torch.Tensor, labels: torch.Tensor, i: int, j: int) -> bool | None:
    """Does the semantic prediction put instances i and j in one connected component of their class?

    ``None`` when one of them has no pixel predicted as its class (then it is missed, not merged)."""
    from scipy import ndimage

    comp, _ = ndimage.label(pred == int(labels[i]))
    majority = []
    for k in (i, j):
        ids = comp[masks[k].numpy()]
        ids = ids[ids > 0]
        if ids.size == 0:
            return None
        majority.append(int(np.bincount(ids).argmax()))
    return majority[0] == majority[1]


def matched(det: dict[str, torch.Tensor], masks: torch.Tensor, labels: torch.Tensor, threshold: float,
            iou: float = 0.5) -> list[int | None]:
    """For each true instance, the detection that found it (or None), greedy by mask IoU."""
    keep = det["scores"] >= threshold
    dm, dl = det["masks"][keep].bool(), det["labels"][keep]
    if len(dl) == 0:
        return [None] * len(labels)
    inter = (masks[:, None] & dm[None]).flatten(2).sum(-1).double()
    union = (masks[:, None] | dm[None]).flatten(2).sum(-1).double()
    ious = torch.where(labels[:, None] == dl[None], inter / union.clamp_min(1), torch.zeros(()))
    out: list[int | None] = [None] * len(labels)
    used: set[int] = set()
    for flat in torch.argsort(ious.flatten(), descending=True).tolist():
        t, d = divmod(flat, len(dl))
        if ious[t, d] < iou:
            break
        if out[t] is None and d not in used:
            out[t] = d
            used.add(d)
    return out


@dataclass
class PairCounts:
    """Touching same-class pairs and what each kind of segmentation made of them."""

    pairs: int = 0
    semantic_merged: int = 0
    semantic_separated: int = 0     # the two majority components differ (not necessarily the objects found)
    semantic_missed: int = 0        # an instance with no pixel of its class predicted
    semantic_found: int = 0         # both found as two objects by the mask's connected parts (IoU ≥ 0.5)
    instance_separated: int = 0     # both found as two objects by Mask R-CNN's detections (IoU ≥ 0.5)

    def add(self, pred: np.ndarray, det: dict[str, torch.Tensor], masks: torch.Tensor, labels: torch.Tensor,
            threshold: float) -> list[tuple[int, int]]:
        """Count one scene; returns its touching pairs."""
        pairs = touching_pairs(masks, labels)
        found = matched(det, masks, labels, threshold) if pairs else []
        parts = matched(semantic_objects(pred), masks, labels, 0.0) if pairs else []
        for i, j in pairs:
            self.pairs += 1
            merged = semantic_merges(pred, masks, labels, i, j)
            if merged is None:
                self.semantic_missed += 1
            elif merged:
                self.semantic_merged += 1
            else:
                self.semantic_separated += 1
            self.semantic_found += _two(parts, i, j)
            self.instance_separated += _two(found, i, j)
        return pairs


def _two(found: list[int | None], i: int, j: int) -> bool:
    """Instances i and j were matched by two different objects."""
    return found[i] is not None and found[j] is not None and found[i] != found[j]


def semantic_objects(pred: np.ndarray, min_pixels: int = MIN_PART) -> dict[str, torch.Tensor]:
    """The objects a semantic mask implies, as detections (score 1): each class's connected parts (4-connectivity)
    of at least ``min_pixels`` pixels — specks are not objects."""
    from scipy import ndimage

    masks, labels = [], []
    for c in np.unique(pred):
        if c == 0:
            continue
        comp, n = ndimage.label(pred == c)
        sizes = np.bincount(comp.ravel())
        for k in range(1, n + 1):
            if sizes[k] >= min_pixels:
                masks.append(torch.from_numpy(comp == k))
                labels.append(int(c))
    return {"masks": torch.stack(masks) if masks else torch.zeros((0, *pred.shape), dtype=torch.bool),
            "labels": torch.tensor(labels, dtype=torch.long), "scores": torch.ones(len(labels))}


@dataclass(frozen=True)
class SviConfig:
    """What the study trains; ``quick`` is digit scenes of 32×32 and a narrower Mask R-CNN (:data:`QUICK_ARGS`; ~4
    minutes on 2 cores). ``batch`` defaults to each task's recipe (:mod:`cnnlab.train.recipes`: 32 and 16), ``epochs``
    to the study's own. The quick U-Net trains channels-last (the same arithmetic, faster on CPU)."""

    data: str | None = None           # scene items: fashion-mnist (digits with quick)
    data_dir: str | None = None
    out: str = "study-semantic-vs-instance"
    epochs: int | None = None         # default: U-Net 6, Mask R-CNN 3 (quick: 8 and 6)
    batch: int | None = None          # default: each task's (32, 16)
    seeds: tuple[int, ...] = (0, 1, 2)
    quick: bool = False
    scenes: int | None = None         # scenes drawn (80/10/10); default 2,700 (800 with quick)
    size: int | None = None           # canvas side; default 64 (32 with quick)
    score_threshold: float | None = None   # a detection counts from this score; None: chosen on validation
    jobs: int = 1                     # runs trained at a time, each on its share of the torch threads (CLI: 2)

    def effective(self) -> SviConfig:
        """The settings with every default filled in (``quick``: 800 digit scenes of 32×32)."""
        q = self.quick
        return replace(self, data=self.data or ("digits" if q else "fashion-mnist"),
                       scenes=self.scenes or (800 if q else 2700), size=self.size or (32 if q else 64))

    def arm_epochs(self, arm: str) -> int:
        """An arm's epochs: ``--epochs`` for both, else U-Net 6 and Mask R-CNN 3 (its task's recipe; quick: 8, 6)."""
        return self.epochs or ({"unet": 8, "maskrcnn": 6} if self.quick else {"unet": 6, "maskrcnn": 3})[arm]


def plan(cfg: SviConfig) -> tuple[Path, dict[str, Any]]:
    """(the scenes' folder, every run of the study)."""
    from cnnlab.train.config import TrainConfig
    from cnnlab.train.recipes import model_options

    out = Path(cfg.out)
    scenes = common.scene_folder(out / "scenes", cfg.data or "fashion-mnist", cfg.scenes or 2700, cfg.size or 64,
                                 cfg.data_dir, objects=OBJECTS, same_class=SAME_CLASS)
    augment = common.scene_augment(cfg.data or "fashion-mnist")
    runs: dict[str, Any] = {}
    for arm in ARMS:
        base = TrainConfig.for_task(TASKS[arm], data=str(scenes.resolve()), model=arm, epochs=cfg.arm_epochs(arm),
                                    augment=augment, model_args={**model_options(TASKS[arm], arm),
                                                                 **(QUICK_ARGS[arm] if cfg.quick else {})},
                                    channels_last=cfg.quick and arm == "unet",
                                    **({"batch": cfg.batch} if cfg.batch else {}))
        runs.update(common.seed_runs(base, {arm: {}}, cfg.seeds, out))
    common.check_existing(runs)
    return scenes, runs


def count_scenes(test: Any, semantic: Any, instance: Any, threshold: float
                 ) -> tuple[dict[str, Any], np.ndarray, list[dict[str, torch.Tensor]]]:
    """Touching pairs of ``test`` (an :class:`~cnnlab.data.instances.InstSplit`) and what a semantic and an instance
    run (:func:`cnnlab.train.runs.open_run`) made of them; how far the objects each implies are from the true count
    (mean over scenes of |counted − true|: the semantic mask's connected parts of ≥ ``MIN_PART`` px per class, the
    detections scoring ≥ ``threshold``). Returns (counts, semantic predictions, detections)."""
    from cnnlab.errors import CnnlabError
    from cnnlab.train.tasks.instance import predict_instances
    from cnnlab.train.tasks.semantic import predict_masks

    if getattr(test, "sizes", None) is not None:
        raise CnnlabError("the touching-pair count needs test images of one size (these have several); resize the "
                          "data (--size H,W when training) or use scenes")
    preds = predict_masks(semantic.model, test.images, semantic.mean, semantic.std, "cpu")[0].numpy()
    dets = predict_instances(instance.model, test.images, instance.mean, instance.std)
    counts, error, with_pairs = PairCounts(), {"semantic": 0, "instance": 0}, []
    for i in range(len(test)):
        masks, labels = test.masks[i], test.labels[i]
        if counts.add(preds[i], dets[i], masks, labels, threshold):
            with_pairs.append(i)
        error["semantic"] += abs(len(semantic_objects(preds[i])["labels"]) - len(labels))
        error["instance"] += abs(int((dets[i]["scores"] >= threshold).sum()) - len(labels))
    return ({**asdict(counts), "scenes": len(test), "scenes_with_pairs": with_pairs,
             "count_error": {k: v / max(len(test), 1) for k, v in error.items()}}, preds, dets)


def count_threshold(instance: Any, split: Any) -> float:
    """The detection score from which Mask R-CNN's object count is closest to the truth on ``split`` (the validation
    scenes; ties: the score nearest 0.5). A briefly trained network scores even its right detections low: at
    ``cnnlab segment``'s fixed 0.5 it would count none."""
    from cnnlab.train.tasks.instance import predict_instances

    dets = predict_instances(instance.model, split.images, instance.mean, instance.std)
    truth = [len(labels) for labels in split.labels]
    error = {t: sum(abs(int((d["scores"] >= t).sum()) - n) for d, n in zip(dets, truth)) for t in THRESHOLDS}
    return min(THRESHOLDS, key=lambda t: (error[t], abs(t - 0.5)))


def measure(cfg: SviConfig, scenes: Path, runs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(every number of the report: each seed's counts on the test scenes and the runs' own test reports; what the
    figure draws: the test scenes, the class names and the first seed's predictions and threshold)."""
    from cnnlab.data.instances import load_instances
    from cnnlab.train.runs import open_run

    data = load_instances(str(scenes))
    classes = [c for c in (scenes / "classes.txt").read_text().split("\n") if c.strip()]
    seeds, shown = [], {}
    for s in cfg.seeds:
        sem, ins = open_run(Path(runs[f"unet-s{s}"].out), "semantic"), open_run(Path(runs[f"maskrcnn-s{s}"].out), "instance")
        threshold = cfg.score_threshold if cfg.score_threshold is not None else count_threshold(ins, data.val)
        counts, preds, dets = count_scenes(data.test, sem, ins, threshold)
        seeds.append({**counts, "score_threshold": threshold})
        shown = shown or {"test": data.test, "classes": classes, "preds": preds, "dets": dets, "threshold": threshold}
    pairs = seeds[0]["pairs"]                           # the same test scenes for every seed

    def share(key: str) -> dict[str, Any]:
        return common.spread(c[key] / max(c["pairs"], 1) for c in seeds)

    def reports(arm: str) -> list[dict[str, Any]]:
        return [json.loads((Path(runs[f"{arm}-s{s}"].out) / "test.json").read_text()) for s in cfg.seeds]

    def about(arm: str) -> dict[str, Any]:
        folders = [Path(runs[f"{arm}-s{s}"].out) for s in cfg.seeds]
        doc = json.loads((folders[0] / "config.json").read_text())
        return {"params": doc["params"], "epochs": cfg.arm_epochs(arm), "batch": doc["config"]["batch"],
                "model_args": doc["config"]["model_args"], "channels_last": doc["config"]["channels_last"],
                "train_s": common.spread(common.result_seconds(f) for f in folders)}

    kind = {"unet": "semantic", "maskrcnn": "instance"}
    arms = {"unet": {**about("unet"), "miou": common.spread(r["miou"] for r in reports("unet")),
                     "separated": share("semantic_found"), "merged": share("semantic_merged"),
                     "missed": share("semantic_missed"), "apart": share("semantic_separated")},
            "maskrcnn": {**about("maskrcnn"), "mask_ap50": common.spread(r["mask"]["ap50"] for r in reports("maskrcnn")),
                         "separated": share("instance_separated")}}
    for arm in ARMS:
        arms[arm]["count_error"] = common.spread(c["count_error"][kind[arm]] for c in seeds)
    first = runs[f"unet-s{cfg.seeds[0]}"]
    how = {k: v for k, v in common.trained_how(Path(cfg.out) / TRAINED).items() if k in runs}
    note = common.parallel_note(how)
    return {"study": "semantic-vs-instance", "config": asdict(cfg),
            "machine": common.machine_line() + (f"; {note}" if note else ""),
            "side_by_side": max((h.get("at_a_time", 1) for h in how.values()), default=1),
            "data": {"scenes": str(scenes), "items": cfg.data, "side": cfg.size, "count": cfg.scenes,
                     "classes": len(classes), "objects": list(OBJECTS), "same_class": SAME_CLASS,
                     "test_scenes": seeds[0]["scenes"], "touching_pairs": pairs,
                     "scenes_with_pairs": len(seeds[0]["scenes_with_pairs"])},
            "recipe": {"optimizer": first.optimizer, "augment": first.augment, "precision": first.precision,
                       "min_part_pixels": MIN_PART, "score_threshold": cfg.score_threshold},
            "score_thresholds": [c["score_threshold"] for c in seeds],
            "arms": arms, "per_seed": seeds}, shown


def findings(r: dict[str, Any]) -> list[str]:
    """The chapter's claim, stated from the measured numbers."""
    u, m, d = r["arms"]["unet"], r["arms"]["maskrcnn"], r["data"]
    if d["touching_pairs"] == 0:
        return [f"**No touching pairs.** None of the {d['test_scenes']} test scenes holds two touching objects of one "
                "class: the claim is not tested here (draw more scenes)."]
    lines = [f"**Touching pairs.** {d['touching_pairs']} pairs of touching same-class objects in "
             f"{d['scenes_with_pairs']} of {d['test_scenes']} test scenes.",
             f"**Semantic.** U-Net's class mask merges {common.pct_spread(u['merged'])} of the pairs into one connected "
             f"part of their class (one of the two missed: {common.pct_spread(u['missed'])}); its connected parts find "
             f"both objects as two (mask IoU ≥ 0.5) in {common.pct_spread(u['separated'])}. "
             + {"higher": "It merges more pairs than it finds as two objects in every seed: a class per pixel cannot "
                          "say where one object ends and the next of its class begins unless a gap runs between them.",
                "lower": f"It finds more pairs as two objects than it merges in every seed here (its test mIoU is "
                         f"{common.pct(u['miou']['median'])}).",
                "not shown": "Whether it merges more pairs than it finds as two is not shown here."}[
                 common.verdict(u["merged"], u["separated"])]]
    v = common.verdict(m["separated"], u["separated"])
    learnt = m["mask_ap50"]["max"] > 0.05
    lines.append(f"**Instance.** Mask R-CNN finds both objects of {common.pct_spread(m['separated'])} of the pairs as "
                 f"two detections (mask IoU ≥ 0.5, {_threshold_text(r)}; test mask AP50 "
                 f"{common.pct_spread(m['mask_ap50'])}). "
                 + ("It has not learnt to detect at this budget: the comparison says nothing here (the full form "
                    "trains on more scenes)." if not learnt else
                    {"higher": "It finds more touching pairs as two objects than the semantic mask's parts do, by "
                               "the same rule, in every seed: the chapter's claim held.",
                     "lower": "The semantic mask's parts find more pairs as two objects than Mask R-CNN in every seed "
                              "here: the claim did *not* hold at this budget.",
                     "not shown": "More pairs found as two objects than by the semantic mask's parts is not shown here "
                                  "(the seeds' ranges overlap)."}[v]))
    vc = common.verdict(u["count_error"], m["count_error"])
    lines.append(f"**Counting.** Mean |objects counted − true objects| per test scene: U-Net's connected parts "
                 f"(≥ {r['recipe']['min_part_pixels']} px) {_num_spread(u['count_error'])}, Mask R-CNN's detections "
                 f"{_num_spread(m['count_error'])}. "
                 + {"higher": "Mask R-CNN counts closer in every seed.",
                    "lower": "The semantic mask's parts count closer in every seed here.",
                    "not shown": "Which counts closer is not shown here."}[vc]
                 + f" The price: Mask R-CNN trained {common.secs(m['train_s']['median'])} s a run against U-Net's "
                   f"{common.secs(u['train_s']['median'])} s"
                 + (f", up to {side} runs side by side (each run alone on all threads would take less, and the two "
                    "networks gain differently from more threads)."
                    if (side := r.get("side_by_side", 1)) > 1 else "."))
    return lines


def _threshold_text(r: dict[str, Any]) -> str:
    """How a detection was counted: the fixed score asked for, or the ones chosen on each seed's validation scenes."""
    if r["recipe"]["score_threshold"] is not None:
        return f"score ≥ {r['recipe']['score_threshold']}"
    ts = sorted(set(r["score_thresholds"]))
    shown = f"{ts[0]}" if len(ts) == 1 else f"{ts[0]}–{ts[-1]}"
    return f"score ≥ {shown}, the score that counts objects best on the validation scenes"


def _num_spread(s: dict[str, Any]) -> str:
    if len(s["values"]) == 1:
        return f"{s['median']:.3f}"
    return f"{s['median']:.3f} ({s['min']:.3f}–{s['max']:.3f}, {len(s['values'])} seeds)"


def figure(test: Any, rows: list[int], preds: np.ndarray, dets: list[dict[str, torch.Tensor]], classes: list[str],
           path: Path, threshold: float) -> Path:
    """Scenes ``rows`` of ``test``: image | true instances | semantic classes | the semantic mask's connected parts
    (each its own colour) | Mask R-CNN's detections."""
    from cnnlab.viz.common import plt, save_figure
    from cnnlab.viz.segmentation import as_rgb, colour_mask, draw_instances, overlay_instances

    fig, axes = plt.subplots(len(rows), 5, figsize=(11, 2.3 * len(rows) + 0.5), squeeze=False)
    for r, i in enumerate(rows):
        image, pred = test.images[i], preds[i]
        axes[r, 0].imshow(as_rgb(image), interpolation="nearest")
        truth = {"masks": test.masks[i], "labels": test.labels[i], "boxes": _boxes(test.masks[i])}
        axes[r, 1].set_xlabel(f"{draw_instances(axes[r, 1], image, truth, classes)} instances", fontsize=7)
        axes[r, 2].imshow(colour_mask(pred), interpolation="nearest")
        stack = semantic_objects(pred)["masks"]
        axes[r, 3].imshow(overlay_instances(image, stack, alpha=0.8), interpolation="nearest")
        axes[r, 3].set_xlabel(f"{len(stack)} parts of ≥ {MIN_PART} px", fontsize=7)
        axes[r, 4].set_xlabel(f"{draw_instances(axes[r, 4], image, dets[i], classes, threshold)} detections", fontsize=7)
    for j, name in enumerate(("image", "truth (instances)", "U-Net (classes)", "U-Net (connected parts per class)",
                              f"Mask R-CNN (score ≥ {threshold})")):
        axes[0, j].set_title(name, fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    return save_figure(fig, path)


def _boxes(masks: torch.Tensor) -> torch.Tensor:
    from torchvision.ops import masks_to_boxes

    return masks_to_boxes(masks) if len(masks) else torch.zeros((0, 4))


def networks_line(arms: dict[str, Any]) -> str:
    """How wide each network was, from its runs' configs (old reports without it: the recipe's, unsaid)."""
    from cnnlab.models.segmentation.maskrcnn import MASK_CHANNELS

    u, m = arms["unet"].get("model_args"), arms["maskrcnn"].get("model_args")
    if u is None or m is None:
        return "the recipes' widths"
    return (f"U-Net width {u['width']}{', channels-last' if arms['unet'].get('channels_last') else ''}; Mask R-CNN "
            f"{m['backbone']}{f' of width {w}' if (w := m.get('width', 64)) != 64 else ''} with a "
            f"{m['fpn_channels']}-channel feature pyramid and a "
            f"{m.get('mask_channels', MASK_CHANNELS)}-channel mask head")


def write_report(r: dict[str, Any], shown: dict[str, Any], cfg: SviConfig, out: Path) -> Path:
    """``report.json``, ``report.md`` and the figure (the first seed's networks on four scenes with touching pairs,
    as :func:`measure` predicted them)."""
    from cnnlab.files import atomic_write_text

    rows = r["per_seed"][0]["scenes_with_pairs"][:4] or [0]
    fig = figure(shown["test"], rows, shown["preds"], shown["dets"], shown["classes"],
                 out / "semantic_vs_instance.png", shown["threshold"])
    r = {**r, "findings": findings(r), "figures": [fig.name]}
    atomic_write_text(out / "report.json", json.dumps(r, indent=2))
    d, u, m = r["data"], r["arms"]["unet"], r["arms"]["maskrcnn"]
    md = ["# Semantic vs instance segmentation on touching objects of one class", "",
          f"{d['count']:,} scenes of {d['side']}×{d['side']} ({d['items']} items, {d['objects'][0]}–{d['objects'][1]} "
          f"per scene, each further item of the first one's class with chance {d['same_class']}; 80/10/10 "
          f"train/val/test); each network with its task's recipe ({r['recipe']['optimizer']}, augment "
          f"{r['recipe']['augment']}, {r['recipe']['precision']}; {networks_line(r['arms'])}), seeds "
          f"{', '.join(map(str, cfg.seeds))}. "
          f"Machine: {r['machine']}.", ""]
    md += [f"- {line}" for line in r["findings"]]
    md += ["", "| network | parameters | epochs × batch | test metric | pairs found as two objects | pairs merged | "
               "objects miscounted per scene | training (s) |", "|---|---:|---:|---:|---:|---:|---:|---:|",
           f"| {LABELS['unet']} | {u['params']:,} | {u['epochs']} × {u['batch']} | mIoU "
           f"{common.pct(u['miou']['median'])} | {common.pct_spread(u['separated'])} | "
           f"{common.pct_spread(u['merged'])} | {u['count_error']['median']:.3f} | {common.secs(u['train_s']['median'])} |",
           f"| {LABELS['maskrcnn']} | {m['params']:,} | {m['epochs']} × {m['batch']} | mask AP50 "
           f"{common.pct(m['mask_ap50']['median'])} | {common.pct_spread(m['separated'])} | – | "
           f"{m['count_error']['median']:.3f} | {common.secs(m['train_s']['median'])} |",
           "", "A pair is *merged* when the connected part of the semantic mask holding most of one object's "
               "correctly-classed pixels also holds most of the other's; a network *finds a pair as two objects* when "
               "two different objects of its own match the two (same class, mask IoU ≥ 0.5, each used once): "
               f"Mask R-CNN's detections, or the U-Net mask's connected parts of ≥ {r['recipe']['min_part_pixels']} px "
               "per class. Medians over the seeds (range in brackets); a difference is claimed only where the seeds' "
               "ranges do not overlap.",
           "", f"![semantic vs instance]({fig.name})", ""]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(md))
    return path


def study(cfg: SviConfig, progress: bool = True) -> Path:
    """Run (or resume) the whole study and write its report; returns ``report.md``'s path."""
    cfg = cfg.effective()
    out = Path(cfg.out)
    with common.study_folder(out, "semantic-vs-instance", cfg.seeds):
        scenes, runs = plan(cfg)
    longest_first = sorted(runs, key=lambda key: not key.startswith("maskrcnn"))    # two workers then end together
    common.run_all({key: runs[key] for key in longest_first}, progress, desc="semantic-vs-instance", workers=cfg.jobs,
                   record=out / TRAINED)
    return write_report(*measure(cfg, scenes, runs), cfg, out)
