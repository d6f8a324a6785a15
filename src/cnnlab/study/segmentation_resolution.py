"""Semantic segmentation's difficulty, measured: ``cnnlab study segmentation-resolution``.

Géron's chapter 14, exercise 8: the main technical difficulty of semantic segmentation is that "a lot of the
spatial information gets lost in a CNN as the signal flows through each layer, especially in pooling layers and
layers with a stride greater than 1"; FCNs upsample and add skip connections from lower layers to recover it,
U-Net concatenates every level back. The study trains FCN-32s, FCN-16s, FCN-8s (Long et al. 2015: the coarsest
map fused into the output has a stride of 32, 16, 8 pixels) and U-Net (Ronneberger et al. 2015: full-resolution
skips, stride 1) on the same scenes with the same budget and seeds, and measures mIoU over all pixels and over
the pixels near a class boundary (where lost resolution shows), with two test scenes' four predictions drawn.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from cnnlab.study import common

MODELS = ("fcn32s", "fcn16s", "fcn8s", "unet")
LABELS = {"fcn32s": "FCN-32s", "fcn16s": "FCN-16s", "fcn8s": "FCN-8s", "unet": "U-Net"}
# the finest stride whose scores reach the output, from the papers (FCN: Long et al. 2015, §4.2; U-Net's last
# skip joins at full resolution)
OUTPUT_STRIDE = {"fcn32s": 32, "fcn16s": 16, "fcn8s": 8, "unet": 1}


@dataclass(frozen=True)
class SegResConfig:
    """What the study trains; ``quick`` is digit scenes of 32×32 (a few minutes on 2 cores)."""

    data: str | None = None           # scene items: fashion-mnist (digits with quick)
    data_dir: str | None = None
    out: str = "study-segmentation-resolution"
    epochs: int | None = None         # default: 6 (7 with quick)
    batch: int | None = None          # default: 32
    seeds: tuple[int, ...] = (0, 1, 2)
    quick: bool = False
    scenes: int | None = None         # scenes drawn (80/10/10); default 3,000 (1,000 with quick)
    size: int | None = None           # canvas side; default 64 (32 with quick)

    def effective(self) -> SegResConfig:
        q = self.quick
        return replace(self, data=self.data or ("digits" if q else "fashion-mnist"),
                       epochs=self.epochs or (7 if q else 6), batch=self.batch or 32,
                       scenes=self.scenes or (1000 if q else 3000), size=self.size or (32 if q else 64))


def _seeds_phrase(some: int, seeds: int) -> str:
    """``in every seed`` / ``in the only seed`` when all of them, else ``in 2 of 3 seeds``."""
    if some == seeds:
        return "in every seed" if seeds > 1 else "in the only seed"
    return f"in {some} of {seeds} seeds"


def make_scene_folder(cfg: SegResConfig, folder: Path) -> Path:
    """The study's scenes, drawn once (seed 0) and written to ``folder``; items scaled with the canvas."""
    return common.scene_folder(folder, cfg.data or "fashion-mnist", cfg.scenes or 3000, cfg.size or 64, cfg.data_dir)


def plan(cfg: SegResConfig) -> tuple[Path, dict[str, Any]]:
    """(the scenes' folder, every run of the study)."""
    from cnnlab.train.config import TrainConfig
    from cnnlab.train.recipes import model_options

    out = Path(cfg.out)
    scenes = make_scene_folder(cfg, out / "scenes")
    # float32 (segmentation's default) in channels-last layout: the same arithmetic; in the study's runs U-Net's
    # epochs ~1.3x and the FCNs' ~1.2x faster on 2 cores (docs/benchmarks.md), for the full form's 20 minutes
    base = TrainConfig.for_task("semantic", data=str(scenes.resolve()), epochs=cfg.epochs, batch=cfg.batch,
                                augment=common.scene_augment(cfg.data or "fashion-mnist"), channels_last=True)
    arms = {m: {"model": m, "model_args": model_options("semantic", m)} for m in MODELS}
    return scenes, common.seed_runs(base, arms, cfg.seeds, out)


def measure(cfg: SegResConfig, scenes: Path, runs: dict[str, Any]) -> dict[str, Any]:
    """Every number of the report, from the finished runs' test reports."""
    arms: dict[str, dict[str, Any]] = {}
    for m in MODELS:
        reports = [json.loads((Path(runs[f"{m}-s{s}"].out) / "test.json").read_text()) for s in cfg.seeds]
        docs = [json.loads((Path(runs[f"{m}-s{s}"].out) / "config.json").read_text()) for s in cfg.seeds]
        rs = [common.result_seconds(Path(runs[f"{m}-s{s}"].out)) for s in cfg.seeds]
        arms[m] = {"miou": common.spread(r["miou"] for r in reports),
                   "boundary_miou": common.spread(r["boundary_miou"] for r in reports),
                   "pixel_accuracy": common.spread(r["pixel_accuracy"] for r in reports),
                   "params": docs[0]["params"], "output_stride": OUTPUT_STRIDE[m],
                   # seeds no better than background for every test pixel: not learnt at this budget
                   "not_learnt_seeds": sum(not learnt(r["miou"], r["confusion"]) for r in reports),
                   "train_s": common.spread(rs)}
    first = runs[f"{MODELS[0]}-s{cfg.seeds[0]}"]
    classes = (scenes / "classes.txt").read_text().split("\n")
    return {"study": "segmentation-resolution", "config": asdict(cfg), "machine": common.machine_line(),
            "data": {"scenes": str(scenes), "items": cfg.data, "side": cfg.size, "count": cfg.scenes,
                     "classes": len([c for c in classes if c.strip()])},
            "recipe": {"optimizer": first.optimizer, "lr": first.learning_rate, "precision": first.precision,
                       "channels_last": first.channels_last, "epochs": cfg.epochs, "batch": cfg.batch, "augment": first.augment,
                       "width": first.model_args.get("width")},
            "arms": arms}


NOT_LEARNT_MARGIN = 0.001      # mIoU within a tenth of a point of labelling everything background: not learnt


def background_miou(confusion: list[list[int]]) -> float:
    """The mIoU of labelling every test pixel of ``confusion`` (rows: true class, columns: predicted) background,
    averaged over the classes the network's own mIoU averages (those in its truth or its predictions): the
    background's IoU is its share of the pixels, every other class's 0."""
    import torch

    from cnnlab.train.tasks.semantic import iou_per_class

    cm = torch.tensor(confusion, dtype=torch.long)
    present = sum(v is not None for v in iou_per_class(cm))
    return float(cm[0].sum()) / float(cm.sum()) / max(present, 1) if int(cm.sum()) else 0.0


def learnt(miou: float, confusion: list[list[int]]) -> bool:
    """Has a network learnt anything? Its test mIoU is above labelling everything background by more than
    ``NOT_LEARNT_MARGIN`` (a few stray pixels, right or wrong, do not count)."""
    return miou > background_miou(confusion) + NOT_LEARNT_MARGIN


def findings(r: dict[str, Any]) -> list[str]:
    """The chapter's claim, stated from the measured numbers."""
    a = r["arms"]
    order = ", ".join(f"{LABELS[m]} (stride {a[m]['output_stride']}) {common.pct_spread(a[m]['miou'])}" for m in MODELS)
    band = ", ".join(f"{LABELS[m]} {common.pct_spread(a[m]['boundary_miou'])}" for m in MODELS)
    v = common.verdict(a["fcn8s"]["boundary_miou"], a["fcn32s"]["boundary_miou"])
    vu = common.verdict(a["unet"]["boundary_miou"], a["fcn8s"]["boundary_miou"])
    idle = {m: a[m].get("not_learnt_seeds", len(a[m]["miou"]["values"]) if a[m].get("background_only") else 0)
            for m in MODELS}                                  # older reports: every seed background only
    if idle["fcn32s"] or idle["fcn8s"]:
        v = "not learnt"
    if idle["fcn8s"]:
        vu = "not learnt"
    gap = {m: a[m]["miou"]["median"] - a[m]["boundary_miou"]["median"] for m in MODELS}
    names = [f"{LABELS[m]} ({_seeds_phrase(idle[m], len(a[m]['miou']['values']))})" for m in MODELS if idle[m]]
    one = len(names) == 1
    lines = [f"**Resolution.** mIoU over all pixels: {order}."
             + (f" {' and '.join(names)} score{'s' if one else ''} no better than labelling every test pixel "
                f"background: at this budget {'it has' if one else 'they have'} not learnt, so the comparison with "
                f"{'it' if one else 'them'} measures training speed as much as resolution"
                + (" (the full form trains longer)." if r["config"].get("quick") else ".") if names else ""),
             f"**Boundaries.** mIoU within {2} pixels of a class boundary: {band}; the boundary band is "
             + ", ".join(f"{100 * gap[m]:.1f}" for m in MODELS) + " points below the whole image for "
             + ", ".join(LABELS[m] for m in MODELS) + ". "
             + {"higher": "Skips from stride-8 maps (FCN-8s) beat the stride-32 output at boundaries in every "
                          "seed: the coarse output lost spatial information. ",
                "lower": "FCN-8s is *below* FCN-32s at boundaries in every seed here. ",
                "not shown": "FCN-8s over FCN-32s at boundaries is not shown here (the seeds' ranges overlap). ",
                "not learnt": "FCN-8s against FCN-32s says nothing about resolution here: "
                              + " and ".join(LABELS[m] for m in ("fcn32s", "fcn8s") if idle[m])
                              + (" have" if idle["fcn32s"] and idle["fcn8s"] else " has")
                              + " not learnt (no better than background everywhere, in at least one seed). "}[v]
             + {"higher": "U-Net's full-resolution skips beat FCN-8s at boundaries in every seed.",
                "lower": "U-Net is below FCN-8s at boundaries in every seed here.",
                "not shown": "U-Net over FCN-8s is not shown here.",
                "not learnt": "U-Net against FCN-8s says nothing about resolution here: FCN-8s has not learnt."}[vu]]
    return lines


def _figure(cfg: SegResConfig, scenes: Path, runs: dict[str, Any], out: Path) -> str:
    """Two test scenes (the first with two objects or more, else the first): image, truth, each model (seed 0)."""
    import torch

    from cnnlab.data.segmentation import load_segmentation
    from cnnlab.train.runs import open_run
    from cnnlab.train.tasks.semantic import predict_masks
    from cnnlab.viz.segmentation import plot_overlays

    data = load_segmentation(str(scenes))
    test = data.test
    busy = [i for i in range(len(test)) if len(torch.unique(test.masks[i])) >= 3]
    pick = torch.tensor(busy[:2] or [0])
    preds = []
    for m in MODELS:
        run = open_run(Path(runs[f"{m}-s{cfg.seeds[0]}"].out), "semantic")
        preds.append(predict_masks(run.model, test.images[pick], run.mean, run.std, "cpu")[0])
    path = plot_overlays(test.images[pick], test.masks[pick], preds,
                         [f"{LABELS[m]} (stride {OUTPUT_STRIDE[m]})" for m in MODELS], data.classes,
                         out / "segmentation_resolution.png", "the same test scenes: what each output stride keeps")
    return path.name


def write_report(r: dict[str, Any], cfg: SegResConfig, scenes: Path, runs: dict[str, Any], out: Path) -> Path:
    """``report.json``, ``report.md`` and the figure in ``out``."""
    from cnnlab.files import atomic_write_text

    r = {**r, "findings": findings(r), "figures": [_figure(cfg, scenes, runs, out)]}
    atomic_write_text(out / "report.json", json.dumps(r, indent=2))
    rec, d = r["recipe"], r["data"]
    md = ["# How much resolution segmentation loses: FCN-32s, FCN-16s, FCN-8s and U-Net", "",
          f"{d['count']:,} scenes of {d['side']}×{d['side']} ({d['items']} items; 80/10/10 train/val/test), each network "
          f"at width {rec['width']}, {rec['epochs']} epochs, batch {rec['batch']}, {rec['optimizer']} {rec['lr']}, "
          f"augment {rec['augment']}, {rec['precision']}{', channels-last' if rec.get('channels_last') else ''}, seeds {', '.join(map(str, r['config']['seeds']))}. "
          f"Machine: {r['machine']}.", ""]
    md += [f"- {line}" for line in r["findings"]]
    md += ["", "| network | output stride | parameters | mIoU | boundary mIoU | pixel accuracy | training (s) |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for m in MODELS:
        a = r["arms"][m]
        md.append(f"| {LABELS[m]} | {a['output_stride']} | {a['params']:,} | {common.pct_spread(a['miou'])} | "
                  f"{common.pct_spread(a['boundary_miou'])} | {common.pct(a['pixel_accuracy']['median'])} | "
                  f"{common.secs(a['train_s']['median'])} |")
    md += ["", "mIoU includes the background class; the boundary band is the pixels within 2 of a class change. "
               "Medians over the seeds (range in brackets); a difference is claimed only where the seeds' ranges do "
               "not overlap.", "", f"![four predictions]({r['figures'][0]})", ""]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(md))
    return path


def study(cfg: SegResConfig, progress: bool = True) -> Path:
    """Run (or resume) the whole study and write its report; returns ``report.md``'s path."""
    cfg = cfg.effective()
    out = Path(cfg.out)
    with common.study_folder(out, "segmentation-resolution", cfg.seeds):
        scenes, runs = plan(cfg)
    common.run_all(runs, progress, desc="segmentation-resolution")
    return write_report(measure(cfg, scenes, runs), cfg, scenes, runs, out)
