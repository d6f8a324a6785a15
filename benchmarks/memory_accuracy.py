"""Predicted vs measured peak memory of one training step (and of a prediction), on this CPU.

For each network × batch × optimizer: the textbook figure (cnnlab analyze), cnnlab's
prediction (fake tensors, nothing run) and its time, and the measured peak of the
real step (PyTorch profiler's allocation events, second of two steps), with the
relative error. Each real measurement runs in its own process.

    python benchmarks/memory_accuracy.py                       # the default grid (small inputs)
    python benchmarks/memory_accuracy.py --nets resnet50:3,224,224 --batches 1 8 32 --optimizers sgd adam

Prints a markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time

import torch

DEFAULT_NETS = ["examples/geron_ex2.yaml:3,100,150", "lenet5:1,32,32", "mlp:1,28,28", "resnet18:3,64,64",
                "efficientnet_b0:3,64,64", "xception:3,71,71"]

CHILD = r"""
import json, sys, torch
from cnnlab.analysis.measure import measure_memory
from cnnlab.analysis.step import StepConfig
from cnnlab.models import create_model
from cnnlab.spec import build, load_spec
torch.set_num_threads(2)
target, shape, batch, opt = sys.argv[1], tuple(map(int, sys.argv[2].split(","))), int(sys.argv[3]), sys.argv[4]
if target.endswith(".yaml"):
    model = build(load_spec(target).with_input(shape), device="cpu")
else:
    model = create_model(target, in_channels=shape[0], input_size=shape[1])
train, infer = measure_memory(model, shape, batch, StepConfig(opt))
print(json.dumps([train, infer]))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nets", nargs="+", default=DEFAULT_NETS, metavar="NAME:C,H,W")
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 8, 32])
    ap.add_argument("--optimizers", nargs="+", default=["sgd", "adam"])
    args = ap.parse_args()
    from cnnlab import analyze
    from cnnlab.analysis.memory import estimate_memory
    from cnnlab.targets import resolve_target

    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}\n")
    print("| network | input | batch | optimizer | textbook MB | predicted MB | measured MB | error | "
          "predict s | inference predicted / measured MB | error |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for net in args.nets:
        name, _, dims = net.rpartition(":")
        shape = tuple(map(int, dims.split(",")))
        target = resolve_target(name, shape)
        from cnnlab.spec import NetworkSpec, build
        module = build(target.network, device="meta") if isinstance(target.network, NetworkSpec) else target.network
        for batch in args.batches:
            textbook = analyze(target.network, shape, batch_size=batch).memory.training_bytes
            for opt in args.optimizers:
                t = time.perf_counter()
                est = estimate_memory(module, shape, batch, opt)
                took = time.perf_counter() - t
                out = subprocess.run([sys.executable, "-c", CHILD, name, dims, str(batch), opt],
                                     capture_output=True, text=True, check=True).stdout
                train, infer = json.loads(out.strip().splitlines()[-1])
                p, q = est.training.peak_bytes, est.inference.peak_bytes
                print(f"| {target.name} | {'×'.join(map(str, shape))} | {batch} | {opt} | {textbook / 1e6:,.1f} | "
                      f"{p / 1e6:,.1f} | {train / 1e6:,.1f} | {(p - train) / train:+.1%} | {took:.1f} | "
                      f"{q / 1e6:,.1f} / {infer / 1e6:,.1f} | {(q - infer) / infer:+.1%} |", flush=True)


if __name__ == "__main__":
    main()
