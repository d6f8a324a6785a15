"""The GPU's RAM is too small: five remedies and a sixth, applied and measured. ``cnnlab study remedies``.

Géron's chapter 14, exercise 3: when a CNN's training step does not fit, reduce the mini-batch size, reduce
dimensionality with a larger stride in one or more layers, remove one or more layers, use 16-bit floats instead
of 32-bit, or distribute the CNN across devices. The study takes cnnlab's small CNN at a batch whose training
step does not fit a stated budget (a share of the step's predicted peak), applies each remedy for real — the
batch ``cnnlab fit`` finds, the larger-stride and removed-layer networks that fit with the least change, bf16
autocast, two processes under torchrun (gloo, DistributedDataParallel, half the batch each) and, as the modern
sixth, activation checkpointing — and for each measures the training step's peak at the allocator beside its
prediction, then trains it with the same seeds and budget: test accuracy and training time. The report ranks the
remedies by memory saved per accuracy point lost.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from cnnlab.errors import CnnlabError
from cnnlab.study import common

ARMS = ("baseline", "smaller-batch", "larger-stride", "fewer-layers", "bf16-amp", "data-parallel", "checkpointing")
REMEDIES = ARMS[1:]
LABELS = {"baseline": "no remedy (does not fit)", "smaller-batch": "smaller batch", "larger-stride": "larger stride",
          "fewer-layers": "fewer layers", "bf16-amp": "16-bit floats (bf16-amp)",
          "data-parallel": "2 processes (DDP, gloo)", "checkpointing": "activation checkpointing"}
SHORT = {"baseline": "none", "smaller-batch": "batch", "larger-stride": "stride", "fewer-layers": "layers",
         "bf16-amp": "bf16", "data-parallel": "DDP ×2", "checkpointing": "checkpoint"}
WORLD = 2                  # processes of the data-parallel remedy


@dataclass(frozen=True)
class RemediesConfig(common.ArmsConfig):
    """What the study trains (:class:`cnnlab.study.common.ArmsConfig`'s options), the budget as a share of the
    unchanged step's predicted peak, and the training images: full, 10,000 Fashion-MNIST images (28×28); quick,
    scikit-learn's digits resized to 16×16 (at 8×8 the step is mostly weights, not activations)."""

    out: str = "study-remedies"
    budget: float = 0.6
    train_size: int | None = None
    side: int | None = None

    def effective(self) -> RemediesConfig:
        """Every default filled in (full: fashion-mnist, 10,000 images, 4 epochs; quick: digits at 16×16, 15
        epochs; batch 128 in both)."""
        from cnnlab.vocab import BUDGET_SHARES

        q = self.quick
        data = self.data or ("digits" if q else "fashion-mnist")
        lo, hi = BUDGET_SHARES
        if not lo <= self.budget <= hi:
            raise CnnlabError(f"--budget {self.budget}: give the budget as a share of the step's peak, from {lo} to "
                              f"{hi} (e.g. 0.6)")
        batch = self.batch or 128
        if batch % WORLD:
            raise CnnlabError(f"--batch {batch}: the data-parallel remedy splits the batch over {WORLD} processes; give "
                              f"a multiple of {WORLD}")
        return replace(self, data=data, epochs=self.epochs or (15 if q else 4), batch=batch,
                       train_size=self.train_size or (10_000 if data == "fashion-mnist" and not q else None),
                       side=self.side or (16 if q else None))


@dataclass
class Arm:
    """One remedy as applied: what changed, its network, batch per process, processes, precision, checkpointing,
    and the predicted peak of its training step (per process)."""

    name: str
    change: str
    spec: str                       # the network's name: ``out/specs/SPEC.yaml``
    batch: int                      # per process
    world: int = 1
    precision: str = "fp32"
    checkpointing: bool = False
    predicted: int = 0
    details: dict[str, Any] = field(default_factory=dict)
    doc: dict[str, Any] = field(default_factory=dict, repr=False)    # the network's spec document

    def comment(self) -> str:
        return "written by cnnlab study remedies: small_cnn" + ("" if self.spec == "baseline" else f", {self.change}")

    def text(self) -> str:
        """The spec file's text, as written and as a run's config.json keeps it."""
        return common.spec_text(self.doc, self.comment())


def _base_doc(shape: tuple[int, int, int], classes: int) -> dict[str, Any]:
    """small_cnn for these images and classes (its classifier as ``cnnlab train`` adapts it)."""
    import yaml

    from cnnlab.packaged import PACKAGED_SPECS

    layers = yaml.safe_load(PACKAGED_SPECS["small_cnn"].read_text())["layers"]
    last = layers[-1]["dense"]
    return {"name": "small_cnn", "input": list(shape), "layers": layers[:-1] + [{"dense": {**last, "units": classes}}]}


def variant_doc(doc: dict[str, Any], cand: Any) -> dict[str, Any]:
    """The spec document of a :class:`cnnlab.memory.remedies.Candidate`: its layer restrided or its layers removed,
    checked to parse to the candidate's own network."""
    from cnnlab.spec.network import parse_spec

    layers = copy.deepcopy(doc["layers"])
    if cand.kind == "larger stride":
        (i,) = cand.changed
        entry = layers[i] if isinstance(layers[i], dict) else {layers[i]: {}}
        (kind, params), = entry.items()
        sh, sw = cand.spec.layers[i].stride
        layers[i] = {kind: {**(params or {}), "stride": sh if sh == sw else [sh, sw]}}
    else:
        layers = [layer for k, layer in enumerate(layers) if k not in cand.changed]
    new = {**doc, "name": f"{doc['name']}_{cand.kind.replace(' ', '_')}", "layers": layers}
    if parse_spec(new).layers != cand.spec.layers:       # pragma: no cover - a candidate's layers changed by fit
        raise CnnlabError(f"remedies: could not write '{cand.change}' as a spec")
    return new


def _predict(doc: dict[str, Any], shape: tuple[int, int, int], batch: int, **step: Any) -> int:
    """The predicted training-step peak of a spec document's network at ``batch`` (``step``: the step's settings)."""
    from cnnlab.spec.network import parse_spec

    return _predict_spec(parse_spec(doc), shape, batch, **step)


def build_net(spec_path: str, shape: tuple[int, int, int], classes: int) -> Any:
    """The network of a spec file as ``cnnlab train`` builds it (module-level: the data-parallel measurement's
    processes build it from this)."""
    from cnnlab.train.model import build_model

    return build_model(spec_path, shape, classes)[0]


def plan_arms(cfg: RemediesConfig, shape: tuple[int, int, int], classes: int) -> tuple[dict[str, Arm], dict[str, Any]]:
    """(every arm, the budget and ``cnnlab fit``'s answer): each remedy made from the prediction, as ``fit`` makes
    it. Nothing is written: each arm carries its network's spec text (:meth:`Arm.text`)."""
    from cnnlab.memory.fit import fit, headroom
    from cnnlab.memory.remedies import architecture_candidates, gentlest_fitting, pair_candidates
    from cnnlab.spec import build
    from cnnlab.spec.network import parse_spec

    batch, doc = int(cfg.batch), _base_doc(shape, classes)  # type: ignore[arg-type]
    base_peak = _predict(doc, shape, batch)
    budget = int(base_peak * cfg.budget)
    usable = budget - headroom(budget)
    spec = parse_spec(doc)
    report = fit(build(spec, device="meta"), shape, budget, batch, optimizer="adam", spec=spec, devices=(WORLD,),
                 name="small_cnn")
    if report.max_batch == 0:
        raise CnnlabError(f"--budget {cfg.budget}: {budget:,} B is too small for even one image per step (the "
                          "weights, their gradients and Adam's two moments alone need more); give a larger --budget")
    base = Arm("baseline", f"small_cnn at batch {batch}", "baseline", batch, doc=doc, predicted=base_peak)
    arms = {"baseline": base,
            "smaller-batch": replace(base, name="smaller-batch", batch=report.max_batch, predicted=0,
                                     change=f"batch {report.max_batch} instead of {batch} (the largest that fits)")}
    found = architecture_candidates(spec, lambda s: _predict_spec(s, shape, batch))
    for arm, kind in (("larger-stride", "larger stride"), ("fewer-layers", "remove layer")):
        pick = gentlest_fitting([c for c in found if c.kind == kind], usable)
        if arm == "fewer-layers" and (pick is None or pick.peak_bytes > usable):
            pick = gentlest_fitting(pair_candidates(spec, lambda s: _predict_spec(s, shape, batch)), usable) or pick
        if pick is None:
            raise CnnlabError(f"remedies: small_cnn at {shape} has no valid '{arm}' variant")
        change = (f"{pick.layer}: {pick.change}" if kind == "larger stride" else pick.change) + \
            ("" if pick.peak_bytes <= usable else " (none fits the budget: the one that saves the most)")
        arms[arm] = Arm(arm, change, arm, batch, doc=variant_doc(doc, pick),
                        details={"params": pick.params, "params_before": spec.total_params()})
    arms["bf16-amp"] = replace(base, name="bf16-amp", change="autocast to bfloat16, float32 weights", predicted=0,
                               precision="bf16-amp")
    arms["data-parallel"] = replace(base, name="data-parallel", batch=batch // WORLD, world=WORLD, predicted=0,
                                    change=f"{WORLD} processes (torchrun, gloo), batch {batch // WORLD} each")
    arms["checkpointing"] = replace(base, name="checkpointing", checkpointing=True, predicted=0,
                                    change="checkpoint √n segments of layers (recomputed in backward)")
    for arm in arms.values():
        if not arm.predicted:
            arm.predicted = _predict(arm.doc, shape, arm.batch, precision=arm.precision,
                                     checkpointing=arm.checkpointing)
    buckets = next(r.details["ddp_bucket_bytes"] for r in report.remedies if r.name == f"data parallel ×{WORLD}")
    arms["data-parallel"].predicted += buckets
    arms["data-parallel"].details = {"ddp_bucket_bytes": buckets}
    return arms, {"budget_bytes": budget, "usable_bytes": usable, "share": cfg.budget,
                  "fit": {"try_first": report.try_first, "max_batch": report.max_batch,
                          "fits": [r.name for r in report.remedies if r.fits]}}


def _predict_spec(spec: Any, shape: tuple[int, int, int], batch: int, **step: Any) -> int:
    """The predicted training-step peak of a spec's network at ``batch`` with Adam (``step``: other settings)."""
    from cnnlab.memory import estimate_memory
    from cnnlab.spec import build

    return estimate_memory(build(spec, device="meta"), shape, batch, optimizer="adam", include_inference=False,
                           **step).training.peak_bytes


def plan(cfg: RemediesConfig) -> tuple[Any, dict[str, Arm], dict[str, Any], dict[str, Any]]:
    """(data, the arms, the budget record, every run of the study). A folder whose runs trained other networks or
    settings is refused before anything is written; then the networks are written to ``out/specs/``."""
    from cnnlab.data import load_data
    from cnnlab.train.config import TrainConfig

    size = (cfg.side, cfg.side) if cfg.side else None
    data = load_data(cfg.data, cfg.data_dir, seed=cfg.seeds[0], size=size)  # type: ignore[arg-type]
    shape = tuple(data.shape)
    out = Path(cfg.out)
    arms, budget = plan_arms(cfg, shape, len(data.classes))  # type: ignore[arg-type]
    base = TrainConfig(data=cfg.data, data_dir=cfg.data_dir, epochs=cfg.epochs, batch=cfg.batch,  # type: ignore[arg-type]
                       precision="fp32", size=size, train_size=cfg.train_size)
    overrides = {name: {"model": str(out / "specs" / f"{arm.spec}.yaml"), "batch": arm.batch * arm.world,
                        "precision": arm.precision, "checkpointing": arm.checkpointing}
                 for name, arm in arms.items()}
    runs = common.seed_runs(base, overrides, cfg.seeds, out)
    for key, tc in runs.items():              # the network each finished or stopped run trained is the planned one
        saved = Path(tc.out) / "config.json"
        arm = arms[key.rsplit("-s", 1)[0]]
        if saved.is_file() and json.loads(saved.read_text())["model"].get("spec_text") != arm.text():
            raise CnnlabError(f"{tc.out}: trained another network than this study now plans ({arm.change}); the "
                              "remedies were planned on another machine or version: give the study another --out")
    common.check_existing(runs)
    for arm in arms.values():
        common.write_spec(out / "specs" / f"{arm.spec}.yaml", arm.doc, arm.comment())
    return data, arms, budget, runs


def torchrun_argv(tc: Any, world: int, resume: Path | None) -> list[str]:
    """``python -m torch.distributed.run --standalone --nproc-per-node WORLD -m cnnlab train ...`` for a run's
    settings (the study checks the run folder's config against them afterwards)."""
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={world}",
            "-m", "cnnlab", "train"]
    if resume is not None:
        return argv + ["--resume", str(resume), "--no-progress"]
    argv += ["--model", tc.model, "--data", tc.data, "--epochs", str(tc.epochs), "--batch", str(tc.batch),
             "--seed", str(tc.seed), "--optimizer", tc.optimizer, "--precision", tc.precision, "--augment", tc.augment,
             "--weight-decay", repr(tc.weight_decay), "--recipe", tc.recipe, "--out", tc.out, "--no-progress",
             "--label-smoothing", repr(tc.label_smoothing), "--tta", tc.tta, "--val-fraction", repr(tc.val_fraction)]
    for flag, value in (("--data-dir", tc.data_dir), ("--train-size", tc.train_size), ("--lr", tc.lr)):
        if value is not None:
            argv += [flag, str(value)]
    if tc.size:
        argv += ["--size", f"{tc.size[0]},{tc.size[1]}"]
    return argv + (["--channels-last"] if tc.channels_last else []) + (["--checkpointing"] if tc.checkpointing else [])


def _train(progress: bool, key: str, tc: Any, resume: Path | None) -> None:
    """A run of the study: the data-parallel arm's under torchrun, the others' in this process."""
    from cnnlab.train.engine import Trainer

    if not key.startswith("data-parallel"):
        Trainer(tc, resume=resume, progress=progress, quiet=True).run()
        return
    # torchrun leaves an empty torchelastic_* log folder in the temporary folder at each start: it gets its own,
    # removed afterwards
    with tempfile.TemporaryDirectory(prefix="cnnlab-torchrun-", ignore_cleanup_errors=True) as tmp:
        done = subprocess.run(torchrun_argv(tc, WORLD, resume), capture_output=True, text=True,
                              env={**os.environ, "TMPDIR": tmp})
    if done.returncode != 0 or not (Path(tc.out) / "test.json").is_file():
        raise CnnlabError(f"{tc.out}: the data-parallel run under torchrun failed: {_failure(done.stderr)}")
    common.check_same(Path(tc.out), tc)
    ran = json.loads((Path(tc.out) / "config.json").read_text()).get("processes")
    if ran != WORLD:              # pragma: no cover - torchrun started another number of processes
        raise CnnlabError(f"{tc.out}: ran in {ran} processes, not {WORLD}")


def _failure(stderr: str) -> str:
    """The line that says why a run under torchrun failed: cnnlab's own error line, else the last line that is not
    torchrun's frame of ``=`` signs."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip() and set(line.strip()) != {"="}]
    errors = [line for line in lines if ": error:" in line or line.startswith(("Error", "RuntimeError"))]
    return (errors or lines or ["no output"])[-1]


def measure_arms(arms: dict[str, Arm], shape: tuple[int, int, int], classes: int, specs: Path) -> dict[str, int]:
    """Each arm's training-step peak (per process), measured at the allocator on a real step of its network
    (``specs/NAME.yaml``)."""
    from cnnlab.memory.checkpointing import checkpoint_segments
    from cnnlab.memory.measure import measure_data_parallel, measure_memory
    from cnnlab.memory.step import StepConfig

    out = {}
    for name, arm in arms.items():
        cfg = StepConfig("adam", arm.precision, arm.checkpointing)
        if arm.world > 1:
            factory = functools.partial(build_net, str(specs / f"{arm.spec}.yaml"), shape, classes)
            out[name] = max(measure_data_parallel(factory, shape, arm.batch, cfg, world=arm.world))
            continue
        net = build_net(str(specs / f"{arm.spec}.yaml"), shape, classes)
        if arm.checkpointing:
            checkpoint_segments(net)
        out[name] = measure_memory(net, shape, arm.batch, cfg)[0]
    return out


MEASURED_WITH = ("spec", "batch", "world", "precision", "checkpointing", "predicted")   # what a peak depends on


def measured_before(out: Path, arms: dict[str, Arm]) -> dict[str, int] | None:
    """The peaks the study's last report measured, if it ran on this machine (CPU, threads, torch) with these very
    arms (network, batch, processes, precision, checkpointing, predicted peak): a rerun of a finished study writes
    its report again without measuring the seven steps again (an allocator's peak repeats on one machine)."""
    try:
        doc = json.loads((out / "report.json").read_text())
        old = doc["arms"]
        if doc["machine"] != common.machine_line() or set(old) != set(arms) or any(
                old[name][k] != getattr(arm, k) for name, arm in arms.items() for k in MEASURED_WITH):
            return None
        return {name: int(old[name]["measured"]) for name in arms}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def measure(cfg: RemediesConfig, data: Any, arms: dict[str, Arm], budget: dict[str, Any],
            runs: dict[str, Any]) -> dict[str, Any]:
    """Every number of the report: the arms' peaks (predicted and measured) and their runs' results."""
    shape, classes = tuple(data.shape), len(data.classes)
    measured = measured_before(Path(cfg.out), arms) or measure_arms(arms, shape, classes,  # type: ignore[arg-type]
                                                                    Path(cfg.out) / "specs")
    results = common.arm_results(runs, ARMS, cfg.seeds)
    out: dict[str, Any] = {}
    for name, arm in arms.items():
        out[name] = {**{k: v for k, v in asdict(arm).items() if k != "doc"}, **results[name], "measured": measured[name],
                     "fits": measured[name] <= budget["budget_bytes"],
                     "prediction_error": (arm.predicted - measured[name]) / measured[name]}
    first = runs[f"baseline-s{cfg.seeds[0]}"]
    return {"study": "remedies", "config": asdict(cfg), "machine": common.machine_line(),
            "data": {"name": cfg.data, "shape": list(shape), "classes": classes, "train_images": len(data.train),
                     "train_size": cfg.train_size},
            "recipe": {"optimizer": first.optimizer, "epochs": cfg.epochs, "batch": cfg.batch},
            "budget": budget, "arms": out, "ranking": rank(out)}


def rank(arms: dict[str, Any]) -> list[dict[str, Any]]:
    """The remedies best first: those whose measured peak fits the budget before those that do not; then those that
    lose no accuracy — a loss counts only where every seed is below every seed of the unchanged network — by memory
    saved; then by memory saved per point of median accuracy lost."""
    base = arms["baseline"]
    rows = []
    for name in REMEDIES:
        a = arms[name]
        saved = base["measured"] - a["measured"]
        lost = 100 * (base["test_acc"]["median"] - a["test_acc"]["median"])
        shown = common.verdict(a["test_acc"], base["test_acc"]) == "lower"
        rows.append({"arm": name, "fits": a["fits"], "saved_bytes": saved, "lost_points": lost, "loss_shown": shown,
                     "mb_per_point": saved / 1e6 / lost if shown else None})
    rows.sort(key=lambda r: (not r["fits"], r["loss_shown"],
                             -(r["mb_per_point"] if r["loss_shown"] else r["saved_bytes"])))
    return rows


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def findings(r: dict[str, Any]) -> list[str]:
    """The chapter's claim and what the measurements add to it, each stated from the numbers."""
    arms, b = r["arms"], r["budget"]
    base = arms["baseline"]
    lines = [f"**The problem.** small_cnn's training step at batch {r['config']['batch']} (Adam, float32) peaks at "
             f"{base['measured']:,} B ({_mb(base['measured'])}) measured, {base['predicted']:,} B predicted; the "
             f"budget is {100 * b['share']:.0f} % of the prediction, {b['budget_bytes']:,} B ({_mb(b['budget_bytes'])})."]
    fitting = [a for a in REMEDIES if arms[a]["fits"]]
    missing = [a for a in REMEDIES if not arms[a]["fits"]]

    def shares(names: list[str]) -> str:
        return ", ".join(f"{LABELS[a]} ({100 * arms[a]['measured'] / base['measured']:.0f} %)" for a in names)
    lines.append("**What fits.** Measured on a real step, as a share of the unchanged step's peak: "
                 + (f"{shares(fitting)} fit{'s' if len(fitting) == 1 else ''} the budget" if fitting
                    else "no remedy fits the budget alone")
                 + (f"; {shares(missing)} do{'es' if len(missing) == 1 else ''} not" if missing else "") + ".")
    acc = []
    for a in REMEDIES:
        v = common.verdict(arms[a]["test_acc"], base["test_acc"])
        acc.append(f"{LABELS[a]} {common.pct_spread(arms[a]['test_acc'])}"
                   + {"lower": " (lower, every seed)", "higher": " (higher, every seed)", "not shown": ""}[v])
    lines.append(f"**Accuracy** after the same training (no remedy: {common.pct_spread(base['test_acc'])}): "
                 + "; ".join(acc) + ". A loss is claimed only where every seed is below every seed of the "
                 "unchanged network.")
    t0 = base["train_s"]["median"]
    lines.append("**Time** to train, against the unchanged step's " + common.secs(t0) + " s: " + ", ".join(
        f"{LABELS[a]} {arms[a]['train_s']['median'] / t0:.2f}×" for a in REMEDIES) + ".")
    best = r["ranking"][0]
    order = " > ".join(LABELS[row["arm"]] for row in r["ranking"])
    verdict = (f"Best here: {LABELS[best['arm']]}, saving {_mb(best['saved_bytes'])}"
               + (f" for {best['lost_points']:.2f} points of accuracy (median)" if best["loss_shown"]
                  else " with no accuracy loss shown") if best["fits"]
               else "No remedy fits alone: combine them (e.g. 16-bit floats and a smaller batch)")
    lines.append(f"**Ranking** (those that fit the budget first; then those with no accuracy loss shown, by memory "
                 f"saved; then by memory saved per point of median accuracy lost): {order}. {verdict}. `cnnlab fit` "
                 f"would try {r['budget']['fit']['try_first'] or 'nothing'} first.")
    worst = max(REMEDIES + ("baseline",), key=lambda a: abs(arms[a]["prediction_error"]))
    lines.append(f"**Prediction.** `cnnlab memory`/`fit`'s predictions are within "
                 f"{100 * abs(arms[worst]['prediction_error']):.1f} % of the measured peaks (largest gap: "
                 f"{LABELS[worst]}, {100 * arms[worst]['prediction_error']:+.1f} %).")
    return lines


def _figure(r: dict[str, Any], out: Path) -> str:
    from cnnlab.viz.common import plt, save_figure

    arms, budget = r["arms"], r["budget"]["budget_bytes"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
    xs = list(range(len(ARMS)))
    axes[0].bar(xs, [arms[a]["measured"] / 1e6 for a in ARMS], color=["C3" if not arms[a]["fits"] else "C2"
                                                                         for a in ARMS], label="measured")
    axes[0].plot(xs, [arms[a]["predicted"] / 1e6 for a in ARMS], "k_", markersize=18, label="predicted")
    axes[0].axhline(budget / 1e6, color="k", linestyle="--", linewidth=1, label="budget")
    axes[0].set_xticks(xs, [SHORT[a] for a in ARMS], fontsize=8)
    axes[0].set(ylabel="training-step peak per process (MB)", title="memory of one training step")
    axes[0].legend(fontsize=8)
    for a in ARMS:
        acc = arms[a]["test_acc"]
        axes[1].errorbar(arms[a]["measured"] / 1e6, 100 * acc["median"],
                         yerr=[[100 * (acc["median"] - acc["min"])], [100 * (acc["max"] - acc["median"])]],
                         fmt="o", capsize=3, label=SHORT[a])
        axes[1].annotate(SHORT[a], (arms[a]["measured"] / 1e6, 100 * acc["median"]), fontsize=8,
                         xytext=(4, 4), textcoords="offset points")
    axes[1].axvline(budget / 1e6, color="k", linestyle="--", linewidth=1)
    axes[1].set(xlabel="measured peak (MB)", ylabel="test accuracy (%)",
                title="accuracy against memory (bars: seeds' range)")
    axes[1].grid(alpha=0.3)
    return save_figure(fig, out / "remedies.png").name


def write_report(r: dict[str, Any], out: Path) -> Path:
    """``report.json``, ``report.md`` and the figure in ``out``."""
    from cnnlab.files import atomic_write_text

    r = {**r, "findings": findings(r), "figures": [_figure(r, out)]}
    atomic_write_text(out / "report.json", json.dumps(r, indent=2))
    rec, seeds, d = r["recipe"], r["config"]["seeds"], r["data"]
    images = f"{d['train_size']:,} training images" if d["train_size"] else f"{d['train_images']:,} training images"
    md = [f"# When training does not fit: the remedies, applied and measured, on {d['name']}", "",
          f"small_cnn on {'×'.join(map(str, d['shape']))} images ({images}), each arm trained {rec['epochs']} epochs "
          f"({rec['optimizer']}, one-cycle schedule) with seeds {', '.join(map(str, seeds))}. Peaks are per process, "
          f"measured at the allocator on a real training step (the data-parallel arm's in two gloo processes) and "
          f"predicted by `cnnlab memory`. Machine: {r['machine']}. Run folders: `runs/`; networks: `specs/`.", ""]
    md += [f"- {line}" for line in r["findings"]]
    md += ["", "| remedy | change | predicted peak | measured peak | fits | test accuracy | train s |",
           "|---|---|---:|---:|:---:|---:|---:|"]
    for name in ARMS:
        a = r["arms"][name]
        md.append(f"| {LABELS[name]} | {a['change']} | {a['predicted']:,} B | {a['measured']:,} B | "
                  f"{'yes' if a['fits'] else 'no'} | {common.pct_spread(a['test_acc'])} | "
                  f"{common.secs(a['train_s']['median'])} |")
    md += ["", "| rank | remedy | memory saved | accuracy lost (median) | in every seed? | MB saved per point lost |",
           "|---:|---|---:|---:|:---:|---:|"]
    for i, row in enumerate(r["ranking"], 1):
        per = f"{row['mb_per_point']:.1f}" if row["mb_per_point"] is not None else "— (no loss shown)"
        md.append(f"| {i} | {LABELS[row['arm']]}{'' if row['fits'] else ' (does not fit)'} | "
                  f"{row['saved_bytes']:,} B | {row['lost_points']:.2f} points | "
                  f"{'yes' if row['loss_shown'] else 'no'} | {per} |")
    md += ["", "Accuracies are medians over the seeds (range in brackets). MB = 10^6 bytes.", "",
           f"![remedies]({r['figures'][0]})", ""]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(md))
    return path


def _check_settings(cfg: RemediesConfig, write: bool) -> None:
    """The study's own settings (the budget picks its networks and batch) refused when they differ from the folder's
    record; recorded (``write``) once the study was planned. Seeds may be added, as in every study."""
    from cnnlab.files import atomic_write_text

    path = Path(cfg.out) / "settings.json"
    mine = {k: v for k, v in json.loads(json.dumps(asdict(cfg))).items() if k not in ("out", "data_dir", "seeds")}
    if path.is_file():
        saved = json.loads(path.read_text())
        diff = [k for k in mine if saved.get(k) != mine[k]]
        if diff:
            raise CnnlabError(f"{cfg.out}: made with other settings ({', '.join(f'{k} {saved.get(k)}' for k in diff)}); "
                              "give the study another --out or the same options")
        return
    if write:
        atomic_write_text(path, json.dumps(mine, indent=2))


def study(cfg: RemediesConfig, progress: bool = True) -> Path:
    """Run (or resume) the whole study and write its report; returns ``report.md``'s path."""
    cfg = cfg.effective()
    out = Path(cfg.out)
    with common.study_folder(out, "remedies", cfg.seeds):
        _check_settings(cfg, write=False)
        data, arms, budget, runs = plan(cfg)
        _check_settings(cfg, write=True)
    common.run_all(runs, progress, desc="remedies", train=functools.partial(_train, progress))
    return write_report(measure(cfg, data, arms, budget, runs), out)
