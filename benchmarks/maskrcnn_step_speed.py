"""Where a Mask R-CNN training step's time goes on CPU, and what makes it faster.

    python benchmarks/maskrcnn_step_speed.py                  # 64×64 Fashion-MNIST scenes, batch 16
    python benchmarks/maskrcnn_step_speed.py --items digits --size 32     # the quick study's scenes

Real targets (scenes drawn by cnnlab.data.scenes, 2–4 objects each, as ``study semantic-vs-instance``), the
network of ``cnnlab segment train --task instance`` (ResNet-18 + FPN of 64 channels), Adam. Each variant: the
median of 8 steps after 3 warm-up steps, in one process; then torch.profiler's top operators of the default
(self CPU time, 3 steps).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from cnnlab.data.instances import from_label_image
from cnnlab.data.scenes import SceneConfig, make_scenes
from cnnlab.machine import keep_freed_memory
from cnnlab.memory.step import autocast
from cnnlab.models import create_model
from cnnlab.study.common import machine_line
from cnnlab.train.tasks.instance import make_target


def batch(items: str, size: int, n: int) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]], int]:
    """``n`` standardised scene images, their targets, and the classes (background included)."""
    side = size
    scenes = make_scenes(SceneConfig(source=items, count=n * 10, size=(side, side), objects=(2, 4), same_class=0.5,
                                     item_px=(max(2, round(side * 24 / 64)), max(2, round(side * 36 / 64)))))
    s = scenes.splits["train"]
    images = [(s.images[i].float() / 255 - 0.2) / 0.3 for i in range(n)]
    targets = []
    for i in range(n):
        masks, labels = from_label_image(s.instances[i].numpy(), s.instance_classes[i])
        targets.append(make_target(masks, labels))
    return images, targets, len(scenes.classes)


def step_s(model: torch.nn.Module, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]],
           precision: str, steps: int = 8, warm: int = 3) -> float:
    """Median seconds of ``steps`` Adam training steps after ``warm`` warm-up steps."""
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    model.train()
    times = []
    for k in range(warm + steps):
        t = time.perf_counter()
        with autocast(precision, "cpu"):
            losses = model(images, targets)
        loss = sum(v.float() for v in losses.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if k >= warm:
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def build(classes: int, size: int, options: dict[str, int]) -> torch.nn.Module:
    """``segment train --task instance``'s network (64 pyramid channels) with ``options`` changed."""
    torch.manual_seed(0)
    return create_model("maskrcnn", num_classes=classes, in_channels=1, image_size=size,
                        **{"fpn_channels": 64, **options})


def parse_variant(text: str) -> tuple[dict[str, int], str]:
    """``roi_sampling=1,box_batch_size_per_image=16:fp32`` -> (model options, precision); ``:fp32`` = defaults."""
    opts, precision = text.rsplit(":", 1)
    return {k: int(v) for k, v in (o.split("=") for o in opts.split(",") if o)}, precision


def main() -> None:
    """Time each variant, then profile the default."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", default="fashion-mnist")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--variants", default=":fp32;roi_sampling=1:fp32;:bf16-amp;roi_sampling=1:bf16-amp",
                    help="model options (k=v,k=v) : precision, separated by ';' (empty options: the defaults)")
    args = ap.parse_args()
    keep_freed_memory()
    images, targets, classes = batch(args.items, args.size, args.batch)
    print(f"{machine_line()}; {args.items} scenes {args.size}×{args.size}, batch {args.batch}")
    print("| model options (beyond the defaults) | precision | step | images/s |\n|---|---|---:|---:|")
    for v in args.variants.split(";"):
        options, precision = parse_variant(v)
        s = step_s(build(classes, args.size, options), images, targets, precision)
        shown = ", ".join(f"{k} {v}" for k, v in options.items()) or "the defaults"
        print(f"| {shown} | {precision} | {1000 * s:.0f} ms | {args.batch / s:.1f} |")
    model = build(classes, args.size, {})
    step_s(model, images, targets, "fp32", steps=1, warm=1)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step_s(model, images, targets, "fp32", steps=3, warm=0)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
