"""Instance segmentation: Mask R-CNN finds each object, its class and its own mask.

Training: the model takes the images *and* their targets (boxes, labels,
masks) and returns five losses — RPN objectness and box regression, the box
head's classification and regression, the per-pixel mask loss — whose sum is
the training loss (:meth:`Instance.forward`).

Metrics are COCO's, computed by the reference implementation (pycocotools'
``COCOeval``), for boxes and for masks: AP = mean precision over IoU
thresholds 0.50:0.05:0.95 (and all recall levels), AP50 and AP75 at one
threshold, AP per object size, per class. Up to 100 detections per image count.
Mask AP is harsh on small objects: a 14×14 square predicted 2 pixels off has
IoU 168/224 = 0.75, so it counts as found at 6 of the 10 thresholds: AP 0.6.
The best weights are those with the highest validation **mask AP50**.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnlab.data.canvas import extent, own_size, pad_with_mean, size_order
from cnnlab.data.instances import InstData, InstSplit, coco_ground_truth, load_instances, make_target
from cnnlab.errors import CnnlabError
from cnnlab.files import atomic_write_text
from cnnlab.train.tasks.base import Task
from cnnlab.data.normalise import normalise, standardiser
from cnnlab.train.tasks.classification import best_epoch

LOSSES = ("loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg", "loss_mask")
STATS = ("ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large")   # COCOeval.stats[0:6], in its order
SCORE_THRESHOLD = 0.5        # predict's default: detections shown in figures and overlays


@torch.no_grad()
def predict_instances(model: nn.Module, images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                      device: str = "cpu", batch: int = 32, sizes: torch.Tensor | None = None
                      ) -> list[dict[str, torch.Tensor]]:
    """Per image: ``boxes`` (K, 4) x1 y1 x2 y2, ``labels`` (K,), ``scores`` (K,), ``masks`` (K, H, W) bool (> 0.5),
    at the image's own size (``sizes``: images of different sizes on a canvas, :mod:`cnnlab.data.canvas`)."""
    was = model.training
    model.eval()
    out: list[dict[str, torch.Tensor]] = []
    for i in range(0, images.shape[0], batch):
        x = normalise(images[i:i + batch], mean, std).to(device)
        own = [own_size(images, sizes, j) for j in range(i, i + x.shape[0])]
        for d in model([xi[:, :h, :w] for xi, (h, w) in zip(x, own)]):
            out.append({"boxes": d["boxes"].float().cpu(), "labels": d["labels"].cpu(), "scores": d["scores"].float().cpu(),
                        "masks": (d["masks"][:, 0] > 0.5).cpu()})
    model.train(was)
    return out


def coco_results(preds: list[dict[str, torch.Tensor]], category_ids: list[int]) -> list[dict[str, Any]]:
    """Detections as a COCO results list (image ids 1..N, original category ids, RLE masks, xywh boxes)."""
    from pycocotools import mask as mask_utils

    results = []
    for i, d in enumerate(preds):
        if not len(d["scores"]):
            continue
        rles = mask_utils.encode(np.asfortranarray(d["masks"].permute(1, 2, 0).numpy().astype(np.uint8)))
        for box, label, score, rle in zip(d["boxes"].tolist(), d["labels"].tolist(), d["scores"].tolist(), rles):
            x1, y1, x2, y2 = box
            results.append({"image_id": i + 1, "category_id": category_ids[label], "score": round(score, 5),
                            "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                            "segmentation": {"size": rle["size"], "counts": rle["counts"].decode("ascii")}})
    return results


def coco_evaluate(truth: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
    """COCO AP of ``results`` against the ground truth document, by pycocotools' ``COCOeval``.

    Returns ``{"box": {...}, "mask": {...}}``, each with ``ap``, ``ap50``, ``ap75``,
    ``ap_small/medium/large`` (−1 where no object of that size exists, as COCOeval
    reports) and ``per_class``: {category id: AP or None when the class has no
    ground truth}.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet):
        gt = COCO()
        gt.dataset = json.loads(json.dumps(truth))       # COCO() mutates what it indexes
        gt.createIndex()
        cat_ids = sorted(gt.getCatIds())
        report: dict[str, Any] = {}
        for kind, iou_type in (("box", "bbox"), ("mask", "segm")):
            if not results:          # nothing detected: every object missed (COCOeval cannot load no results)
                report[kind] = _no_detections(gt, cat_ids)
                continue
            # masks are scored by mask areas: without 'bbox', loadRes takes each area from the mask (detectron2 too)
            dt = gt.loadRes([{k: v for k, v in r.items() if k != "bbox" or kind == "box"} for r in results])
            ev = COCOeval(gt, dt, iou_type)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            precision = ev.eval["precision"]          # [IoU thresholds, recall, class, area, max dets]
            per_class = {}
            for k, cid in enumerate(ev.params.catIds):
                p = precision[:, :, k, 0, -1]
                per_class[cid] = float(p[p > -1].mean()) if (p > -1).any() else None
            report[kind] = {**{s: float(v) for s, v in zip(STATS, ev.stats[:6])}, "per_class": per_class}
    return report


def _no_detections(gt: Any, cat_ids: list[int]) -> dict[str, Any]:
    """COCOeval's figures for an empty result list: 0 where there are objects to find, −1/None where none."""
    areas = [a["area"] for a in gt.dataset["annotations"] if not a.get("iscrowd", 0)]
    ranges = {"ap_small": (0, 32 ** 2), "ap_medium": (32 ** 2, 96 ** 2), "ap_large": (96 ** 2, 1e10)}
    out: dict[str, Any] = {s: (0.0 if areas else -1.0) for s in ("ap", "ap50", "ap75")}
    for key, (lo, hi) in ranges.items():
        out[key] = 0.0 if any(lo <= a < hi for a in areas) else -1.0
    present = {a["category_id"] for a in gt.dataset["annotations"]}
    out["per_class"] = {c: (0.0 if c in present else None) for c in cat_ids}
    return out


def evaluate(model: nn.Module, split: InstSplit, classes: list[str], category_ids: list[int], mean: torch.Tensor,
             std: torch.Tensor, device: str = "cpu") -> dict[str, Any]:
    """Predictions on ``split`` and their COCO box and mask AP."""
    preds = predict_instances(model, split.images, mean, std, device, sizes=split.sizes)
    truth = coco_ground_truth(split, classes, category_ids)
    results = coco_results(preds, category_ids)
    return {"preds": preds, "truth": truth, "results": results, **coco_evaluate(truth, results)}


class Instance(Task):
    """Every object: its class, box and mask."""

    name = "instance"
    metric = "mask_ap50"
    monitor = "val_mask_ap50"
    any_size = True

    def load_data(self) -> InstData:
        c = self.cfg
        if c.augment not in ("none", "flip"):
            raise CnnlabError(f"--augment {c.augment}: instance segmentation supports none or flip (boxes and "
                              "masks are mirrored with the image)")
        data = load_instances(c.data, c.data_dir, c.val_fraction, c.seed, c.channels, c.size, c.skip_bad, c.images)
        if not any(int(labels.numel()) for labels in data.train.labels):
            raise CnnlabError(f"{c.data}: the training images hold no object (every image's annotation list is "
                              "empty, or only crowd regions): there is nothing to learn; annotate the objects")
        self.mean, self.std = standardiser(data.train)  # type: ignore[arg-type]
        pad_with_mean(data, self.mean)
        self.flip = c.augment == "flip" and data.flip_ok
        self.classes, self.category_ids = data.classes, data.category_ids
        return data

    def describe_data(self, data: InstData) -> dict[str, Any]:
        return {"name": data.name, "classes": data.classes, "category_ids": data.category_ids,
                "shape": list(data.shape),
                "sizes": {"train": len(data.train), "val": len(data.val), "test": len(data.test)},
                "instances": {k: sum(int(lab.numel()) for lab in getattr(data, k).labels) for k in ("train", "val", "test")},
                "mean": self.mean.flatten().tolist(), "std": self.std.flatten().tolist(),
                "skipped_images": len(data.skipped)}

    def build_model(self, data: InstData, saved: dict[str, Any] | None = None) -> tuple[nn.Module, dict[str, Any]]:
        options = dict(saved.get("options", {})) if saved else dict(self.cfg.model_args)
        return build_instance_model(saved["name"] if saved else self.cfg.model, data.shape, len(data.classes), options)

    def batch(self, split: InstSplit, indices: torch.Tensor, rows: slice,
              generator: torch.Generator) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
        flips = torch.rand(len(indices), generator=generator) < 0.5      # drawn for the global batch
        idx = indices[rows].tolist()
        h, w = extent(split.images, split.sizes, indices[rows])     # the batch's largest image, not the canvas
        images = split.images[indices[rows], :, :h, :w]
        targets = []
        for j, i in enumerate(idx):
            masks = split.masks[i]
            if self.flip and bool(flips[(rows.start or 0) + j]):
                h, w = own_size(split.images, split.sizes, i)         # mirrored within its own width
                images[j, :, :h, :w] = images[j, :, :h, :w].flip(-1)
                masks = masks.flip(-1)
            targets.append(make_target(masks, split.labels[i]))
        return normalise(images, self.mean, self.std), targets

    def order(self, split: InstSplit, order: torch.Tensor, batch: int) -> torch.Tensor:
        return size_order(order, split.sizes, batch)

    def size_line(self, data: InstData, model: nn.Module) -> str:
        from cnnlab.train.tasks.semantic import segmentation_sizes

        line = segmentation_sizes(data, model, "")
        if data.resized is None:
            t = getattr(model, "transform", None)
            if t is not None:
                lo, hi = t.min_size[0], t.max_size
                scale = f"{lo} px" if lo == hi else f"{lo} px (shorter side, at most {hi} px the longer)"
                line += f" (Mask R-CNN scales each to {scale} inside; masks come back at the image's size)"
        return line

    def forward(self, net: nn.Module, inputs: torch.Tensor, targets: Any) -> dict[str, torch.Tensor]:
        # each image at its own size (its masks'): Mask R-CNN takes a list and resizes each itself
        return net([x[:, :t["masks"].shape[-2], :t["masks"].shape[-1]] for x, t in zip(inputs, targets)], targets)

    def loss(self, outputs: dict[str, torch.Tensor], targets: Any) -> torch.Tensor:
        return sum((outputs[k].float() for k in LOSSES), torch.zeros(()))

    def step_stats(self, outputs: dict[str, torch.Tensor], targets: Any) -> dict[str, float]:
        n = len(targets)
        return {k: float(outputs[k].detach()) * n for k in LOSSES}

    def train_metrics(self, sums: dict[str, float], seen: float) -> dict[str, float]:
        return {f"train_{k}": sums.get(k, 0.0) / max(seen, 1) for k in LOSSES}

    def validate(self, model: nn.Module, split: InstSplit, device: str) -> dict[str, float]:
        r = evaluate(model, split, self.classes, self.category_ids, self.mean, self.std, device)
        return {"val_mask_ap50": r["mask"]["ap50"], "val_mask_ap": r["mask"]["ap"], "val_box_ap50": r["box"]["ap50"],
                "val_box_ap": r["box"]["ap"]}

    def test_report(self, folder: Path, model: nn.Module, data: InstData, device: str,
                    history: list[dict[str, float]]) -> dict[str, Any]:
        from cnnlab.viz.segmentation import plot_instances
        from cnnlab.viz.train import plot_curves

        r = evaluate(model, data.test, data.classes, data.category_ids, self.mean, self.std, device)
        report = report_of(r, data.classes, data.category_ids, len(data.test))
        report["best_epoch"] = best_epoch(history, self.monitor)
        atomic_write_text(folder / "test.json", json.dumps(report, indent=2))
        atomic_write_text(folder / "test_predictions.json", json.dumps(r["results"]))
        atomic_write_text(folder / "test_annotations.json", json.dumps(r["truth"]))
        plot_curves(history, folder / "curves.png", metric="mask_ap50", label="mask AP50")
        n = min(6, len(data.test))
        plot_instances([data.test.image(i) for i in range(n)], [data.test.targets(i) for i in range(n)], r["preds"][:n], data.classes,
                       folder / "overlays.png", f"{self.cfg.model}: test images (detections scoring ≥ {SCORE_THRESHOLD})",
                       SCORE_THRESHOLD)
        return report

    def rebuild_model(self, doc: dict[str, Any]) -> nn.Module:
        m = doc["model"]
        return build_instance_model(m["name"], tuple(doc["data"]["shape"]), len(doc["data"]["classes"]),
                                    m.get("options", {}))[0]

    def summary(self, report: dict[str, Any]) -> str:
        m, b = report["mask"], report["box"]
        return (f"test mask AP50 {m['ap50']:.4f}, mask AP {m['ap']:.4f}, box AP50 {b['ap50']:.4f}, box AP "
                f"{b['ap']:.4f} (COCO, pycocotools; best epoch {report['best_epoch']})")


def report_of(r: dict[str, Any], classes: list[str], category_ids: list[int], images: int) -> dict[str, Any]:
    """The JSON report of an :func:`evaluate` result; per-class AP keyed by class name."""
    names = {cid: classes[k] for k, cid in enumerate(category_ids) if k > 0}
    out: dict[str, Any] = {"images": images, "instances": len(r["truth"]["annotations"]),
                           "detections": len(r["results"]), "classes": classes, "category_ids": category_ids,
                           "evaluator": "pycocotools COCOeval (maxDets 100, area all)"}
    for kind in ("box", "mask"):
        d = dict(r[kind])
        d["per_class"] = {names[cid]: ap for cid, ap in d["per_class"].items()}
        out[kind] = d
    return out


def build_instance_model(name: str, shape: tuple[int, int, int], classes: int, options: dict[str, Any]
                         ) -> tuple[nn.Module, dict[str, Any]]:
    """A zoo instance-segmentation network for images of ``shape`` and ``classes`` classes (background included)."""
    from cnnlab.models import ZOO, create_model, get_entry

    entry = get_entry(name)
    if entry.task != "instance":
        inst = ", ".join(n for n, e in ZOO.items() if e.task == "instance")
        raise CnnlabError(f"--model {entry.name} is not an instance-segmentation network; use {inst}")
    options = {**options, "image_size": max(shape[1], shape[2])}
    from cnnlab.train.model import require_weights_fit

    require_weights_fit(lambda: create_model(entry.name, num_classes=classes, in_channels=shape[0], **options),
                        entry.name)
    return create_model(entry.name, num_classes=classes, in_channels=shape[0], **options), \
        {"kind": "zoo", "name": entry.name, "options": options}
