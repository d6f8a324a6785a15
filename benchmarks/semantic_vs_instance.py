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
from pathlib import Path

from cnnlab.data.instances import load_instances
from cnnlab.study.common import machine_line
from cnnlab.study.semantic_vs_instance import MIN_PART, count_scenes, figure
from cnnlab.train.runs import open_run
from cnnlab.train.tasks import instance as inst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--semantic", type=Path, required=True, help="a U-Net (or FCN) run folder")
    ap.add_argument("--instance", type=Path, required=True, help="a Mask R-CNN run folder")
    ap.add_argument("--out", type=Path, default=Path("runs/semantic-vs-instance"))
    ap.add_argument("--score-threshold", type=float, default=inst.SCORE_THRESHOLD)
    ap.add_argument("--figure-rows", type=int, default=6)
    args = ap.parse_args()
    srun, irun = open_run(args.semantic, "semantic"), open_run(args.instance, "instance")
    data = srun.doc["config"]["data"]
    if data != irun.doc["config"]["data"]:
        raise SystemExit("both runs must be trained on the same scenes (the same --data)")
    scenes = load_instances(data, srun.doc["config"].get("data_dir"))
    test = scenes.test
    c, preds, dets = count_scenes(test, srun, irun, args.score_threshold)
    with_pairs = c.pop("scenes_with_pairs")
    result = {**c, "scenes_with_touching_pairs": len(with_pairs), "semantic_run": str(args.semantic),
              "instance_run": str(args.instance), "score_threshold": args.score_threshold,
              "min_part_pixels": MIN_PART, "machine": machine_line()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "compare.json").write_text(json.dumps(result, indent=2))
    pct = lambda k: 100 * c[k] / max(c["pairs"], 1)  # noqa: E731
    md = (f"{c['pairs']} pairs of touching same-class objects in {result['scenes_with_touching_pairs']} of "
          f"{len(test)} test scenes\n\n| | pairs | share |\n|---|---:|---:|\n"
          f"| U-Net mask merges the two into one connected part | {c['semantic_merged']} | {pct('semantic_merged'):.1f} % |\n"
          f"| U-Net mask keeps them in different parts | {c['semantic_separated']} | {pct('semantic_separated'):.1f} % |\n"
          f"| U-Net mask's parts find both as two objects (IoU ≥ 0.5) | {c['semantic_found']} | {pct('semantic_found'):.1f} % |\n"
          f"| U-Net misses one of them entirely | {c['semantic_missed']} | {pct('semantic_missed'):.1f} % |\n"
          f"| Mask R-CNN finds both as separate objects (IoU ≥ 0.5, score ≥ {args.score_threshold}) | "
          f"{c['instance_separated']} | {pct('instance_separated'):.1f} % |\n\n"
          f"Mean |objects counted − true objects| per test scene: U-Net connected parts of ≥ {MIN_PART} px "
          f"{c['count_error']['semantic']:.3f}, Mask R-CNN detections {c['count_error']['instance']:.3f}.\n")
    (args.out / "compare.md").write_text(md)
    figure(test, with_pairs[:args.figure_rows] or [0], preds, dets, scenes.classes, args.out / "side_by_side.png", args.score_threshold)
    print(md)
    print(f"figure: {args.out / 'side_by_side.png'}")


if __name__ == "__main__":
    main()
