"""cnnlab's training loop against a minimal loop in one process, in interleaved blocks of steps.

Fresh-process runs (``benchmarks/train_overhead.py``) are what a user sees, but
on a shared 2-core machine they drift by ±10 % from minute to minute, more than
the few per cent being measured. Here one process holds the minimal loop (its own
copy of the model, AdamW) and cnnlab ``Trainer`` objects, and runs them in
alternating blocks of ``--steps`` steps (ABBA order), so drift hits all alike;
each block's time is compared with the minimal loop's block of the same round.
cnnlab's blocks are its real ``Trainer.train_one_epoch`` (batches, step,
schedule, metrics, bookkeeping), asked for the last ``--steps`` steps of an epoch.

    python benchmarks/train_overhead_blocks.py                       # needs dataset-fashion-mnist
    python benchmarks/train_overhead_blocks.py --blocks 30 --steps 20 --loops none strong none-thread

Loops: ``none``/``basic``/``strong`` are ``cnnlab train --augment ...`` as it runs; ``-thread``
makes the batches in a background thread as on CUDA (the CPU default makes them between steps).
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

import cnnlab.train.engine as engine
from cnnlab.train import TrainConfig
from cnnlab.train.batches import prefetch
from cnnlab.data.normalise import normalise


def minimal_block(model: torch.nn.Module, opt: torch.optim.Optimizer, trainer: engine.Trainer, steps: int,
                  gen: torch.Generator) -> float:
    """Seconds for ``steps`` plain steps: shuffle, slice, standardise, forward, cross-entropy, backward, AdamW."""
    data, task, batch = trainer.data.train, trainer.task, trainer.cfg.batch
    perm = torch.randperm(len(data), generator=gen)
    start = time.perf_counter()
    for i in range(steps):
        idx = perm[i * batch:(i + 1) * batch]
        x, y = normalise(data.images[idx], task.mean, task.std), data.labels[idx]
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def cnnlab_block(trainer: engine.Trainer, steps: int, thread: bool) -> float:
    """Seconds for the last ``steps`` steps of an epoch of ``trainer`` (batches in a thread with ``thread``)."""
    engine.prefetch = (lambda make, todo, ahead: prefetch(make, todo, True)) if thread else prefetch
    trainer.state.step = trainer.steps_per_epoch - steps
    start = time.perf_counter()
    try:
        trainer.train_one_epoch(0)
    finally:
        engine.prefetch = prefetch
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="fashion-mnist")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20, help="steps per block (default 20)")
    ap.add_argument("--blocks", type=int, default=20, help="rounds of blocks (default 20)")
    ap.add_argument("--loops", nargs="+", default=["none", "strong", "none-thread"],
                    choices=["none", "basic", "strong", "none-thread", "basic-thread", "strong-thread"])
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    trainers = {aug: engine.Trainer(TrainConfig(data=args.data, batch=args.batch, epochs=100, augment=aug,
                                                out=f"{tmp}/{aug}"), progress=False)
                for aug in dict.fromkeys(loop.split("-")[0] for loop in args.loops)}
    first = next(iter(trainers.values()))
    if args.steps > first.steps_per_epoch:
        ap.error(f"--steps {args.steps} is more than the {first.steps_per_epoch} steps of an epoch at batch {args.batch}")
    for t in trainers.values():
        t.net.train()
    model = copy.deepcopy(first.model).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    gen = torch.Generator().manual_seed(0)
    runs = {"minimal": lambda: minimal_block(model, opt, first, args.steps, gen)}
    for loop in args.loops:
        aug = loop.split("-")[0]
        runs[loop] = lambda t=trainers[aug], th=loop.endswith("-thread"): cnnlab_block(t, args.steps, th)
    times: dict[str, list[float]] = {k: [] for k in runs}
    for run in runs.values():          # a discarded warm-up round: oneDNN's kernels, the allocator's pools
        run()
    for b in range(args.blocks):
        for name in (list(runs) if b % 2 == 0 else list(runs)[::-1]):
            times[name].append(runs[name]())
    for t in trainers.values():
        t.folder.release()
    print(f"machine: {platform.processor() or platform.machine()}, kernels {torch.backends.cpu.get_cpu_capability()}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}; {args.data}, batch {args.batch}, "
          f"{args.blocks} rounds of {args.steps}-step blocks in ABBA order, one process\n")
    print("| loop | ms per step (median block) | speed vs minimal, paired by round: median | quartiles |")
    print("|---|---:|---:|---:|")
    for name, ts in times.items():
        ratio = [m / t for m, t in zip(times["minimal"], ts)]
        q1, _, q3 = statistics.quantiles(ratio, n=4)
        label = "minimal hand-written loop" if name == "minimal" else (
            f"`cnnlab train --augment {name.split('-')[0]}`" + (", batches in a thread" if "thread" in name else ""))
        print(f"| {label} | {statistics.median(ts) / args.steps * 1000:.1f} | {statistics.median(ratio):.3f} | "
              f"{q1:.3f}–{q3:.3f} |")


if __name__ == "__main__":
    main()
