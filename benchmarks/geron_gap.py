"""The exercise network's memory, from the textbook figure to the real peak, step by step.

    python benchmarks/geron_gap.py [--batch 50]

Prints the figures of the table in docs/memory.md ("Explaining the gap"):
the textbook figure, the live tensors of the same network written with
PyTorch's own symmetric padding, those of cnnlab's spec network (explicit
TF-style "same" padding), and the predicted peak with oneDNN's buffers.
"""

from __future__ import annotations

import argparse

from torch import nn

from cnnlab import analyze
from cnnlab.memory.estimate import estimate_memory
from cnnlab.spec import build, load_spec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=50)
    b = ap.parse_args().batch
    spec = load_spec("geron_ex2")
    shape = spec.input_shape
    symmetric = nn.Sequential(nn.Conv2d(3, 100, 3, 2, 1), nn.ReLU(), nn.Conv2d(100, 200, 3, 2, 1), nn.ReLU(),
                              nn.Conv2d(200, 400, 3, 2, 1), nn.ReLU())
    sym = estimate_memory(symmetric, shape, b, include_inference=False).training
    ours = estimate_memory(build(spec, device="meta"), shape, b, include_inference=False).training
    rows = [("textbook (cnnlab analyze)", analyze(spec, shape, batch_size=b).memory.training_bytes),
            ("live tensors, nn.Conv2d(padding=1)", sym.peak_bytes - sym.breakdown["kernel_workspace"]),
            ("live tensors, cnnlab spec network", ours.peak_bytes - ours.breakdown["kernel_workspace"]),
            ("predicted peak incl. oneDNN buffers", ours.peak_bytes)]
    for label, n in rows:
        print(f"{label:<40} {n:>16,} B  {n / 1e6:>10,.1f} MB")


if __name__ == "__main__":
    main()
