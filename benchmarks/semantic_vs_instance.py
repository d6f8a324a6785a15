"""Semantic U-Net vs Mask R-CNN on the test scenes: how often are two touching objects of one class kept apart?

    python benchmarks/semantic_vs_instance.py --semantic runs/unet-goal --instance runs/maskrcnn-goal \
        --out runs/semantic-vs-instance

Both runs must have been trained on the same scenes (``scenes:fashion-mnist``, the default of
``cnnlab segment train``). Every test scene is segmented by both; for each pair of touching
same-class instances the script counts whether the U-Net's mask merges them into one connected
component and whether Mask R-CNN finds them as two objects (cnnlab.study.semantic_vs_instance has
the rules). Writes ``<out>/compare.md`` (also printed), ``<out>/compare.json`` and
``<out>/side_by_side.png`` (scenes with touching pairs: image | truth | U-Net classes | U-Net
components | Mask R-CNN).
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np
import torch

from cnnlab.data.instances import from_label_image
from cnnlab.data.scenes import SceneConfig, make_scenes, parse_scenes_source
from cnnlab.study.semantic_vs_instance import PairCounts
from cnnlab.train.tasks import instance as inst
from cnnlab.train.tasks import semantic as sem
from cnnlab.train.runs import open_run


def figure(rows: list[dict], classes: list[str], path: Path, threshold: float, min_part: int) -> None:
    from scipy import ndimage

    from cnnlab.viz.common import plt, save_figure
    from cnnlab.viz.segmentation import as_rgb, colour_mask, draw_instances, overlay_instances

    fig, axes = plt.subplots(len(rows), 5, figsize=(11, 2.3 * len(rows) + 0.5), squeeze=False)
    for r, row in enumerate(rows):
        axes[r, 0].imshow(as_rgb(row["image"]), interpolation="nearest")
        draw_instances(axes[r, 1], row["image"], row["truth"], classes)
        axes[r, 2].imshow(colour_mask(row["semantic"]), interpolation="nearest")
        parts = []                                     # each class's connected parts, each in its own colour
        for c in np.unique(row["semantic"]):
            if c == 0:
                continue
            comp, n = ndimage.label(row["semantic"] == c)
            parts += [torch.from_numpy(comp == k) for k in range(1, n + 1) if (comp == k).sum() >= min_part]
        stack = torch.stack(parts) if parts else torch.zeros((0, *row["semantic"].shape), dtype=torch.bool)
        axes[r, 3].imshow(overlay_instances(row["image"], stack, alpha=0.8), interpolation="nearest")
        axes[r, 3].set_xlabel(f"{len(parts)} parts of ≥ {min_part} px", fontsize=7)
        shown = draw_instances(axes[r, 4], row["image"], row["det"], classes, threshold)
        axes[r, 4].set_xlabel(f"{shown} detections", fontsize=7)
        axes[r, 1].set_xlabel(f"{len(row['truth']['labels'])} instances", fontsize=7)
    for j, name in enumerate(("image", "truth (instances)", "U-Net (classes)", "U-Net (connected parts per class)",
                              f"Mask R-CNN (score ≥ {threshold})")):
        axes[0, j].set_title(name, fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    save_figure(fig, path)


def big_parts(mask: np.ndarray, min_pixels: int) -> int:
    """Connected parts (4-connectivity) of at least ``min_pixels`` pixels: specks are not objects."""
    from scipy import ndimage

    comp, n = ndimage.label(mask)
    return int((np.bincount(comp.ravel())[1:] >= min_pixels).sum()) if n else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--semantic", type=Path, required=True, help="a U-Net (or FCN) run folder")
    ap.add_argument("--instance", type=Path, required=True, help="a Mask R-CNN run folder")
    ap.add_argument("--out", type=Path, default=Path("runs/semantic-vs-instance"))
    ap.add_argument("--score-threshold", type=float, default=inst.SCORE_THRESHOLD)
    ap.add_argument("--figure-rows", type=int, default=6)
    ap.add_argument("--min-part", type=int, default=20,
                    help="pixels a connected part of the U-Net mask needs to count as an object (items here have 60+)")
    args = ap.parse_args()
    srun, irun = open_run(args.semantic, "semantic"), open_run(args.instance, "instance")
    sdoc, smodel, smean, sstd = srun.doc, srun.model, srun.mean, srun.std
    idoc, imodel, imean, istd = irun.doc, irun.model, irun.mean, irun.std
    source = parse_scenes_source(sdoc["config"]["data"])
    if source is None or sdoc["config"]["data"] != idoc["config"]["data"]:
        raise SystemExit("both runs must be trained on the same in-memory scenes (scenes:SOURCE)")
    scenes = make_scenes(SceneConfig(source=source, data_dir=sdoc["config"].get("data_dir")))
    test = scenes.splits["test"]
    preds, _ = sem.predict_masks(smodel, test.images, smean, sstd, "cpu")
    dets = inst.predict_instances(imodel, test.images, imean, istd)
    counts, rows, scenes_with_pairs = PairCounts(), [], 0
    count_error = {"semantic": 0, "instance": 0}
    from scipy import ndimage

    for i in range(len(test)):
        masks, labels = from_label_image(test.instances[i].numpy(), test.instance_classes[i])
        pred = preds[i].numpy()
        pairs = counts.add(pred, dets[i], masks, labels, args.score_threshold)
        parts = sum(big_parts(pred == c, args.min_part) for c in range(1, len(scenes.classes)))
        count_error["semantic"] += abs(parts - len(labels))
        count_error["instance"] += abs(int((dets[i]["scores"] >= args.score_threshold).sum()) - len(labels))
        if pairs:
            scenes_with_pairs += 1
            if len(rows) < args.figure_rows:
                truth = inst.make_target(masks, labels)
                truth["masks"] = truth["masks"].bool()
                rows.append({"image": test.images[i], "truth": truth, "semantic": pred, "det": dets[i]})
    c = counts
    result = {"test_scenes": len(test), "scenes_with_touching_pairs": scenes_with_pairs, "pairs": c.pairs,
              "semantic_merged": c.semantic_merged, "semantic_separated": c.semantic_separated,
              "semantic_missed": c.semantic_missed, "instance_separated": c.instance_separated,
              "mean_count_error": {k: v / len(test) for k, v in count_error.items()},
              "semantic_run": str(args.semantic), "instance_run": str(args.instance),
              "score_threshold": args.score_threshold, "min_part_pixels": args.min_part, "machine": platform.processor() or platform.machine()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "compare.json").write_text(json.dumps(result, indent=2))
    pct = lambda k: 100 * k / max(c.pairs, 1)  # noqa: E731
    md = (f"{c.pairs} pairs of touching same-class objects in {scenes_with_pairs} of {len(test)} test scenes\n\n"
          "| | pairs | share |\n|---|---:|---:|\n"
          f"| U-Net mask merges the two into one connected part | {c.semantic_merged} | {pct(c.semantic_merged):.1f} % |\n"
          f"| U-Net mask keeps them apart | {c.semantic_separated} | {pct(c.semantic_separated):.1f} % |\n"
          f"| U-Net misses one of them entirely | {c.semantic_missed} | {pct(c.semantic_missed):.1f} % |\n"
          f"| Mask R-CNN finds both as separate objects (IoU ≥ 0.5, score ≥ {args.score_threshold}) | "
          f"{c.instance_separated} | {pct(c.instance_separated):.1f} % |\n\n"
          f"Mean |objects counted − true objects| per test scene: U-Net connected parts of ≥ {args.min_part} px "
          f"{result['mean_count_error']['semantic']:.3f}, Mask R-CNN detections "
          f"{result['mean_count_error']['instance']:.3f}.\n")
    (args.out / "compare.md").write_text(md)
    figure(rows, scenes.classes, args.out / "side_by_side.png", args.score_threshold, args.min_part)
    print(md)
    print(f"figure: {args.out / 'side_by_side.png'}")


if __name__ == "__main__":
    main()
