"""Predicted vs measured peak memory of one training step (and of a prediction), on this machine.

For each network × batch × optimizer: the textbook figure (``cnnlab analyze``),
torchinfo's "Estimated Total Size", cnnlab's prediction (fake tensors, nothing
run) and the time it took, and — in a fresh process per row — the measured peak
of the real step (CPU: the profiler's allocation events; CUDA:
``max_memory_allocated``), second of two steps, and the wall time of one more
real step. Rows are appended to a JSON-lines file as they finish, so a long
run that is stopped can be resumed; the table and plot are made from that file.

    python benchmarks/memory_accuracy.py                                   # the full grid, CPU
    python benchmarks/memory_accuracy.py --nets resnet18:3,64,64 --batches 8 --optimizers sgd
    python benchmarks/memory_accuracy.py --device cuda --results benchmarks/results/memory_cuda.jsonl
    python benchmarks/memory_accuracy.py --report-only --plot docs/img/memory_accuracy.png
    python benchmarks/memory_accuracy.py --replay --results benchmarks/results/memory_cpu_avx512.jsonl
    python benchmarks/memory_accuracy.py --batches 8 --optimizers adam --precisions fp32 bf16-amp bf16 \
        --layouts nchw nhwc --results benchmarks/results/memory_cpu_fastpath_zen5.jsonl    # the fast path

Prints a markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

DEFAULT_NETS = [
    "geron_ex2:3,200,300", "lenet5:1,32,32", "alexnet:3,224,224", "vgg16:3,112,112",
    "googlenet:3,224,224", "resnet18:3,224,224", "resnet50:3,224,224", "seresnet50:3,224,224",
    "xception:3,150,150", "efficientnet_b0:3,224,224", "separable_net:3,128,128",
]

CHILD = r"""
import json, sys, time, torch
from cnnlab.memory.measure import measure_memory
from cnnlab.memory.step import StepConfig, make_batch, make_optimizer, target_shape, training_step
from cnnlab.models import create_model
from cnnlab.spec import build, load_spec
torch.set_num_threads(int(sys.argv[6]))
target, shape, batch, opt, device = sys.argv[1], tuple(map(int, sys.argv[2].split(","))), int(sys.argv[3]), sys.argv[4], sys.argv[5]
precision, channels_last = sys.argv[7], sys.argv[8] == "nhwc"
def make():
    torch.manual_seed(0)
    if target.endswith((".yaml", ".yml")):
        return build(load_spec(target).with_input(shape), device="cpu")
    return create_model(target, in_channels=shape[0], input_size=shape[1])
cfg = StepConfig(opt, precision, device=device, channels_last=channels_last)
model = make()
train, infer = measure_memory(model, shape, batch, cfg)
# wall time of one more real step (same model, now warm)
with torch.no_grad():
    out = model(torch.zeros(2, *shape, device=device, dtype=cfg.param_dtype).contiguous(memory_format=cfg.memory_format))
x, y = make_batch(target_shape(model, tuple(out.shape)), shape, batch, out.shape[1], cfg.param_dtype, device,
                  cfg.memory_format)
o = make_optimizer(model, opt)
model.train(); training_step(model, x, y, o, cfg)
if device == "cuda": torch.cuda.synchronize()
t = time.perf_counter(); training_step(model, x, y, o, cfg)
if device == "cuda": torch.cuda.synchronize()
step_s = time.perf_counter() - t
del x, y, o
import importlib.util
torchinfo_total = None   # stays None (a dash in the table) without the bench extra
if importlib.util.find_spec("torchinfo") is not None:
    import torchinfo
    s = torchinfo.summary(make(), input_size=(batch, *shape), verbose=0, device=device)
    torchinfo_total = int(s.total_input + s.total_output_bytes + s.total_param_bytes)
print(json.dumps({"measured": train, "measured_inference": infer, "step_s": step_s, "torchinfo": torchinfo_total}))
"""


def _key(row: dict) -> tuple:
    return (row["net"], row["batch"], row["optimizer"], row["device"], row.get("precision", "fp32"),
            row.get("layout", "nchw"))


def run_rows(args: argparse.Namespace, results: Path) -> None:
    from cnnlab import analyze
    from cnnlab.memory.estimate import estimate_memory
    from cnnlab.memory.onednn.workspace import CpuKernels
    from cnnlab.spec import NetworkSpec, build
    from cnnlab.targets import resolve_target

    done = {_key(r) for r in load(results)}
    results.parent.mkdir(parents=True, exist_ok=True)
    for net in args.nets:
        name, _, dims = net.rpartition(":")
        shape = tuple(map(int, dims.split(",")))
        target = resolve_target(name, shape)
        module = build(target.network, device="meta") if isinstance(target.network, NetworkSpec) else target.network
        for batch in args.batches:
            textbook = analyze(target.network, shape, batch_size=batch).memory.training_bytes
            for opt, precision, layout in [(o, p, lay) for o in args.optimizers for p in args.precisions
                                           for lay in args.layouts]:
                row = {"net": net, "name": target.name, "input": list(shape), "batch": batch, "optimizer": opt,
                       "device": args.device, "precision": precision, "layout": layout}
                if _key(row) in done:
                    continue
                t = time.perf_counter()
                est = estimate_memory(module, shape, batch, opt, precision, device=args.device,
                                      channels_last=layout == "nhwc")
                dtype = {"fp32": "fp32", "fp16-amp": "fp16"}.get(precision, "bf16")
                row["kernels"] = CpuKernels.current().family(dtype)
                row["unverified"] = any("unverified" in n for n in est.notes)
                row["predict_s"] = time.perf_counter() - t
                row["macs"] = analyze(target.network, shape).total_macs
                row["textbook"] = textbook
                row["predicted"] = est.training.peak_bytes
                row["predicted_inference"] = est.inference.peak_bytes
                proc = subprocess.run([sys.executable, "-c", CHILD, name, dims, str(batch), opt, args.device,
                                       str(args.threads), precision, layout], capture_output=True, text=True,
                                      check=False)
                if proc.returncode != 0:
                    print(f"{net} b{batch} {opt}: measurement failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
                    continue
                row.update(json.loads(proc.stdout.strip().splitlines()[-1]))
                with results.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(f"{target.name} b{batch} {opt} {precision} {layout}: predicted {row['predicted']:,} measured {row['measured']:,} "
                      f"({(row['predicted'] - row['measured']) / row['measured']:+.2%}) predict {row['predict_s']:.1f}s "
                      f"step {row['step_s']:.1f}s", file=sys.stderr, flush=True)


def replay(results: Path) -> int:
    """Predict every row of ``results`` again with this checkout's code (nothing measured); print the rows whose
    prediction moved. After a refactor of the predictor, 0 moved rows means the same figures."""
    from cnnlab.memory.estimate import estimate_memory
    from cnnlab.spec import NetworkSpec, build
    from cnnlab.targets import resolve_target

    moved = 0
    rows = load(results)
    for r in rows:
        name, _, dims = r["net"].rpartition(":")
        shape = tuple(map(int, dims.split(",")))
        target = resolve_target(name, shape)
        module = build(target.network, device="meta") if isinstance(target.network, NetworkSpec) else target.network
        est = estimate_memory(module, shape, r["batch"], r["optimizer"], r.get("precision", "fp32"),
                              device=r["device"], channels_last=r.get("layout", "nchw") == "nhwc")
        now = (est.training.peak_bytes, est.inference.peak_bytes)
        if now != (r["predicted"], r["predicted_inference"]):
            moved += 1
            print(f"{r['name']} b{r['batch']} {r['optimizer']}: recorded {r['predicted']:,} / "
                  f"{r['predicted_inference']:,}, now {now[0]:,} / {now[1]:,}")
    print(f"{len(rows) - moved} of {len(rows)} rows predict the recorded bytes exactly; {moved} moved")
    return moved


def load(results: Path) -> list[dict]:
    if not results.exists():
        return []
    return [json.loads(line) for line in results.read_text().splitlines() if line.strip()]


def _err(a: int | None, b: int) -> str:
    return "" if a is None else f"{(a - b) / b:+.1%}"


def gaps(rows: list[dict]) -> str:
    """Per (kernels, precision, layout): rows, the largest under-prediction (training, inference) and whether
    cnnlab flags them unverified — what docs/memory.md's Known limits and ``KNOWN_GAPS`` record."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r.get("kernels", "?"), r.get("precision", "fp32"), r.get("layout", "nchw")), []).append(r)
    out = ["| kernels | precision | layout | rows | worst training error | worst inference error | flagged |",
           "|---|---|---|---:|---:|---:|---|"]
    for (k, p, lay), rs in sorted(groups.items()):
        worst = min((r["predicted"] - r["measured"]) / r["measured"] for r in rs)
        worst_i = min((r["predicted_inference"] - r["measured_inference"]) / r["measured_inference"] for r in rs)
        flagged = "unverified" if all(r.get("unverified") for r in rs) else "no" if not any(
            r.get("unverified") for r in rs) else "some"
        out.append(f"| {k} | {p} | {lay} | {len(rs)} | {worst:+.1%} | {worst_i:+.1%} | {flagged} |")
    return "\n".join(out)


def table(rows: list[dict]) -> str:
    out = [("| network | input | batch | opt | precision, layout (kernels) | textbook MB | torchinfo MB (err) | "
            "predicted MB | measured MB | error | predict s | step s | inference pred. / meas. MB | error |"),
           "|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        m, mi = r["measured"], r["measured_inference"]
        ti = r.get("torchinfo")
        ti_s = "–" if ti is None else f"{ti / 1e6:,.1f} ({_err(ti, m)})"
        out.append(
            f"| {r['name']} | {'×'.join(map(str, r['input']))} | {r['batch']} | {r['optimizer']} | "
            f"{r.get('precision', 'fp32')}, {r.get('layout', 'nchw')} ({r.get('kernels', '')})"
            f"{' unverified' if r.get('unverified') else ''} | {r['textbook'] / 1e6:,.1f} | {ti_s} | {r['predicted'] / 1e6:,.1f} | {m / 1e6:,.1f} | "
            f"{_err(r['predicted'], m)} | {r['predict_s']:.1f} | {r['step_s']:.2f} | "
            f"{r['predicted_inference'] / 1e6:,.1f} / {mi / 1e6:,.1f} | {_err(r['predicted_inference'], mi)} |")
    errs = [abs(r["predicted"] - r["measured"]) / r["measured"] for r in rows]
    ierrs = [abs(r["predicted_inference"] - r["measured_inference"]) / r["measured_inference"] for r in rows]
    big = [r for r in rows if r["macs"] > 1e9]
    if rows:
        out.append("")
        out.append(f"{len(rows)} rows. Training: max |error| {max(errs):.1%}, {sum(e <= 0.03 for e in errs)} of "
                   f"{len(rows)} within 3 %. Inference: max |error| {max(ierrs):.1%}.")
        if big:
            speed = [r["step_s"] / r["predict_s"] for r in big]
            out.append(f"Networks above 1 GMAC ({len(big)} rows): real step / prediction time from "
                       f"{min(speed):.1f}× to {max(speed):.1f}×; ≥ 10× in {sum(s >= 10 for s in speed)} rows.")
    return "\n".join(out)


def plot(rows: list[dict], path: Path) -> None:
    from cnnlab.viz.common import plt, save_figure

    fig, ax = plt.subplots(figsize=(7, 6))
    names = sorted({r["name"] for r in rows})
    markers = "os^vD<>pP*Xh"
    for i, name in enumerate(names):
        for opt, fill in (("sgd", True), ("adam", False)):
            sel = [r for r in rows if r["name"] == name and r["optimizer"] == opt]
            if not sel:
                continue
            ax.scatter([r["measured"] / 1e6 for r in sel], [r["predicted"] / 1e6 for r in sel],
                       marker=markers[i % len(markers)], s=40, label=f"{name} ({opt})" if fill else None,
                       facecolors=f"C{i % 10}" if fill else "none", edgecolors=f"C{i % 10}")
    lo = min(min(r["measured"], r["predicted"]) for r in rows) / 1e6 * 0.8
    hi = max(max(r["measured"], r["predicted"]) for r in rows) / 1e6 * 1.25
    xs = [lo, hi]
    ax.plot(xs, xs, "k-", lw=0.8, label="predicted = measured")
    ax.fill_between(xs, [x * 0.97 for x in xs], [x * 1.03 for x in xs], color="0.85", label="±3 %")
    tis = [r for r in rows if r.get("torchinfo")]
    if tis:
        ax.scatter([r["measured"] / 1e6 for r in tis], [r["torchinfo"] / 1e6 for r in tis], marker="x",
                   color="tab:red", alpha=0.5, s=10, lw=0.8, label="torchinfo 'Estimated Total Size'")
    ax.set(xscale="log", yscale="log", xlim=xs, ylim=xs, xlabel="measured peak of a training step (MB)",
           ylabel="predicted peak (MB)",
           title=f"cnnlab memory: predicted vs measured ({rows[0]['device'].upper()}, batch 1/8/32, "
                 f"filled SGD, hollow Adam)")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=6, ncol=2, loc="upper left")
    save_figure(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nets", nargs="+", default=DEFAULT_NETS, metavar="NAME:C,H,W")
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 8, 32])
    ap.add_argument("--optimizers", nargs="+", default=["sgd", "adam"])
    ap.add_argument("--precisions", nargs="+", default=["fp32"], choices=["fp32", "bf16-amp", "bf16", "fp16-amp"])
    ap.add_argument("--layouts", nargs="+", default=["nchw"], choices=["nchw", "nhwc"])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads in the measuring process")
    ap.add_argument("--results", type=Path, default=None,
                    help="JSON-lines file of finished rows (default benchmarks/results/memory_<device>.jsonl)")
    ap.add_argument("--report-only", action="store_true", help="print the table from the results file, run nothing")
    ap.add_argument("--replay", action="store_true", help="predict every row of the results file again (nothing "
                    "measured) and list the rows whose prediction moved")
    ap.add_argument("--plot", type=Path, help="write the predicted-vs-measured PNG here")
    args = ap.parse_args()
    results = args.results or Path(__file__).parent / "results" / f"memory_{args.device}.jsonl"
    torch.set_num_threads(args.threads)
    if args.replay:
        sys.exit(1 if replay(results) else 0)
    if not args.report_only:
        run_rows(args, results)
    rows = load(results)
    wanted = {(n, b, o, p, lay) for n in args.nets for b in args.batches for o in args.optimizers
              for p in args.precisions for lay in args.layouts}
    rows = [r for r in rows if (r["net"], r["batch"], r["optimizer"], r.get("precision", "fp32"),
                                r.get("layout", "nchw")) in wanted and r["device"] == args.device]
    print(f"machine: {platform.processor() or platform.machine()}, kernels {torch.backends.cpu.get_cpu_capability()}, "
          f"{args.threads} threads, torch {torch.__version__}\n")
    print(table(rows))
    if any(r.get("precision", "fp32") != "fp32" or r.get("layout", "nchw") != "nchw" for r in rows):
        print("\n" + gaps(rows))
    if args.plot and rows:
        plot(rows, args.plot)
        print(f"\nplot: {args.plot}")


if __name__ == "__main__":
    main()
