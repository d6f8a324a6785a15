"""How long `estimate_memory` takes, against one real training step of the same network.

Each network runs in a fresh Python process: the first prediction in a process
(imports and one-time set-up included), the median of three more, and for
networks above 1 GMAC one real training step at batch 32 (after a warm-up step)
against the prediction at batch 32. Also times the whole command
`cnnlab memory resnet50 --batch 8` against `python -c "import torch"`.

    python benchmarks/memory_speed.py                  # the memory benchmark's grid, batch 8
    python benchmarks/memory_speed.py --nets resnet50:3,224,224 --rounds 5

Prints markdown tables for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from memory_accuracy import DEFAULT_NETS  # noqa: E402  the same grid as the accuracy benchmark

CHILD = r"""
import json, statistics, sys, time, torch
torch.set_num_threads(2)
from cnnlab.memory.estimate import estimate_memory
from cnnlab.memory.step import StepConfig, make_batch, make_optimizer, target_shape, training_step
from cnnlab.models import create_model
from cnnlab.spec import NetworkSpec, build, load_spec
from cnnlab.targets import resolve_target
name, shape, batch, big = sys.argv[1], tuple(map(int, sys.argv[2].split(","))), int(sys.argv[3]), int(sys.argv[4])
target = resolve_target(name, shape)
net = build(target.network, device="meta") if isinstance(target.network, NetworkSpec) else target.network
t = time.perf_counter(); estimate_memory(net, shape, batch, "sgd"); first = time.perf_counter() - t
later = []
for _ in range(3):
    t = time.perf_counter(); estimate_memory(net, shape, batch, "sgd"); later.append(time.perf_counter() - t)
row = {"first_s": first, "later_s": statistics.median(later)}
if big:
    t = time.perf_counter(); estimate_memory(net, shape, 32, "sgd"); row["predict32_s"] = time.perf_counter() - t
    torch.manual_seed(0)
    model = build(load_spec(name).with_input(shape)) if name.endswith((".yaml", ".yml")) else \
        create_model(name, in_channels=shape[0], input_size=shape[1])
    cfg = StepConfig("sgd")
    with torch.no_grad():
        out = model(torch.zeros(2, *shape))
    x, y = make_batch(target_shape(model, tuple(out.shape)), shape, 32, out.shape[1], torch.float32, "cpu")
    opt = make_optimizer(model, "sgd")
    model.train(); training_step(model, x, y, opt, cfg)           # warm-up: oneDNN primitives, allocator
    t = time.perf_counter(); training_step(model, x, y, opt, cfg); row["step32_s"] = time.perf_counter() - t
print(json.dumps(row))
"""


def child(net: str, batch: int, big: bool) -> dict:
    name, _, dims = net.rpartition(":")
    proc = subprocess.run([sys.executable, "-c", CHILD, name, dims, str(batch), str(int(big))],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1][:120]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def macs(net: str) -> int:
    from cnnlab import analyze
    from cnnlab.targets import resolve_target

    name, _, dims = net.rpartition(":")
    shape = tuple(map(int, dims.split(",")))
    return analyze(resolve_target(name, shape).network, shape).total_macs


def wall(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, capture_output=True, check=True)
    return time.perf_counter() - t


def command_rows(rounds: int) -> str:
    """`cnnlab memory resnet50 --batch 8` and `import torch`, alternated."""
    cnnlab = str(Path(sys.executable).with_name("cnnlab"))
    cases = {"python -c 'import torch'": [sys.executable, "-c", "import torch"],
             "cnnlab memory resnet50 --batch 8": [cnnlab, "memory", "resnet50", "--batch", "8"]}
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(rounds):
        for k, cmd in cases.items():
            times[k].append(wall(cmd))
    lines = ["| command | wall time (s), each round | median (s) |", "|---|---|---:|"]
    for k, ts in times.items():
        lines.append(f"| `{k}` | {', '.join(f'{t:.2f}' for t in ts)} | {statistics.median(ts):.2f} |")
    gap = statistics.median(times["cnnlab memory resnet50 --batch 8"]) - statistics.median(
        times["python -c 'import torch'"])
    lines.append(f"\nThe command takes {gap:.2f} s more than importing torch (goal: at most 1.5 s).")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nets", nargs="+", default=DEFAULT_NETS, metavar="NAME:C,H,W")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3, help="alternated rounds of the command timing")
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, 2 torch threads, python {platform.python_version()}\n")
    print(f"| network | GMACs | first prediction, batch {args.batch} (s) | later ones, median (s) | "
          "prediction, batch 32 (s) | real step, batch 32 (s) | step / prediction |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for net in args.nets:
        m = macs(net)
        r = child(net, args.batch, m > 1e9)
        if "error" in r:
            print(f"| {net} | {m / 1e9:.2f} | {r['error']} | | | | |")
            continue
        ratio = f"{r['step32_s'] / r['predict32_s']:.1f}×" if "step32_s" in r else ""
        print(f"| {net} | {m / 1e9:.2f} | {r['first_s']:.2f} | {r['later_s']:.3f} | "
              f"{r.get('predict32_s', float('nan')):.3f} | {r.get('step32_s', float('nan')):.2f} | {ratio} |",
              flush=True)
    print()
    print(command_rows(args.rounds))


if __name__ == "__main__":
    main()
