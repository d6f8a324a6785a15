"""Time of one training step (AdamW, batch 128, 28×28 grey) by memory layout and precision, alternated.

    python benchmarks/train_step_speed.py                          # small_cnn and fashion_cnn
    python benchmarks/train_step_speed.py --models small_cnn --rounds 5

Each round times every variant once (``--steps`` steps after 3 warm-up steps), so the machine's
noise spreads over all of them; the table gives the median per variant and its speed-up over
fp32 + NCHW. bf16-amp is fast only where the CPU computes in bfloat16 natively (AVX512_BF16, AMX);
elsewhere oneDNN emulates it.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from cnnlab.train.model import build_model

VARIANTS = [("fp32", False), ("fp32", True), ("bf16-amp", False), ("bf16-amp", True)]


def step_ms(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
            precision: str, channels_last: bool, steps: int) -> float:
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    x = x.contiguous(memory_format=fmt)
    for i in range(steps + 3):
        if i == 3:
            start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16-amp"):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (time.perf_counter() - start) / steps * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["small_cnn", "fashion_cnn"])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, kernels {torch.backends.cpu.get_cpu_capability()}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}; AdamW, batch {args.batch}, "
          f"median of {args.rounds} alternated rounds of {args.steps} steps\n")
    print("| model | precision | layout | ms per step | images/s | speed-up |\n|---|---|---|---:|---:|---:|")
    for name in args.models:
        torch.manual_seed(0)
        model, _ = build_model(name, (1, 28, 28), 10)
        opt = torch.optim.AdamW(model.parameters(), 1e-3)
        x, y = torch.randn(args.batch, 1, 28, 28), torch.randint(0, 10, (args.batch,))
        times: dict[tuple[str, bool], list[float]] = {v: [] for v in VARIANTS}
        for _ in range(args.rounds):
            for v in VARIANTS:
                times[v].append(step_ms(model, opt, x, y, v[0], v[1], args.steps))
        base = statistics.median(times[VARIANTS[0]])
        for (precision, cl), ts in times.items():
            ms = statistics.median(ts)
            print(f"| {name} | {precision} | {'NHWC (channels_last)' if cl else 'NCHW'} | {ms:.1f} | "
                  f"{args.batch / ms * 1000:,.0f} | {base / ms:.2f}× |", flush=True)


if __name__ == "__main__":
    main()
