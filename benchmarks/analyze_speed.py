"""Analysis speed and memory: cnnlab analyze vs torchinfo.summary on ResNet-152.

Each measurement runs in a fresh Python process, so peak RSS (ru_maxrss)
belongs to that measurement alone. The model is built with real weights in
every case (as a user's model would be), so the baseline RSS includes its
60 M parameters (241 MB).

    python benchmarks/analyze_speed.py            # needs: pip install torchinfo
    python benchmarks/analyze_speed.py --batches 1 8 1024
    python benchmarks/analyze_speed.py --model geron_ex2 --batches 50

Prints a markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys

import torch

CHILD = r"""
import json, resource, sys, time, torch, torchvision
tool, batch, model_name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
torch.set_num_threads(2)
if model_name.endswith(".yaml"):
    import cnnlab
    spec = cnnlab.load_spec(model_name)
    model, shape = cnnlab.build(spec), spec.input_shape
else:
    model, shape = getattr(torchvision.models, model_name)(), (3, 224, 224)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
t0 = time.perf_counter()
if tool == "cnnlab":
    import cnnlab
    r = cnnlab.analyze(model, shape, batch_size=batch)
    extra = {"layers": len(r.layers), "params": r.total_params, "macs": r.total_macs,
             "training_bytes": r.memory.training_bytes}
else:
    import torchinfo
    s = torchinfo.summary(model, input_size=(batch, *shape), verbose=0, device="cpu")
    extra = {"params": s.total_params, "macs": s.total_mult_adds // batch,
             "estimated_total_bytes": int(s.total_input + s.total_output_bytes + s.total_param_bytes)}
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "peak_rss": peak, "base_rss": base, **extra}))
"""


def measure(tool: str, batch: int, model: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, tool, str(batch), model],
                          capture_output=True, text=True, timeout=1800, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["killed"])[-1]
        return {"error": f"exit {proc.returncode}: {tail[:120]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet152",
                    help="a torchvision model name (input 3x224x224) or a spec .yaml (its own input)")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 32, 1024])
    ap.add_argument("--torchinfo-max-batch", type=int, default=64,
                    help="torchinfo really allocates the forward pass; larger batches are skipped")
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, python {platform.python_version()}\n")
    print("| tool | model | batch | wall time (s) | peak RSS (MiB) | RSS above model (MiB) | notes |")
    print("|---|---|---:|---:|---:|---:|---|")
    for batch in args.batches:
        for tool in ("cnnlab", "torchinfo"):
            if tool == "torchinfo" and batch > args.torchinfo_max_batch:
                print(f"| torchinfo | {args.model} | {batch} | — | — | — | not run: it would allocate "
                      f"the real forward pass at batch {batch} |")
                continue
            m = measure(tool, batch, args.model)
            if "error" in m:
                print(f"| {tool} | {args.model} | {batch} | — | — | — | {m['error']} |")
                continue
            note = (f"{m['layers']} layers, {m['params']:,} params, {m['macs']:,} MACs/instance, "
                    f"textbook training {m['training_bytes'] / 1e6:,.1f} MB" if tool == "cnnlab" else
                    f"{m['params']:,} params, {m['macs']:,} MACs/instance, "
                    f"'Estimated Total Size' {m['estimated_total_bytes'] / 1e6:,.1f} MB")
            print(f"| {tool} | {args.model} | {batch} | {m['seconds']:.2f} | {m['peak_rss'] / 2**20:,.0f} | "
                  f"{(m['peak_rss'] - m['base_rss']) / 2**20:,.0f} | {note} |")


if __name__ == "__main__":
    main()
