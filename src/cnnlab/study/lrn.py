"""Does local response normalization make feature maps specialise? ``cnnlab study lrn``.

Géron's chapter 14, exercise 5: with LRN "the most strongly activated neurons inhibit other neurons located at
the same position in neighbouring feature maps", which "encourages different feature maps to specialise" and
improved AlexNet's accuracy (Krizhevsky et al. 2012, §3.3: −1.4 points top-1 error on ImageNet). The study trains
one AlexNet-style small network three ways — no normalisation (``none``), LRN with the paper's constants after
each of the two ReLUs (``lrn``: k = 2, n = 5, α = 10⁻⁴, β = 0.75), batch normalisation before each ReLU
(``batchnorm``, what replaced LRN) — with the same recipe and seeds, and measures accuracy, time and the claim
itself: how correlated the first layer's feature maps are over the test images (the mean absolute Pearson
correlation between maps, over all pairs and over neighbouring pairs, which LRN couples).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cnnlab.study import common

ARMS = ("none", "lrn", "batchnorm")
LABELS = {"none": "no normalisation", "lrn": "LRN (AlexNet's constants)", "batchnorm": "batch normalisation"}
MAX_IMAGES = 2000          # test images whose first-layer maps are correlated


@dataclass(frozen=True)
class LrnConfig(common.ArmsConfig):
    """What the study trains (:class:`cnnlab.study.common.ArmsConfig`'s options)."""

    out: str = "study-lrn"


def _block(arm: str, filters: int, kernel: int) -> list[Any]:
    conv = {"conv": {"filters": filters, "kernel": kernel, "padding": "same", "bias": arm != "batchnorm"}}
    norm = {"none": [], "lrn": ["lrn"], "batchnorm": []}[arm]
    pre = ["batchnorm"] if arm == "batchnorm" else []
    return [conv, *pre, {"activation": "relu"}, *norm, {"maxpool": {"size": 3, "stride": 2, "padding": "same"}}]


def write_specs(folder: Path, shape: tuple[int, int, int], classes: int) -> dict[str, str]:
    """The three networks: AlexNet's first two stages in small (5×5 then 3×3 convolutions, overlapping 3×3/2 max
    pools), a dense head with dropout, and the arm's normalisation."""
    out = {}
    for arm in ARMS:
        layers = [*_block(arm, 32, 5), *_block(arm, 64, 3), "flatten",
                  {"dense": {"units": 128, "activation": "relu"}}, {"dropout": 0.5}, {"dense": {"units": classes}}]
        doc = {"name": f"alexnet_small_{arm}", "input": list(shape), "layers": layers}
        out[arm] = common.write_spec(folder / f"{arm}.yaml", doc,
                                     f"written by cnnlab study lrn: an AlexNet-style small network, {LABELS[arm]}")
    return out


def plan(cfg: LrnConfig) -> tuple[Any, dict[str, str], dict[str, Any]]:
    """(data, the arms' spec files, every run of the study)."""
    return common.plan_spec_arms(cfg, ARMS,
                                 lambda folder, data: write_specs(folder, data.shape, len(data.classes)))


def map_correlation(maps: Any) -> dict[str, float]:
    """Mean absolute Pearson correlation between feature maps (N, C, H, W), each map's values over all images and
    positions: over every pair of maps and over neighbouring maps (c, c + 1); maps that never vary (dead) are
    left out and counted."""
    import torch

    x = maps.double().transpose(0, 1).reshape(maps.shape[1], -1)
    alive = x.std(dim=1) > 0
    c = int(alive.sum())
    if c < 2:                                    # no pair of living maps to correlate
        return {"all_pairs": 0.0, "neighbours": 0.0, "dead_maps": int((~alive).sum()), "maps": int(maps.shape[1])}
    corr = torch.corrcoef(x[alive]).abs()
    off = corr[~torch.eye(c, dtype=torch.bool)]
    idx = torch.nonzero(alive).flatten()
    neighbours = [float(corr[i, i + 1]) for i in range(c - 1) if int(idx[i + 1]) == int(idx[i]) + 1]
    return {"all_pairs": float(off.mean()),
            "neighbours": sum(neighbours) / len(neighbours) if neighbours else 0.0,
            "dead_maps": int((~alive).sum()), "maps": int(maps.shape[1])}


def lrn_strength(relu_maps: Any) -> float:
    """How much LRN's neighbours inhibit, on these (post-ReLU) maps: the median over positions and maps of
    α·Σ a² / k, the share by which the neighbours' squared activity grows the base of the divisor (k + α·Σ a²)^β
    (AlexNet's constants). Near 0, LRN divides every activation by the same k^β and inhibits nothing."""
    import torch.nn.functional as F

    from cnnlab.vocab import LRN_PAPER

    n, k, alpha = LRN_PAPER["n"], LRN_PAPER["k"], LRN_PAPER["alpha"]
    sq = relu_maps.double().pow(2)[:, None]                             # (N, 1, C, H, W)
    window = F.avg_pool3d(F.pad(sq, (0, 0, 0, 0, n // 2, (n - 1) // 2)), (n, 1, 1), stride=1)[:, 0] * n
    return float((alpha * window / k).median())


def first_layer_maps(folder: Path, images: Any) -> dict[str, Any]:
    """The first stage's feature maps of a run's best weights on ``images``: after its ReLU, and after its LRN
    where it has one (the maps the next layer sees)."""
    import torch

    from cnnlab.train.runs import open_run
    from cnnlab.train.tasks.classification import normalise

    run = open_run(folder, "classification")
    model = run.model.eval()
    blocks = list(model.blocks)
    relu = next(i for i, b in enumerate(blocks) if isinstance(b, torch.nn.ReLU))
    seen: dict[str, Any] = {}
    hooks = [blocks[relu].register_forward_hook(lambda m, i, o: seen.__setitem__("relu", o.detach().clone()))]
    if isinstance(blocks[relu + 1], torch.nn.LocalResponseNorm):
        hooks.append(blocks[relu + 1].register_forward_hook(lambda m, i, o: seen.__setitem__("lrn", o.detach())))
    with torch.no_grad():
        model(normalise(images, run.mean, run.std))
    for h in hooks:
        h.remove()
    return seen


def measure(cfg: LrnConfig, data: Any, specs: dict[str, str], runs: dict[str, Any]) -> dict[str, Any]:
    """Every number of the report, from the finished runs."""
    arms = common.arm_results(runs, ARMS, cfg.seeds)
    images = {s: common.test_split(cfg.data, cfg.data_dir, s).images[:MAX_IMAGES] for s in cfg.seeds}
    for arm in ARMS:
        per_seed = [first_layer_maps(Path(runs[f"{arm}-s{s}"].out), images[s]) for s in cfg.seeds]
        for where in per_seed[0]:
            corr = [map_correlation(maps[where]) for maps in per_seed]
            arms[arm][f"corr_{where}"] = {k: common.spread(c[k] for c in corr) for k in ("all_pairs", "neighbours")}
            arms[arm][f"dead_{where}"] = [c["dead_maps"] for c in corr]
        if arm == "lrn":
            arms[arm]["lrn_strength"] = common.spread(lrn_strength(maps["relu"]) for maps in per_seed)
    first = runs[f"{ARMS[0]}-s{cfg.seeds[0]}"]
    return {"study": "lrn", "config": asdict(cfg), "machine": common.machine_line(),
            "data": {"name": cfg.data, "shape": list(data.shape), "classes": len(data.classes),
                     "train_images": len(data.train), "correlated_images": len(images[cfg.seeds[0]])},
            "recipe": {"optimizer": first.optimizer, "precision": first.precision,
                       "channels_last": first.channels_last, "epochs": cfg.epochs, "batch": cfg.batch},
            "specs": specs, "arms": arms}


def findings(r: dict[str, Any]) -> list[str]:
    """The chapter's claims, each stated from the measured numbers."""
    arms = r["arms"]
    after = {a: arms[a]["corr_lrn" if a == "lrn" else "corr_relu"]["all_pairs"] for a in ARMS}
    nb = {a: arms[a]["corr_lrn" if a == "lrn" else "corr_relu"]["neighbours"] for a in ARMS}
    v = common.verdict(after["lrn"], after["none"])
    lines = [f"**Specialisation.** Mean absolute correlation between the first layer's feature maps over "
             f"{r['data']['correlated_images']:,} test images: {after['none']['median']:.3f} without normalisation, "
             f"{after['lrn']['median']:.3f} after LRN (its own ReLU output: "
             f"{arms['lrn']['corr_relu']['all_pairs']['median']:.3f}), {after['batchnorm']['median']:.3f} with batch "
             f"normalisation; between neighbouring maps, which LRN couples: {nb['none']['median']:.3f}, "
             f"{nb['lrn']['median']:.3f}, {nb['batchnorm']['median']:.3f}. "
             + {"lower": "The LRN network's maps are less correlated in every seed: the claim holds here.",
                "higher": "The LRN network's maps are *more* correlated in every seed: the claim does not hold here.",
                "not shown": "Less correlated maps with LRN are not shown here: the seeds' ranges overlap."}[v]
             + f" With AlexNet's constants the neighbours grow the divisor's base by α·Σa²/k = "
               f"{arms['lrn']['lrn_strength']['median']:.2g} (median over positions): "
             + ("LRN here is close to a constant division by k^β, not an inhibition."
                if arms["lrn"]["lrn_strength"]["median"] < 0.05 else "a real inhibition.")]
    acc = {a: arms[a]["test_acc"] for a in ARMS}
    va = common.verdict(acc["lrn"], acc["none"])
    vb = common.verdict(acc["batchnorm"], acc["lrn"])
    lines.append("**Accuracy.** Test accuracy: " + ", ".join(f"{LABELS[a]} {common.pct_spread(acc[a])}" for a in ARMS)
                 + ". " + {"higher": "LRN is more accurate than no normalisation in every seed. ",
                           "lower": "LRN is *less* accurate than no normalisation in every seed. ",
                           "not shown": "An accuracy gain from LRN is not shown here (the seeds' ranges overlap). "}[va]
                 + {"higher": "Batch normalisation beats LRN in every seed.",
                    "lower": "LRN beats batch normalisation in every seed.",
                    "not shown": "Batch normalisation vs LRN: not shown here."}[vb])
    secs = {a: arms[a]["epoch_s"]["median"] for a in ARMS}
    lines.append("**Cost.** Seconds per epoch (median): " + ", ".join(f"{LABELS[a]} {common.secs(secs[a])}" for a in ARMS)
                 + ". LRN has no parameters; batch normalisation adds a scale and a shift per map.")
    return lines


def _figure(r: dict[str, Any], out: Path) -> str:
    from cnnlab.viz.common import plt, save_figure

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    xs = list(range(len(ARMS)))
    for ax, key, title in ((axes[0], "all_pairs", "all pairs of maps"), (axes[1], "neighbours", "neighbouring maps")):
        for x, arm in enumerate(ARMS):
            s = r["arms"][arm]["corr_lrn" if arm == "lrn" else "corr_relu"][key]
            ax.bar(x, s["median"], color=f"C{x}")
            ax.plot([x] * len(s["values"]), s["values"], "k.", ms=5)
        ax.set_xticks(xs, ["none", "LRN", "batch norm"], fontsize=8)
        ax.set(ylabel="mean |correlation|", title=f"first-layer maps: {title} (dots: seeds)")
    return save_figure(fig, out / "lrn_correlation.png").name


def write_report(r: dict[str, Any], out: Path) -> Path:
    """``report.json``, ``report.md`` and the figure in ``out``."""
    from cnnlab.files import atomic_write_text

    r = {**r, "findings": findings(r), "figures": [_figure(r, out)]}
    atomic_write_text(out / "report.json", json.dumps(r, indent=2))
    rec = r["recipe"]
    md = [f"# Local response normalization on {r['data']['name']}", "",
          f"An AlexNet-style small network (5×5 and 3×3 convolutions, overlapping 3×3/2 max pools, dense head) with no "
          f"normalisation, LRN after each ReLU, or batch norm before it; each trained {rec['epochs']} epochs at batch "
          f"{rec['batch']} ({rec['optimizer']}, one-cycle schedule, {rec['precision']}"
          f"{', channels-last' if rec['channels_last'] else ''}) with seeds "
          f"{', '.join(map(str, r['config']['seeds']))}. Machine: {r['machine']}. Run folders: `runs/`.", ""]
    md += [f"- {line}" for line in r["findings"]]
    md += ["", "| normalisation | test accuracy | s per epoch | map correlation, all pairs | neighbouring maps |",
           "|---|---:|---:|---:|---:|"]
    for arm in ARMS:
        a = r["arms"][arm]
        c = a["corr_lrn" if arm == "lrn" else "corr_relu"]
        md.append(f"| {LABELS[arm]} | {common.pct_spread(a['test_acc'])} | {common.secs(a['epoch_s']['median'])} | "
                  f"{c['all_pairs']['median']:.3f} ({c['all_pairs']['min']:.3f}–{c['all_pairs']['max']:.3f}) | "
                  f"{c['neighbours']['median']:.3f} |")
    md += ["", "Medians over the seeds (range in brackets); a difference is claimed only where the seeds' ranges do "
               "not overlap.", "", f"![map correlation]({r['figures'][0]})", ""]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(md))
    return path


def study(cfg: LrnConfig, progress: bool = True) -> Path:
    """Run (or resume) the whole study and write its report; returns ``report.md``'s path."""
    cfg = cfg.effective()
    out = Path(cfg.out)
    with common.study_folder(out, "lrn", cfg.seeds):
        data, specs, runs = plan(cfg)
    common.run_all(runs, progress, desc="lrn")
    return write_report(measure(cfg, data, specs, runs), out)
