"""What does data augmentation buy? ``cnnlab study augmentation``.

The chapter's claim: augmentation "artificially increases the size of the training set" and makes the model
"more tolerant to variations in the position, orientation and size of the objects" and to lighting. The study
trains cnnlab's small CNN with each augmentation preset (:mod:`cnnlab.data.augment`: ``none``, ``flip`` where
the data allows mirror images, ``shift``, ``strong``) on several training-set sizes, with the same seeds; a
smaller set gets the full set's optimizer steps (more epochs, at most 4× as many), so it is not simply a shorter
training. It measures test accuracy against the set's size, and, for the runs on the largest set, test accuracy
on test images shifted, rotated and brightened.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from cnnlab.study import common

PRESETS = ("none", "flip", "shift", "strong")
LABELS = {"none": "none", "flip": "flip (mirror images)", "shift": "shift (up to 30 %)",
          "strong": "strong (crop, rotation, shift, brightness, contrast, flip)"}


@dataclass(frozen=True)
class AugmentConfig:
    """What the study trains; ``quick`` is digits-sized (a few minutes on 2 cores)."""

    data: str | None = None           # default: fashion-mnist (digits with quick)
    data_dir: str | None = None
    out: str = "study-augmentation"
    epochs: int | None = None         # on the largest set; default: 4 (15 with quick)
    batch: int | None = None          # default: 128 (64 with quick)
    seeds: tuple[int, ...] = (0, 1, 2)
    quick: bool = False
    sizes: tuple[int, ...] | None = None    # training-set sizes; default: 1/16, 1/4 and all (full: 1,000, 4,000, 12,000)
    # share of the whole training split held out for validation (each run's best epoch), before the --sizes subsets
    # are drawn; default 0.1 (quick), 0.05 full: 3,000 Fashion-MNIST images. (The first full form validated 6,000
    # images after each of a 1,000-image run's 24 epochs: that took longer than the training.)
    val_fraction: float | None = None

    def effective(self) -> AugmentConfig:
        """The settings with every default filled in (``quick``: digits, 15 epochs, batch 64; full: fashion-mnist,
        4 epochs, batch 128, 5 % of the training images for validation)."""
        q = self.quick
        return replace(self, data=self.data or ("digits" if q else "fashion-mnist"),
                       epochs=self.epochs or (15 if q else 4), batch=self.batch or (64 if q else 128),
                       val_fraction=self.val_fraction if self.val_fraction is not None else (0.1 if q else 0.05))


def _sizes(cfg: AugmentConfig, train_images: int) -> tuple[int, ...]:
    """The training-set sizes, distinct and ascending; a size asked above the data's count, or one below a batch,
    is refused (the defaults are cut to the data's count)."""
    from cnnlab.errors import CnnlabError

    if cfg.sizes:
        over = sorted(n for n in set(cfg.sizes) if n > train_images)
        if over:
            raise CnnlabError(f"--sizes {','.join(map(str, over))}: the training split holds "
                              f"{train_images:,} images (after --val-fraction's share); give sizes up to "
                              f"{train_images:,}")
        sizes = set(cfg.sizes)
    elif cfg.quick:
        sizes = {max(cfg.batch or 1, round(train_images * f)) for f in (1 / 16, 1 / 4)} | {train_images}
    else:
        sizes = {min(n, train_images) for n in (1000, 4000, 12000)}
    small = [n for n in sizes if n < (cfg.batch or 1)]
    if small and not cfg.sizes:
        fix = f", or --sizes of at least {cfg.batch}" if cfg.batch <= train_images else ""
        raise CnnlabError(f"--batch {cfg.batch}: more than the smallest training-set size ({min(sizes):,} images); "
                          f"give a --batch of at most {min(sizes):,}{fix}")
    if small:
        raise CnnlabError(f"--sizes {', '.join(map(str, sorted(small)))}: fewer training images than one batch of "
                          f"{cfg.batch}; give sizes of at least {cfg.batch} or a smaller --batch")
    return tuple(sorted(sizes))


def plan(cfg: AugmentConfig) -> tuple[Any, list[str], tuple[int, ...], dict[str, Any]]:
    """(data, the presets tried, the training-set sizes, every run of the study)."""
    from cnnlab.data import load_data
    from cnnlab.train.config import TrainConfig

    assert cfg.val_fraction is not None, "plan() takes the effective() settings"
    data = load_data(cfg.data, cfg.data_dir, val_fraction=cfg.val_fraction, seed=cfg.seeds[0])
    presets = [p for p in PRESETS if p != "flip" or data.flip_ok]       # mirror images change a digit's class
    sizes = _sizes(cfg, len(data.train))
    base = TrainConfig(data=cfg.data, data_dir=cfg.data_dir, batch=cfg.batch, epochs=cfg.epochs,
                       val_fraction=cfg.val_fraction)
    steps = cfg.epochs * (sizes[-1] // cfg.batch)
    arms = {}
    for n in sizes:
        epochs = min(4 * cfg.epochs, max(cfg.epochs, -(-steps // max(1, n // cfg.batch))))
        subset = {"train_size": n} if n < len(data.train) else {}
        for preset in presets:
            arms[f"{preset}-n{n}"] = {"augment": preset, "epochs": epochs, **subset}
    return data, presets, sizes, common.seed_runs(base, arms, cfg.seeds, Path(cfg.out))


def perturbations(side: int) -> dict[str, Any]:
    """The test-time variations: shifted (2 pixels at 28, scaled; mean of four directions), rotated (±15°,
    mean of both), brightened (×1.5, clipped) — torchvision's functional transforms on uint8 images."""
    from torchvision.transforms.v2 import functional as TF

    px = max(1, round(2 * side / 28))

    def shifted(x: Any) -> list[Any]:
        return [common.shift_images(x, dy * px, dx * px) for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0))]

    def rotated(x: Any) -> list[Any]:
        return [TF.rotate(x, a, interpolation=TF.InterpolationMode.BILINEAR, fill=0) for a in (15.0, -15.0)]

    def brightened(x: Any) -> list[Any]:
        return [TF.adjust_brightness(x, 1.5)]

    return {f"shifted {px} px": shifted, "rotated ±15°": rotated, "brightened ×1.5": brightened}


def measure(cfg: AugmentConfig, data: Any, presets: list[str], sizes: tuple[int, ...],
            runs: dict[str, Any]) -> dict[str, Any]:
    """Every number of the report, from the finished runs."""
    arms = common.arm_results(runs, [f"{p}-n{n}" for p in presets for n in sizes], cfg.seeds)
    variations = perturbations(min(data.shape[1:]))
    robustness: dict[str, dict[str, Any]] = {}
    for preset in presets:
        arm = f"{preset}-n{sizes[-1]}"
        per_variation: dict[str, list[float]] = {name: [] for name in variations}
        for s in cfg.seeds:
            test, folder = common.test_split(cfg.data, cfg.data_dir, s), Path(runs[f"{arm}-s{s}"].out)
            for name, vary in variations.items():
                accs = [common.evaluate_on(folder, x, test.labels) for x in vary(test.images)]
                per_variation[name].append(sum(accs) / len(accs))
        robustness[preset] = {name: common.spread(v) for name, v in per_variation.items()}
    first = runs[next(iter(runs))]
    return {"study": "augmentation", "config": asdict(cfg), "machine": common.machine_line(),
            "data": {"name": cfg.data, "shape": list(data.shape), "classes": len(data.classes),
                     "train_images": len(data.train), "val_images": len(data.val), "flip_ok": bool(data.flip_ok)},
            "recipe": {"optimizer": first.optimizer, "precision": first.precision,
                       "channels_last": first.channels_last, "batch": cfg.batch,
                       "epochs": {str(n): runs[f"{presets[0]}-n{n}-s{cfg.seeds[0]}"].epochs for n in sizes}},
            "presets": presets, "sizes": list(sizes), "arms": arms, "variations": list(variations),
            "robustness": robustness}


def findings(r: dict[str, Any]) -> list[str]:
    """The chapter's claims, each stated from the measured numbers."""
    arms, sizes, presets = r["arms"], r["sizes"], r["presets"]
    small, big = sizes[0], sizes[-1]
    lines = []
    for n in dict.fromkeys((small, big)):              # one size: one line
        none = arms[f"none-n{n}"]["test_acc"]
        best = max(presets[1:], key=lambda p: arms[f"{p}-n{n}"]["test_acc"]["median"])
        b = arms[f"{best}-n{n}"]["test_acc"]
        v = common.verdict(b, none)
        lines.append(f"**{n:,} training images.** Without augmentation {common.pct_spread(none)}; the best preset, "
                     f"{best}, {common.pct_spread(b)} ({100 * (b['median'] - none['median']):+.2f} points). "
                     + {"higher": "Augmentation helps here in every seed.",
                        "lower": "Even the best augmentation is *below* none here, in every seed.",
                        "not shown": "A gain from augmentation is not shown here: the seeds' ranges overlap."}[v])
    if small == big:
        lines.append(f"**More data.** Not measured: one training-set size ({big:,} images); give --sizes two or more "
                     "sizes below the data's own count to compare.")
        return lines + [_tolerance(r, presets, big)]
    # each seed's gain of the best preset (by median) over none, at the smallest and the largest set
    best = {n: max(presets[1:], key=lambda p: arms[f"{p}-n{n}"]["test_acc"]["median"]) for n in (small, big)}
    gains = {n: common.spread(b - a for a, b in zip(arms[f"none-n{n}"]["test_acc"]["values"],
                                                     arms[f"{best[n]}-n{n}"]["test_acc"]["values"]))
             for n in (small, big)}
    v = common.verdict(gains[small], gains[big])
    lines.append(f"**More data.** The best preset's gain over none, seed by seed, is {100 * gains[small]['median']:+.2f} "
                 f"points (median) with {small:,} images and {100 * gains[big]['median']:+.2f} with {big:,}: "
                 + {"higher": "augmentation matters more when data is scarce, as the chapter says (in every seed).",
                    "lower": "here augmentation matters *less* when data is scarce (in every seed).",
                    "not shown": "that it matters more when data is scarce is not shown here (the seeds' gains "
                                 "overlap)."}[v])
    return lines + [_tolerance(r, presets, big)]


def _tolerance(r: dict[str, Any], presets: list[str], big: int) -> str:
    """The tolerance finding: accuracy on varied test images, none against the best preset, for the largest set."""
    rob = r["robustness"]
    parts = []
    for name in r["variations"]:
        none = rob["none"][name]
        best = max(presets[1:], key=lambda p: rob[p][name]["median"])
        v = common.verdict(rob[best][name], none)
        parts.append(f"{name}: none {common.pct(none['median'])}, {best} {common.pct(rob[best][name]['median'])}"
                     + (" (higher in every seed)" if v == "higher" else " (not shown: the seeds' ranges overlap)"
                        if v == "not shown" else " (lower in every seed)"))
    return f"**Tolerance to variations** (all {big:,} images): " + "; ".join(parts) + "."


def _figure(r: dict[str, Any], out: Path) -> str:
    from cnnlab.viz.common import plt, save_figure

    fig, axes = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
    for i, preset in enumerate(r["presets"]):
        s = [r["arms"][f"{preset}-n{n}"]["test_acc"] for n in r["sizes"]]
        axes[0].plot(r["sizes"], [100 * x["median"] for x in s], "o-", color=f"C{i}", label=LABELS[preset])
        axes[0].fill_between(r["sizes"], [100 * x["min"] for x in s], [100 * x["max"] for x in s], color=f"C{i}",
                             alpha=0.15)
    axes[0].set(xscale="log", xlabel="training images", ylabel="test accuracy (%)",
                title="accuracy vs training-set size (band: seeds' range)")
    axes[0].legend(fontsize=7)
    axes[0].grid(alpha=0.3)
    names = ["as they are", *r["variations"]]
    width = 0.8 / len(r["presets"])
    for i, preset in enumerate(r["presets"]):
        plain = r["arms"][f"{preset}-n{r['sizes'][-1]}"]["test_acc"]["median"]
        ys = [plain] + [r["robustness"][preset][v]["median"] for v in r["variations"]]
        axes[1].bar([j + i * width for j in range(len(names))], [100 * y for y in ys], width, color=f"C{i}",
                    label=preset)
    axes[1].set_xticks([j + 0.4 - width / 2 for j in range(len(names))], names, fontsize=8)
    axes[1].set(ylabel="test accuracy (%)", xlabel="test images",
                title=f"trained on {r['sizes'][-1]:,} images: test images varied")
    axes[1].legend(fontsize=7)
    return save_figure(fig, out / "augmentation.png").name


def write_report(r: dict[str, Any], out: Path) -> Path:
    """``report.json``, ``report.md`` and the figure in ``out``."""
    from cnnlab.files import atomic_write_text

    r = {**r, "findings": findings(r), "figures": [_figure(r, out)]}
    atomic_write_text(out / "report.json", json.dumps(r, indent=2))
    rec, sizes = r["recipe"], r["sizes"]
    md = [f"# Data augmentation on {r['data']['name']}", "",
          f"small_cnn with each augmentation preset, batch {rec['batch']} ({rec['optimizer']}, one-cycle schedule, "
          f"{rec['precision']}{', channels-last' if rec['channels_last'] else ''}), epochs by training-set size "
          + ", ".join(f"{int(n):,}: {e}" for n, e in rec["epochs"].items())
          + f" (the largest set's steps, at most 4× its epochs), seeds {', '.join(map(str, r['config']['seeds']))}; "
          + (f"best epoch by {r['data']['val_images']:,} validation images. " if "val_images" in r["data"] else "")
          + ("" if r["data"]["flip_ok"] else "No flip preset: a mirror image changes this data's class. ")
          + f"Machine: {r['machine']}.", ""]
    md += [f"- {line}" for line in r["findings"]]
    md += ["", "## Test accuracy vs training-set size", "",
           "| preset | " + " | ".join(f"{n:,} images" for n in sizes) + " |", "|---|" + "---:|" * len(sizes)]
    for p in r["presets"]:
        md.append(f"| {LABELS[p]} | " + " | ".join(common.pct_spread(r["arms"][f"{p}-n{n}"]["test_acc"])
                                                   for n in sizes) + " |")
    md += ["", f"## Tolerance to variations (trained on {sizes[-1]:,} images)", "",
           "| preset | test images as they are | " + " | ".join(r["variations"]) + " |",
           "|---|---:|" + "---:|" * len(r["variations"])]
    for p in r["presets"]:
        md.append(f"| {LABELS[p]} | {common.pct(r['arms'][f'{p}-n{sizes[-1]}']['test_acc']['median'])} | "
                  + " | ".join(common.pct(r["robustness"][p][v]["median"]) for v in r["variations"]) + " |")
    md += ["", "Medians over the seeds (range in brackets); a difference is claimed only where the seeds' ranges do "
               "not overlap.", "", f"![augmentation]({r['figures'][0]})", ""]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(md))
    return path


def study(cfg: AugmentConfig, progress: bool = True) -> Path:
    """Run (or resume) the whole study and write its report; returns ``report.md``'s path."""
    cfg = cfg.effective()
    out = Path(cfg.out)
    with common.study_folder(out, "augmentation", cfg.seeds):
        data, presets, sizes, runs = plan(cfg)
    common.run_all(runs, progress, desc="augmentation")
    return write_report(measure(cfg, data, presets, sizes, runs), out)
