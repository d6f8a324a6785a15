"""Why a CNN beats a dense network on images, measured: ``cnnlab study cnn-vs-dense``.

Géron's chapter 14, exercise 1, answers: far fewer parameters (local
connections, shared weights), a feature learned at one place is recognised
anywhere (translation), and the architecture encodes how pixels are organised,
so a dense network needs more data. Each claim becomes a measurement:

1. **parameters** and MACs of each network, and how they grow with the input
   size (×1, ×2, ×4, ×8 of the data's side);
2. **accuracy and training time** on the full training set;
3. **data efficiency**: test accuracy at 1/64, 1/16, 1/4 and all of the
   training images (at least one batch), each run given as many steps as the
   full run (more epochs, at most 4× as many: every epoch ends with a
   validation pass), so a smaller set is not simply a shorter training;
4. **translation**: test accuracy with every test image shifted by 0…S pixels
   (S = 8 at 28×28, scaled to the data's side; steps of 2 when S > 4; right,
   left, down, up; zero fill), for the dense network, the CNN with a
   flatten + dense head and the CNN with a global-average-pooling head, each
   trained without and with shift augmentation (preset ``shift``);
5. **pixel order**: both trained and tested on images whose pixels are
   scrambled by one fixed permutation.

Every network trains through the one engine (:mod:`cnnlab.train.engine`)
with the same optimizer, schedule, batch and epochs, each in its own run
folder under ``out/runs/``: a killed study resumes the run it was in and
reuses finished ones.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from cnnlab.study import common
from cnnlab.study.common import claim_study_folder, shift_images  # noqa: F401  (re-exported)

FRACTIONS = (1 / 64, 1 / 16, 1 / 4, 1.0)
SCALES = (1, 2, 4, 8)
DIRECTIONS = ((0, 1), (0, -1), (1, 0), (-1, 0))      # (dy, dx): right, left, down, up


@dataclass(frozen=True)
class StudyConfig:
    """What the study trains; ``quick`` is the README's few-minute version."""

    data: str = "fashion-mnist"
    data_dir: str | None = None
    out: str = "study"
    epochs: int = 10
    batch: int = 64
    seed: int = 0
    quick: bool = False
    max_shift: int | None = None       # default: 8 pixels at 28×28, scaled to the data's side

    def effective(self) -> StudyConfig:
        return replace(self, epochs=min(self.epochs, 5)) if self.quick else self


@dataclass
class Plan:
    """The networks and the runs of one study."""

    cfg: StudyConfig
    shape: tuple[int, int, int]
    classes: int
    train_images: int
    models: dict[str, str] = field(default_factory=dict)       # name -> zoo name or spec path
    runs: dict[str, Any] = field(default_factory=dict)         # run key -> TrainConfig


# --------------------------------------------------------------------------------------------------- networks

def _dense_units(params: int, inputs: int, classes: int) -> int:
    """Hidden units of a one-hidden-layer dense net with about ``params`` parameters."""
    return max(1, round((params - classes) / (inputs + 1 + classes)))


def _write_specs(folder: Path, shape: tuple[int, int, int], classes: int) -> dict[str, str]:
    """The study's networks: the small CNN, its global-pooling twin, a dense net of matched size, the MLP."""
    import yaml

    from cnnlab.files import atomic_write_text
    from cnnlab.targets import PACKAGED_SPECS
    from cnnlab.train.model import build_model

    cnn_text = Path(PACKAGED_SPECS["small_cnn"]).read_text()
    cnn = yaml.safe_load(cnn_text)
    gap = dict(cnn, name="small_cnn_gap")
    head = [i for i, layer in enumerate(cnn["layers"]) if layer == "flatten"][0]
    gap["layers"] = cnn["layers"][:head] + ["global_avgpool", {"dense": {"units": classes}}]
    cnn_params = sum(p.numel() for p in build_model("small_cnn", shape, classes)[0].parameters())
    inputs = shape[0] * shape[1] * shape[2]
    units = _dense_units(cnn_params, inputs, classes)
    dense = {"name": "dense_matched", "input": list(shape),
             "layers": ["flatten", {"dense": {"units": units, "activation": "relu"}}, {"dense": {"units": classes}}]}
    folder.mkdir(parents=True, exist_ok=True)
    out = {"cnn": "small_cnn"}
    for name, doc in (("cnn_gap", gap), ("dense", dense)):
        path = folder / f"{name}.yaml"
        text = (f"# written by cnnlab study cnn-vs-dense for {shape[0]}×{shape[1]}×{shape[2]} inputs\n"
                + yaml.safe_dump(doc, sort_keys=False))
        if not path.is_file() or path.read_text() != text:
            atomic_write_text(path, text)
        out[name] = str(path)
    out["mlp"] = "mlp"
    return out


def plan(cfg: StudyConfig) -> Plan:
    """Load the data's shape, write the specs and list every run the study needs."""
    from cnnlab.data import load_data
    from cnnlab.train.config import TrainConfig

    cfg = cfg.effective()
    data = load_data(cfg.data, cfg.data_dir, seed=cfg.seed)
    out = Path(cfg.out)
    p = Plan(cfg, data.shape, len(data.classes), len(data.train))
    p.models = _write_specs(out / "specs", data.shape, len(data.classes))
    from cnnlab.train.config import anchored

    base = TrainConfig(data=anchored(cfg.data) or cfg.data, data_dir=cfg.data_dir, epochs=cfg.epochs,
                       batch=cfg.batch, seed=cfg.seed)     # the data as the engine saves it (a folder made absolute)

    def add(key: str, model: str, **kw: Any) -> None:
        p.runs[key] = replace(base, model=p.models[model], out=str(out / "runs" / key), **kw)

    for m in ("cnn", "cnn_gap", "dense", "mlp"):                          # 2 (and the no-augmentation half of 4)
        add(m, m)
    full_steps = cfg.epochs * (p.train_images // cfg.batch)
    for frac in FRACTIONS[:-1]:               # 3: the full run's steps, within 4× its epochs (each validates)
        n = max(cfg.batch, round(frac * p.train_images))
        for m in ("cnn", "dense"):
            epochs = min(4 * cfg.epochs, max(cfg.epochs, -(-full_steps // (n // cfg.batch))))
            add(f"{m}-n{n}", m, train_size=n, epochs=epochs)
    for m in ("cnn", "cnn_gap", "dense"):                                # 4
        add(f"{m}-shift", m, augment="shift")
    for m in ("cnn", "dense"):                                           # 5
        add(f"{m}-permuted", m, permute_pixels=True)
    return p


# --------------------------------------------------------------------------------------------------- running

def run_all(p: Plan, progress: bool = True) -> None:
    """Train every run that is not finished (resuming a stopped one); one bar over the runs."""
    common.run_all(p.runs, progress, check=SAME, desc="cnn-vs-dense")


SAME = ("data", "epochs", "batch", "seed", "augment", "train_size", "permute_pixels")


# --------------------------------------------------------------------------------------------------- measuring

def _sizes(p: Plan) -> dict[str, list[dict[str, int]]]:
    """Parameters and MACs of every network at the data's side ×1, ×2, ×4, ×8 (built on the meta device)."""
    import torch

    from cnnlab.analysis import analyze
    from cnnlab.train.model import build_model

    c, h, w = p.shape
    out: dict[str, list[dict[str, int]]] = {}
    for name, model in p.models.items():
        rows = []
        for s in SCALES:
            shape = (c, h * s, w * s)
            with torch.device("meta"):
                net, _ = build_model(model, shape, p.classes)
            first = next(m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
            rows.append({"input": s * h, "params": sum(t.numel() for t in net.parameters()),
                         "first_layer_params": sum(t.numel() for t in first.parameters()),
                         "macs": analyze(net, shape).total_macs})
        out[name] = rows
    return out


def _result(folder: Path) -> dict[str, float]:
    r = common.result(folder)
    return {"test_acc": r["test_acc"], "train_s": r["train_s"]}


def _shift_curve(folder: Path, data: Any, shifts: list[int]) -> list[float]:
    """Test accuracy of a run's best weights at each shift, averaged over right, left, down and up."""
    from cnnlab.data import Split
    from cnnlab.train.runs import open_run
    from cnnlab.train.tasks.classification import evaluate

    run = open_run(folder, "classification")
    model, mean, std = run.model, run.mean, run.std
    test = data.test
    accs = []
    for s in shifts:
        per_dir = [evaluate(model, Split(shift_images(test.images, dy * s, dx * s), test.labels), mean, std,
                            "cpu")[1] for dy, dx in (DIRECTIONS if s else DIRECTIONS[:1])]
        accs.append(sum(per_dir) / len(per_dir))
    return accs


def measure(p: Plan) -> dict[str, Any]:
    """Every number of the report, from the finished runs."""
    from cnnlab.data import load_data

    cfg = p.cfg
    runs = {k: _result(Path(tc.out)) for k, tc in p.runs.items()}
    full = p.train_images
    efficiency: dict[str, list[dict[str, float]]] = {"cnn": [], "dense": []}
    for m in efficiency:
        for k, tc in p.runs.items():
            if k.startswith(f"{m}-n"):
                efficiency[m].append({"train_images": tc.train_size, "test_acc": runs[k]["test_acc"]})
        efficiency[m].append({"train_images": full, "test_acc": runs[m]["test_acc"]})
    max_shift = cfg.max_shift if cfg.max_shift is not None else max(1, round(8 * p.shape[1] / 28))
    step = 2 if max_shift > 4 else 1          # 0, 2, 4, 6, 8 at 28×28: each shift is 4 passes over the test set
    shifts = list(range(0, max_shift + 1, step))
    data = load_data(cfg.data, cfg.data_dir, seed=cfg.seed)
    translation = {f"{m}{aug}": _shift_curve(Path(p.runs[f"{m}{aug}"].out), data, shifts)
                   for m in ("dense", "cnn", "cnn_gap") for aug in ("", "-shift")}
    return {"config": asdict(cfg), "data": {"name": cfg.data, "shape": list(p.shape), "classes": p.classes,
                                            "train_images": full},
            "models": dict(p.models), "sizes": _sizes(p), "runs": runs, "efficiency": efficiency,
            "shifts": shifts, "translation": translation,
            "permutation": {m: {"plain": runs[m]["test_acc"], "permuted": runs[f"{m}-permuted"]["test_acc"]}
                            for m in ("cnn", "dense")}}


# --------------------------------------------------------------------------------------------------- report

LABELS = {"cnn": "CNN (flatten + dense head)", "cnn_gap": "CNN (global average pooling head)",
          "dense": "dense, matched size", "mlp": "MLP 300-100 (Géron)"}


def _pct(v: float) -> str:
    return f"{100 * v:.2f} %"


def _pts(v: float) -> str:
    return f"{100 * v:+.2f} points"


def _lead(v: float) -> str:
    return f"{100 * abs(v):.2f} points {'ahead of' if v >= 0 else 'behind'}"


def findings(r: dict[str, Any]) -> list[str]:
    """The claims of the chapter, each stated from the measured numbers."""
    sz, runs, eff, tr, perm = r["sizes"], r["runs"], r["efficiency"], r["translation"], r["permutation"]
    side = r["data"]["shape"][1]
    big = sz["dense"][-1]
    lines = [
        f"**Parameters.** At {side}×{side} the CNN has {sz['cnn'][0]['params']:,} parameters, the dense network "
        f"{sz['dense'][0]['params']:,} (matched) and the MLP {sz['mlp'][0]['params']:,}. At {big['input']}×"
        f"{big['input']} the dense network's first layer alone has {big['first_layer_params']:,} "
        f"({big['first_layer_params'] / sz['dense'][0]['first_layer_params']:.0f}× its size at {side}×{side}); "
        f"the CNN's first layer keeps {sz['cnn'][-1]['first_layer_params']:,} and the pooling-head CNN's total "
        f"stays {sz['cnn_gap'][-1]['params']:,} at any input size.",
        f"**Accuracy.** On all {r['data']['train_images']:,} training images the CNN reaches "
        f"{_pct(runs['cnn']['test_acc'])}, the dense network of the same size {_pct(runs['dense']['test_acc'])} "
        f"({_pts(runs['cnn']['test_acc'] - runs['dense']['test_acc'])} for the CNN), the MLP "
        f"{_pct(runs['mlp']['test_acc'])}; training took {runs['cnn']['train_s']:.1f} s and "
        f"{runs['dense']['train_s']:.1f} s.",
    ]
    first, last = eff["cnn"][0], eff["cnn"][-1]
    gap_small = first["test_acc"] - eff["dense"][0]["test_acc"]
    gap_all = last["test_acc"] - eff["dense"][-1]["test_acc"]
    lines.append(f"**Data.** With {first['train_images']:,} training images the CNN is {_lead(gap_small)} the "
                 f"dense network; with all {last['train_images']:,}, {_lead(gap_all)} it. "
                 + ("The CNN's lead is largest when data is scarce." if gap_small > gap_all > 0 else
                    "With the least data the dense network is ahead here; the CNN's advantage needs more images."
                    if gap_small < 0 < gap_all else
                    "Here the CNN's lead grows with more data." if 0 < gap_small <= gap_all else
                    "Here the CNN is not ahead with all the data."))
    s, k = r["shifts"][-1], len(r["shifts"]) - 1
    drop = {m: tr[m][0] - tr[m][k] for m in tr}
    aug_gain = tr["cnn-shift"][k] - tr["cnn"][k]          # both measured from the same flatten-head CNN
    pool_gain = tr["cnn_gap"][k] - tr["cnn"][k]
    lines.append(
        f"**Translation.** Shifted by {s} pixels, test accuracy falls by {_pts(-drop['dense'])[1:]} for the dense "
        f"network, {_pts(-drop['cnn'])[1:]} for the CNN and {_pts(-drop['cnn_gap'])[1:]} for the pooling-head CNN "
        f"(trained without shifts). For the flatten-head CNN at {s} pixels, training with shifted images adds "
        f"{_pts(aug_gain)}, a global-pooling head instead adds {_pts(pool_gain)} (the dense network gains "
        f"{_pts(tr['dense-shift'][k] - tr['dense'][k])} from shifted training images). "
        + ("Here augmentation is the larger source of invariance." if aug_gain > pool_gain else
           "Here the pooling head is the larger source of invariance."))
    d = {m: perm[m]["permuted"] - perm[m]["plain"] for m in perm}
    lines.append(
        f"**Pixel order.** With every image's pixels scrambled by one fixed permutation the dense network scores "
        f"{_pct(perm['dense']['permuted'])} ({_pts(d['dense'])}), the CNN {_pct(perm['cnn']['permuted'])} "
        f"({_pts(d['cnn'])}); the CNN's lead goes from {_pts(perm['cnn']['plain'] - perm['dense']['plain'])} to "
        f"{_pts(perm['cnn']['permuted'] - perm['dense']['permuted'])}. The dense network does not see pixel "
        "order (a fixed permutation relabels its inputs); "
        + ("the CNN lost more than the dense network: its advantage came from neighbouring pixels."
           if d["cnn"] < d["dense"] - 0.005 else
           "here the CNN lost no more than the dense network, within 0.5 points."))
    return lines


def _figures(r: dict[str, Any], out: Path) -> list[str]:
    from cnnlab.viz.common import plt, save_figure

    names = []
    fig, ax = plt.subplots(figsize=(6, 4))
    for m, rows in r["sizes"].items():
        ax.plot([x["input"] for x in rows], [x["params"] for x in rows], "o-", label=LABELS[m])
    ax.set(xscale="log", yscale="log", xlabel="input side (pixels)", ylabel="parameters",
           title="parameters vs input size")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    names.append(save_figure(fig, out / "params.png").name)
    fig, ax = plt.subplots(figsize=(6, 4))
    for m, rows in r["efficiency"].items():
        ax.plot([x["train_images"] for x in rows], [100 * x["test_acc"] for x in rows], "o-", label=LABELS[m])
    ax.set(xscale="log", xlabel="training images", ylabel="test accuracy (%)", title="data efficiency")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    names.append(save_figure(fig, out / "data_efficiency.png").name)
    fig, ax = plt.subplots(figsize=(6, 4))
    for m, accs in r["translation"].items():
        base = m.removesuffix("-shift")
        ax.plot(r["shifts"], [100 * a for a in accs], "o-" if m.endswith("-shift") else "s--",
                label=LABELS[base] + (", shift augmentation" if m.endswith("-shift") else ""))
    ax.set(xlabel="shift (pixels; mean of right, left, down, up)", ylabel="test accuracy (%)",
           title="accuracy on shifted test images")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    names.append(save_figure(fig, out / "translation.png").name)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ms = list(r["permutation"])
    for i, key in enumerate(("plain", "permuted")):
        ax.bar([j + 0.38 * i for j in range(len(ms))], [100 * r["permutation"][m][key] for m in ms], 0.38,
               label="pixels " + ("as they are" if key == "plain" else "permuted"))
    ax.set_xticks([j + 0.19 for j in range(len(ms))], [LABELS[m] for m in ms], fontsize=8)
    ax.set(ylabel="test accuracy (%)", title="pixel order")
    ax.legend(fontsize=8)
    names.append(save_figure(fig, out / "pixel_order.png").name)
    return names


def write_report(r: dict[str, Any], out: Path) -> Path:
    """``report.json``, ``report.md`` and the figures in ``out``."""
    from cnnlab.files import atomic_write_text

    figures = _figures(r, out)
    r = {**r, "findings": findings(r), "figures": figures}
    atomic_write_text(out / "report.json", json.dumps(r, indent=2))
    side = r["data"]["shape"][1]
    md = [f"# CNN vs dense network on {r['data']['name']} ({side}×{side}, {r['data']['classes']} classes)", "",
          f"Every network trained by the same engine: {r['config']['epochs']} epochs, batch {r['config']['batch']}, "
          f"Adam with the one-cycle schedule, seed {r['config']['seed']}. Run folders: `runs/`.", ""]
    md += [f"- {line}" for line in r["findings"]] + ["", "## 1. Parameters and MACs", "",
                                                     "| network | input | parameters | first layer | MACs |",
                                                     "|---|---|---|---|---|"]
    for m, rows in r["sizes"].items():
        for x in rows:
            md.append(f"| {LABELS[m]} | {x['input']}×{x['input']} | {x['params']:,} | {x['first_layer_params']:,} | "
                      f"{x['macs']:,} |")
    md += ["", "![parameters](params.png)", "", "## 2. Accuracy and training time (all training images)", "",
           "| network | test accuracy | training (s) |", "|---|---|---|"]
    md += [f"| {LABELS[m]} | {_pct(r['runs'][m]['test_acc'])} | {r['runs'][m]['train_s']:.1f} |"
           for m in ("cnn", "cnn_gap", "dense", "mlp")]
    md += ["", "## 3. Data efficiency", "", "| training images | " + " | ".join(LABELS[m] for m in r["efficiency"])
           + " |", "|---|---|---|"]
    for a, b in zip(r["efficiency"]["cnn"], r["efficiency"]["dense"]):
        md.append(f"| {a['train_images']:,} | {_pct(a['test_acc'])} | {_pct(b['test_acc'])} |")
    md += ["", "![data efficiency](data_efficiency.png)", "", "## 4. Translation", "",
           "Test accuracy with every test image shifted (mean of right, left, down, up; zero fill).", "",
           "| network | " + " | ".join(f"{s} px" for s in r["shifts"]) + " |",
           "|---|" + "---|" * len(r["shifts"])]
    for m, accs in r["translation"].items():
        label = LABELS[m.removesuffix("-shift")] + (", shift augmentation" if m.endswith("-shift") else "")
        md.append(f"| {label} | " + " | ".join(f"{100 * a:.1f}" for a in accs) + " |")
    md += ["", "![translation](translation.png)", "", "## 5. Pixel order", "",
           "| network | pixels as they are | pixels permuted |", "|---|---|---|"]
    md += [f"| {LABELS[m]} | {_pct(v['plain'])} | {_pct(v['permuted'])} |" for m, v in r["permutation"].items()]
    md += ["", "![pixel order](pixel_order.png)", ""]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(md))
    return path


def study(cfg: StudyConfig, progress: bool = True) -> Path:
    """Run (or resume) the whole study and write its report; returns ``report.md``'s path."""
    out = Path(cfg.out)
    with common.study_folder(out, "cnn-vs-dense"):
        p = plan(cfg)
    run_all(p, progress)
    return write_report(measure(p), out)
