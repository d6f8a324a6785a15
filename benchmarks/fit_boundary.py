"""Is ``cnnlab fit``'s largest batch really the largest that fits? Check it with real training steps.

For each network and budget: ``fit`` (predictions only) gives the largest batch
B; then real steps (the profiler's allocation events, as ``--measure``; one
fresh process per batch) find the true largest batch by walking up from B
until the measured peak exceeds the budget. Target: B ≤ true and B ≥ 95 % of it.

    python benchmarks/fit_boundary.py
    python benchmarks/fit_boundary.py --cases resnet18:3,64,64:300MB
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys

import torch

DEFAULT_CASES = ["geron_ex2:3,100,150:250MB", "lenet5:1,32,32:8MB", "resnet18:3,64,64:400MB",
                 "separable_net:3,128,128:500MB", "efficientnet_b0:3,64,64:300MB"]

CHILD = r"""
import json, sys, torch
from cnnlab.memory.measure import measure_memory
from cnnlab.memory.step import StepConfig
from cnnlab.models import create_model
from cnnlab.spec import build, load_spec
torch.set_num_threads(int(sys.argv[5]))
target, shape, batch, opt = sys.argv[1], tuple(map(int, sys.argv[2].split(","))), int(sys.argv[3]), sys.argv[4]
torch.manual_seed(0)
if target.endswith((".yaml", ".yml")):
    model = build(load_spec(target).with_input(shape), device="cpu")
else:
    model = create_model(target, in_channels=shape[0], input_size=shape[1])
print(json.dumps(measure_memory(model, shape, batch, StepConfig(opt))[0]))
"""


def measured(name: str, dims: str, batch: int, opt: str, threads: int) -> int:
    out = subprocess.run([sys.executable, "-c", CHILD, name, dims, str(batch), opt, str(threads)],
                         capture_output=True, text=True, check=True).stdout
    return int(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="+", default=DEFAULT_CASES, metavar="NAME:C,H,W:BUDGET")
    ap.add_argument("--optimizer", default="adam")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    from cnnlab.memory.fit import fit
    from cnnlab.spec import NetworkSpec, build
    from cnnlab.targets import resolve_target
    from cnnlab.units import parse_bytes

    torch.set_num_threads(args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, {args.threads} threads, torch {torch.__version__}, "
          f"optimizer {args.optimizer}\n")
    print("| network | input | budget | fit's largest batch | its measured peak | true largest batch "
          "| measured peak at true + 1 | fit / true |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for case in args.cases:
        name, dims, budget_text = case.rsplit(":", 2)
        shape = tuple(map(int, dims.split(",")))
        budget = parse_bytes(budget_text)
        target = resolve_target(name, shape)
        spec = target.network if isinstance(target.network, NetworkSpec) else None
        net = build(spec, device="meta") if spec is not None else target.network
        b = fit(net, shape, budget, batch_size=10_000, optimizer=args.optimizer, name=target.name).max_batch
        at_b = measured(name, dims, b, args.optimizer, args.threads) if b else 0
        true, nxt = b, measured(name, dims, b + 1, args.optimizer, args.threads)
        while nxt <= budget:
            true += 1
            nxt = measured(name, dims, true + 1, args.optimizer, args.threads)
        print(f"| {target.name} | {'×'.join(map(str, shape))} | {budget_text} ({budget:,} B) | {b} | {at_b:,} | "
              f"{true} | {nxt:,} | {b / true:.1%} |", flush=True)


if __name__ == "__main__":
    main()
