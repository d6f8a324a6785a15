"""Time of one segmentation training step (Adam, batch 32, 1×64×64, 11 classes) by layout and precision.

    python benchmarks/segment_step_speed.py                 # U-Net (width 16, depth 4 and 3) and FCN-8s

The median of the last 5 of 8 steps per variant (the first are warm-up). bf16-amp is fast only
where the CPU computes in bfloat16 natively (AVX512_BF16, AMX); elsewhere oneDNN emulates it.
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F

from cnnlab.memory.step import autocast
from cnnlab.models import create_model

NETS = [("unet", {"width": 16, "depth": 4}), ("fcn8s", {"width": 16, "fc_kernel": 3}),
        ("unet", {"width": 16, "depth": 3})]
VARIANTS = [("fp32", False), ("fp32", True), ("bf16-amp", True)]


def step_ms(name: str, options: dict, precision: str, channels_last: bool) -> float:
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = create_model(name, 11, 1, **options).to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.randn(32, 1, 64, 64).to(memory_format=fmt)
    y = torch.randint(0, 11, (32, 64, 64))
    times = []
    for _ in range(8):
        t = time.perf_counter()
        with autocast(precision, "cpu"):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times[3:])


def main() -> None:
    print(f"| network | {' | '.join(p + (' NHWC' if cl else ' NCHW') for p, cl in VARIANTS)} |")
    print("|---|" + "---|" * len(VARIANTS))
    for name, options in NETS:
        cells = [f"{step_ms(name, options, p, cl):.0f} ms" for p, cl in VARIANTS]
        print(f"| {name} {options} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
