"""Max pooling, average pooling or a stride-2 convolution to downsample? ``cnnlab study pooling-vs-stride``.

Géron's chapter 14, exercise 4: a max pooling layer has no parameters, where a convolutional layer of the
same stride must learn its weights (and costs their multiply-accumulates). The study builds one network three
ways — cnnlab's small CNN, its two 2×2 max pools kept (``maxpool``), made 2×2 average pools (``avgpool``), or made
3×3 stride-2 convolutions of the same channels with batch norm and ReLU, as the all-convolutional net does
(``conv``; Springenberg et al. 2015) — trains each with the same recipe and seeds, and measures parameters,
MACs, the predicted training peak, seconds per epoch, test accuracy, and test accuracy with every test image
shifted by 1, 2 and 3 pixels (right, left, down, up; zero fill).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from cnnlab.study import common

ARMS = ("maxpool", "avgpool", "conv")
LABELS = {"maxpool": "2×2 max pooling", "avgpool": "2×2 average pooling", "conv": "3×3 stride-2 convolution"}
SHORT = {"maxpool": "max pool 2×2", "avgpool": "avg pool 2×2", "conv": "conv 3×3/2"}
SHIFTS = (0, 1, 2, 3)      # pixels at 28×28 and larger; small images (digits' 8×8) go to 2


def shifts_for(side: int) -> tuple[int, ...]:
    """The test shifts for images of this side: 1–3 pixels, 1–2 below 16 pixels (3 of 8 is most of a digit)."""
    return SHIFTS if side >= 16 else SHIFTS[:3]


@dataclass(frozen=True)
class PoolingConfig(common.ArmsConfig):
    """What the study trains (:class:`cnnlab.study.common.ArmsConfig`'s options); the full form trains 3 epochs (not
    the studies' 4): its 13 float32 evaluations per run of 10,000 shifted test images fit 20 minutes only so."""

    out: str = "study-pooling-vs-stride"

    def effective(self) -> PoolingConfig:
        """The settings with every default filled in (full: 3 epochs; ``quick``: digits, 15 epochs, batch 64)."""
        return common.ArmsConfig.effective(replace(self, epochs=self.epochs or (None if self.quick else 3)))  # type: ignore[return-value]


def _downsampler(arm: str, channels: int) -> list[Any]:
    if arm == "maxpool":
        return [{"maxpool": {"size": 2}}]
    if arm == "avgpool":
        return [{"avgpool": {"size": 2}}]
    return [{"conv": {"filters": channels, "kernel": 3, "stride": 2, "padding": "same", "bias": False}},
            "batchnorm", {"activation": "relu"}]


def write_specs(folder: Path, shape: tuple[int, int, int]) -> dict[str, str]:
    """The three networks: small_cnn with each 2×2 max pool replaced by the arm's downsampler."""
    import yaml

    from cnnlab.packaged import PACKAGED_SPECS

    base = yaml.safe_load(PACKAGED_SPECS["small_cnn"].read_text())
    out = {}
    for arm in ARMS:
        layers, channels = [], shape[0]
        for layer in base["layers"]:
            if isinstance(layer, dict) and "conv" in layer:
                channels = layer["conv"]["filters"]
            layers += _downsampler(arm, channels) if layer == {"maxpool": {"size": 2}} else [layer]
        doc = {"name": f"small_cnn_{arm}", "input": list(shape), "layers": layers}
        out[arm] = common.write_spec(folder / f"{arm}.yaml", doc,
                                     f"written by cnnlab study pooling-vs-stride: small_cnn downsampling by {LABELS[arm]}")
    return out


def plan(cfg: PoolingConfig) -> tuple[Any, dict[str, str], dict[str, Any]]:
    """(data, the arms' spec files, every run of the study)."""
    return common.plan_spec_arms(cfg, ARMS, lambda folder, data: write_specs(folder, data.shape))


def _sizes(specs: dict[str, str], shape: tuple[int, int, int], classes: int, batch: int,
           tc: Any) -> dict[str, dict[str, int]]:
    """Parameters, MACs per image and the predicted training-step peak of each network (as the runs train)."""
    import torch

    from cnnlab.analysis import analyze
    from cnnlab.memory import estimate_memory
    from cnnlab.train.model import build_model

    out = {}
    for arm, spec in specs.items():
        with torch.device("meta"):
            net, _ = build_model(spec, shape, classes)
        est = estimate_memory(net, shape, batch, optimizer=tc.optimizer, precision=tc.precision,
                              channels_last=tc.channels_last, weight_decay=tc.weight_decay, include_inference=False)
        out[arm] = {"params": sum(p.numel() for p in net.parameters()), "macs": analyze(net, shape).total_macs,
                    "train_peak_bytes": est.training.peak_bytes}
    return out


def measure(cfg: PoolingConfig, data: Any, specs: dict[str, str], runs: dict[str, Any]) -> dict[str, Any]:
    """Every number of the report, from the finished runs."""
    arms = common.arm_results(runs, ARMS, cfg.seeds)
    tests = {s: common.test_split(cfg.data, cfg.data_dir, s) for s in cfg.seeds}
    shifts = shifts_for(min(data.shape[1:]))
    for arm in ARMS:
        curves = [[common.shifted_accuracy(Path(runs[f"{arm}-s{s}"].out), tests[s].images, tests[s].labels, k)
                   for k in shifts] for s in cfg.seeds]
        arms[arm]["shifted"] = {str(k): common.spread(c[i] for c in curves) for i, k in enumerate(shifts)}
        arms[arm]["shift_drop"] = common.spread(c[0] - c[-1] for c in curves)
    first = runs[f"{ARMS[0]}-s{cfg.seeds[0]}"]
    return {"study": "pooling-vs-stride", "config": asdict(cfg), "machine": common.machine_line(),
            "data": {"name": cfg.data, "shape": list(data.shape), "classes": len(data.classes),
                     "train_images": len(data.train)},
            "recipe": {"optimizer": first.optimizer, "precision": first.precision,
                       "channels_last": first.channels_last, "epochs": cfg.epochs, "batch": cfg.batch},
            "specs": specs, "sizes": _sizes(specs, data.shape, len(data.classes), cfg.batch, first),
            "shifts": list(shifts), "arms": arms}


def findings(r: dict[str, Any]) -> list[str]:
    """The chapter's claim and what the runs add to it, each stated from the measured numbers."""
    sz, arms, big = r["sizes"], r["arms"], str(r["shifts"][-1])
    extra = sz["conv"]["params"] - sz["maxpool"]["params"]
    lines = [f"**Parameters.** Max and average pooling add no parameters: the network has {sz['maxpool']['params']:,} "
             f"either way; the stride-2 convolutions in their place add {extra:,} ({sz['conv']['params']:,} in all) "
             f"and {sz['conv']['macs'] - sz['maxpool']['macs']:,} MACs per image "
             f"({sz['conv']['macs'] / sz['maxpool']['macs']:.2f}× the max-pool network's {sz['maxpool']['macs']:,})."]
    mem = {a: sz[a]["train_peak_bytes"] for a in ARMS}
    secs = {a: arms[a]["epoch_s"]["median"] for a in ARMS}
    lines.append(f"**Cost.** Predicted training-step peak at batch {r['config']['batch']}: "
                 + ", ".join(f"{LABELS[a]} {mem[a]:,} B" for a in ARMS)
                 + "; seconds per epoch (median): " + ", ".join(f"{LABELS[a]} {common.secs(secs[a])}" for a in ARMS) + ".")
    acc = {a: arms[a]["test_acc"] for a in ARMS}
    v = common.verdict(acc["conv"], acc["maxpool"])
    lines.append("**Accuracy.** Test accuracy: " + ", ".join(f"{LABELS[a]} {common.pct_spread(acc[a])}" for a in ARMS)
                 + ". " + ({"higher": "The learned downsampling is more accurate here, in every seed.",
                           "lower": "Max pooling is more accurate here, in every seed, with no parameters.",
                           "not shown": "A difference in accuracy between max pooling and the strided convolution "
                                        "is not shown here: the seeds' ranges overlap."}[v]))
    drop = {a: arms[a]["shift_drop"] for a in ARMS}
    vd = common.verdict(drop["maxpool"], drop["conv"])
    lines.append(f"**Translation.** Shifted by {big} pixels, test accuracy falls by "
                 + ", ".join(f"{100 * drop[a]['median']:.2f} points ({LABELS[a]})" for a in ARMS) + " (medians). "
                 + ({"lower": "Max pooling tolerates the shift better than the strided convolution, in every seed.",
                     "higher": "The strided convolution tolerates the shift better than max pooling, in every seed.",
                     "not shown": "More shift tolerance from max pooling is not shown here: the seeds' ranges "
                                  "overlap."}[vd]))
    return lines


def _figure(r: dict[str, Any], out: Path) -> str:
    from cnnlab.viz.common import plt, save_figure

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    for arm in ARMS:
        shifted = r["arms"][arm]["shifted"]
        ys = [100 * shifted[str(k)]["median"] for k in r["shifts"]]
        lo = [100 * shifted[str(k)]["min"] for k in r["shifts"]]
        hi = [100 * shifted[str(k)]["max"] for k in r["shifts"]]
        axes[0].plot(r["shifts"], ys, "o-", label=LABELS[arm])
        axes[0].fill_between(r["shifts"], lo, hi, alpha=0.2)
    axes[0].set_xticks(r["shifts"])
    axes[0].set(xlabel="shift (pixels; mean of right, left, down, up)", ylabel="test accuracy (%)",
                title="accuracy on shifted test images (band: seeds' range)")
    axes[0].legend(fontsize=8)
    axes[0].grid(alpha=0.3)
    xs = list(range(len(ARMS)))
    params = [r["sizes"][a]["params"] for a in ARMS]
    axes[1].bar(xs, params, color=["C0", "C1", "C2"])
    for x, p in zip(xs, params):
        axes[1].annotate(f"{p:,}", (x, p), ha="center", va="bottom", fontsize=8)
    axes[1].set_xticks(xs, [SHORT[a] for a in ARMS], fontsize=8)
    axes[1].set(ylabel="parameters", title="parameters of the whole network")
    return save_figure(fig, out / "pooling_vs_stride.png").name


def write_report(r: dict[str, Any], out: Path) -> Path:
    """``report.json``, ``report.md`` and the figure in ``out``."""
    from cnnlab.files import atomic_write_text

    r = {**r, "findings": findings(r), "figures": [_figure(r, out)]}
    atomic_write_text(out / "report.json", json.dumps(r, indent=2))
    rec, seeds = r["recipe"], r["config"]["seeds"]
    md = [f"# Max pooling, average pooling or a strided convolution, on {r['data']['name']}", "",
          f"small_cnn with its two 2×2 max pools kept or replaced; each trained {rec['epochs']} epochs at batch "
          f"{rec['batch']} ({rec['optimizer']}, one-cycle schedule, {rec['precision']}"
          f"{', channels-last' if rec['channels_last'] else ''}) with seeds {', '.join(map(str, seeds))}. "
          f"Machine: {r['machine']}. Run folders: `runs/`; networks: `specs/`.", ""]
    md += [f"- {line}" for line in r["findings"]]
    md += ["", "| downsampling | parameters | MACs per image | predicted training peak | s per epoch | test accuracy |"
           + "".join(f" shifted {k} px |" for k in r["shifts"][1:]), "|---|---:|---:|---:|---:|---:|"
           + "---:|" * (len(r["shifts"]) - 1)]
    for arm in ARMS:
        a, s = r["arms"][arm], r["sizes"][arm]
        md.append(f"| {LABELS[arm]} | {s['params']:,} | {s['macs']:,} | {s['train_peak_bytes']:,} B | "
                  f"{common.secs(a['epoch_s']['median'])} | {common.pct_spread(a['test_acc'])} |"
                  + "".join(f" {common.pct(a['shifted'][str(k)]['median'])} |" for k in r["shifts"][1:]))
    md += ["", "Accuracies are medians over the seeds (range in brackets); a difference is claimed only where the "
               "seeds' ranges do not overlap.", "", f"![pooling vs stride]({r['figures'][0]})", ""]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(md))
    return path


def study(cfg: PoolingConfig, progress: bool = True) -> Path:
    """Run (or resume) the whole study and write its report; returns ``report.md``'s path."""
    cfg = cfg.effective()
    out = Path(cfg.out)
    with common.study_folder(out, "pooling-vs-stride", cfg.seeds):
        data, specs, runs = plan(cfg)
    common.run_all(runs, progress, desc="pooling-vs-stride")
    return write_report(measure(cfg, data, specs, runs), out)
