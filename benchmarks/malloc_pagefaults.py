"""Training steps with glibc's malloc defaults vs with freed memory kept (cnnlab.machine.keep_freed_memory).

    python benchmarks/malloc_pagefaults.py --rounds 3            # small_cnn, batch 128, bf16-amp + channels-last

Each measurement is a fresh process (the malloc setting must come before the first allocation): 3 warm-up steps,
then 30 timed AdamW steps on random data; the two settings alternate, ``--rounds`` times. Prints images/s, user and
system CPU seconds and minor page faults of the 30 steps.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

CHILD = r"""
import os, resource, time, torch
from cnnlab.machine import keep_freed_memory
if os.environ["KEEP"] == "1":
    keep_freed_memory()
from cnnlab.train.model import build_model
torch.set_num_threads(int(os.environ["THREADS"]))
b, bf16 = int(os.environ["BATCH"]), os.environ["PRECISION"] == "bf16-amp"
m = build_model(os.environ["NET"], (1, 28, 28), 10)[0].to(memory_format=torch.channels_last)
opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
x = torch.randn(b, 1, 28, 28).to(memory_format=torch.channels_last)
y = torch.randint(0, 10, (b,))
def step():
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = torch.nn.functional.cross_entropy(m(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
for _ in range(3):
    step()
r0, t = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
for _ in range(30):
    step()
dt, r1 = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF)
print(f"{30 * b / dt:.0f} {r1.ru_utime - r0.ru_utime:.2f} {r1.ru_stime - r0.ru_stime:.2f} {r1.ru_minflt - r0.ru_minflt}")
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--net", default="small_cnn")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--precision", default="bf16-amp", choices=("fp32", "bf16-amp"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    print(f"{args.net}, batch {args.batch}, {args.precision}, channels-last, {args.threads} threads\n")
    print("| round | malloc | images/s | user s | system s | minor page faults |\n|---|---|---:|---:|---:|---:|")
    for r in range(1, args.rounds + 1):
        for keep in ("0", "1"):
            env = {**os.environ, "KEEP": keep, "NET": args.net, "BATCH": str(args.batch),
                   "PRECISION": args.precision, "THREADS": str(args.threads)}
            out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
            ips, user, system, faults = out.stdout.split()
            print(f"| {r} | {'freed memory kept' if keep == '1' else 'glibc defaults'} | {int(ips):,} | {user} | "
                  f"{system} | {int(faults):,} |", flush=True)


if __name__ == "__main__":
    main()
