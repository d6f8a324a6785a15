"""One FCN pass vs the explicit sliding window over the same positions (time and MACs, one run).

For each network (cnnlab's small CNN at 28×28, VGG-16 at 224×224) and canvas (224×224, 448×448; a
canvas of Fashion-MNIST items for the small CNN, noise for VGG-16, whose fresh weights make any image
alike): the converted FCN scores every window position in one pass; the sliding window classifies
each window crop with the original classifier, once with all crops in batches of ``--batch`` and once
one crop at a time. MACs come from ``cnnlab.analyze`` (the FCN at the canvas vs the classifier × number
of windows); times are the median of ``--repeats`` runs, in this process, after a warm-up.

    python benchmarks/fcn_speed.py                        # ~10 minutes on 2 cores (VGG-16's windows)
    python benchmarks/fcn_speed.py --nets small_cnn       # seconds
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from cnnlab import analyze
from cnnlab.fcn.convert import convert
from cnnlab.fcn.scan import output_stride

NETS = {"small_cnn": ((1, 28, 28), [224, 448]), "vgg16": ((3, 224, 224), [448])}


def classifier(name: str, shape: tuple[int, int, int]) -> torch.nn.Module:
    torch.manual_seed(0)
    if name == "small_cnn":
        from cnnlab.train.model import build_model

        return build_model(name, shape, 10)[0].eval()
    from cnnlab.models import create_model

    return create_model(name).eval()


def canvas(shape: tuple[int, int, int], size: int) -> torch.Tensor:
    """Fashion-MNIST items pasted on a black canvas (grey nets), else noise."""
    if shape[0] == 1:
        try:
            from cnnlab.data import load_data

            items = load_data("fashion-mnist").test.images[:64]
        except Exception:   # the benchmark still runs without the Debian package: digits, upscaled
            from torchvision.transforms.v2 import functional as TF

            from cnnlab.data import load_data

            items = TF.resize(load_data("digits").test.images[:64], [28, 28], antialias=True)
        img = torch.zeros(1, size, size)
        g = torch.Generator().manual_seed(0)
        for k in range(size * size // (28 * 28 * 6)):
            y, x = (int(v) for v in torch.randint(0, size - 28, (2,), generator=g))
            img[:, y:y + 28, x:x + 28] = torch.maximum(img[:, y:y + 28, x:x + 28], items[k % len(items)].float())
        return (img / 255).unsqueeze(0)
    return torch.rand(1, *shape[:1], size, size, generator=torch.Generator().manual_seed(0))


def timed(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nets", nargs="+", default=list(NETS), choices=list(NETS))
    ap.add_argument("--batch", type=int, default=64, help="crops per batch for the batched sliding window")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, kernels {torch.backends.cpu.get_cpu_capability()}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}\n")
    print("| network | canvas | positions | FCN MACs | window MACs | MAC ratio | FCN s | windows batched s | "
          "ratio | one window at a time s | ratio |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.nets:
        shape, sizes = NETS[name]
        model = classifier(name, shape)
        fcn = convert(model, shape).fcn.eval()
        s = output_stride(fcn)
        for size in sizes:
            x = canvas(shape, size)
            with torch.no_grad():
                grid = fcn(x)
            rows, cols = grid.shape[-2:]
            crops = torch.cat([x[:, :, i * s:i * s + shape[1], j * s:j * s + shape[2]]
                               for i in range(rows) for j in range(cols)])
            with torch.no_grad():
                fcn_s = timed(lambda: fcn(x), args.repeats)
                batched_s = timed(lambda: [model(crops[k:k + args.batch]) for k in range(0, len(crops), args.batch)],
                                  args.repeats)
                single_n = min(len(crops), 256)          # one at a time: timed on up to 256 windows, scaled
                single_s = timed(lambda: [model(crops[k:k + 1]) for k in range(single_n)], 1) * len(crops) / single_n
            fcn_macs = analyze(fcn, (shape[0], size, size)).total_macs
            window_macs = analyze(model, shape).total_macs * len(crops)
            print(f"| {name} | {size}×{size} | {rows}×{cols} = {len(crops)} | {fcn_macs:,} | {window_macs:,} | "
                  f"{window_macs / fcn_macs:.1f}× | {fcn_s:.3f} | {batched_s:.3f} | {batched_s / fcn_s:.1f}× | "
                  f"{single_s:.2f} | {single_s / fcn_s:.0f}× |", flush=True)


if __name__ == "__main__":
    main()
