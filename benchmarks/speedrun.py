"""The Fashion-MNIST recipes timed: the default command and ``--recipe speedrun``, seeds and ablations.

    python benchmarks/speedrun.py --out runs/speedrun                        # the speedrun, seeds 0 1 2
    python benchmarks/speedrun.py --out runs/speedrun --recipe fashion-mnist # the default command's recipe
    python benchmarks/speedrun.py --out runs/speedrun --ablations            # + each ingredient changed, seed 0

Every run is the whole command ``cnnlab train --data fashion-mnist --recipe R --seed S [changes] --no-progress``
in a fresh process, timed from start to exit (start-up, data, validation, test and figures included), one after
the other (never two at once on 2 cores). A run folder that already holds a finished run is reused with the time
it was measured at (``command_s.txt``). Prints a markdown table: median test accuracy and whole-command time over
the seeds, each seed's figures, and one row per ablation (one seed: a hint of what each ingredient does, not a
claim).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

NETS = Path(__file__).resolve().parent / "nets"     # the networks of the ablations
# each ingredient of the speedrun recipe changed on its own: (name, the flags that change it)
ABLATIONS = {
    "speedrun": [
        ("Adam's default peak 1e-3 instead of 5e-3", ["--lr", "1e-3"]),
        ("no flip augmentation", ["--augment", "none"]),
        ("no test-time flip", ["--tta", "none"]),
        ("no label smoothing", ["--label-smoothing", "0"]),
        ("small_cnn instead of speedrun_cnn", ["--model", "small_cnn"]),
        ("batch norm and ReLU before each pool, global max pool head (the first speedrun_cnn), 8 epochs",
         ["--model", str(NETS / "speedrun_cnn_bn_first.yaml"), "--epochs", "8"]),
        ("a global max pool head instead of the flattened map's dense head (the pool-first speedrun_cnn)",
         ["--model", str(NETS / "speedrun_cnn_global_max.yaml")]),
        ("no dropout in the head", ["--model", str(NETS / "speedrun_cnn_no_dropout.yaml")]),
        ("mirror and shift augmentation (`basic`)", ["--augment", "basic"]),
        ("label smoothing 0.2", ["--label-smoothing", "0.2"]),
    ],
    "fashion-mnist": [
        ("Adam's default peak 1e-3 instead of 3e-3", ["--lr", "1e-3"]),
        ("no flip augmentation", ["--augment", "none"]),
        ("no test-time flip", ["--tta", "none"]),
    ],
}


def _recipe_tag(recipe: str) -> str:
    """A short digest of the recipe's settings and of its packaged network's layers: a folder from an older recipe
    (another rate, or speedrun_cnn with another head, say) is not reused."""
    import hashlib

    from cnnlab.packaged import PACKAGED_SPECS
    from cnnlab.train.recipes import CLASSIFICATION_RECIPES

    settings = CLASSIFICATION_RECIPES[recipe]
    spec = PACKAGED_SPECS.get(settings.get("model", ""))
    layers = spec.read_text(encoding="utf-8") if spec is not None else ""
    return hashlib.sha256((json.dumps(settings, sort_keys=True) + layers).encode()).hexdigest()[:8]


def run(out: Path, recipe: str, seed: int, flags: list[str]) -> dict:
    folder = out / (f"{recipe}-{_recipe_tag(recipe)}-s{seed}"
                    + ("-" + "_".join(Path(f).stem if "/" in f else f.strip("-") for f in flags) if flags else ""))
    if not (folder / "command_s.txt").is_file():
        argv = [sys.executable, "-m", "cnnlab", "train", "--data", "fashion-mnist", "--recipe", recipe,
                "--seed", str(seed), *flags, "--no-progress", "--out", str(folder)]
        print(" ".join(argv[2:]), file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, stdout=sys.stderr)      # the table alone on stdout
        (folder / "command_s.txt").write_text(f"{time.perf_counter() - t0:.1f}\n")
    test = json.loads((folder / "test.json").read_text())
    import csv

    with open(folder / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {"test": test["test_acc"], "val": max(float(r["val_acc"]) for r in rows),
            "seconds": float((folder / "command_s.txt").read_text()), "epochs": len(rows)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/speedrun")
    p.add_argument("--recipe", default="speedrun")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--ablations", action="store_true", help="also each ingredient changed, seed 0")
    args = p.parse_args()
    out = Path(args.out)
    runs = {s: run(out, args.recipe, s, []) for s in args.seeds}
    from cnnlab.study.common import machine_line

    cpu = machine_line()          # the CPU's model name, torch threads and version
    med_acc = statistics.median(r["test"] for r in runs.values())
    med_s = statistics.median(r["seconds"] for r in runs.values())
    print(f"\n`cnnlab train --data fashion-mnist --recipe {args.recipe}`, {cpu}, whole command\n")
    print(f"**median of {len(runs)} seeds: {100 * med_acc:.2f} % test accuracy in {med_s:.0f} s**\n")
    print("| seed | test accuracy | best validation | whole command | epochs |\n|---|---:|---:|---:|---:|")
    for s, r in runs.items():
        print(f"| {s} | {100 * r['test']:.2f} % | {100 * r['val']:.2f} % | {r['seconds']:.0f} s | {r['epochs']} |")
    if args.ablations:
        base = runs[args.seeds[0]]
        print(f"\nAblations (seed {args.seeds[0]}; the recipe: {100 * base['test']:.2f} % test, "
              f"{100 * base['val']:.2f} % validation, {base['seconds']:.0f} s)\n")
        print("| change | test accuracy | Δ test | best validation | Δ validation | whole command |\n"
              "|---|---:|---:|---:|---:|---:|")
        for name, flags in ABLATIONS.get(args.recipe, []):
            r = run(out, args.recipe, args.seeds[0], flags)
            print(f"| {name} (`{' '.join(flags)}`) | {100 * r['test']:.2f} % | {100 * (r['test'] - base['test']):+.2f} | "
                  f"{100 * r['val']:.2f} % | {100 * (r['val'] - base['val']):+.2f} | {r['seconds']:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
