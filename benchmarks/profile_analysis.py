"""Where the analysis spends its time: cProfile of `analyze` and `estimate_memory`, first call in a process.

    python benchmarks/profile_analysis.py            # ResNet-152 analyze, GoogLeNet memory at batch 8
    python benchmarks/profile_analysis.py --top 20

Prints, for each call, the wall time without the profiler and the functions
with the largest cumulative time under it (torch's and cnnlab's, not Python's
import machinery). docs/benchmarks.md keeps the output from before and after
the analysis moved from fake tensors to meta.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

CHILD = r"""
import cProfile, io, pstats, sys, time, torch, torchvision
torch.set_num_threads(2)
what, top = sys.argv[1], int(sys.argv[2])
if what == "analyze":
    from cnnlab import analyze
    model = torchvision.models.resnet152()
    call = lambda: analyze(model, (3, 224, 224), batch_size=1)
else:
    from cnnlab.memory.estimate import estimate_memory
    from cnnlab.models import create_model
    with torch.device("meta"):
        model = create_model("googlenet")
    call = lambda: estimate_memory(model, (3, 224, 224), 8, "sgd")
profiler = cProfile.Profile()
profiler.enable(); call(); profiler.disable()
t = time.perf_counter(); call(); again = time.perf_counter() - t
out = io.StringIO()
stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
stats.print_stats(r"^(?!.*(importlib|<frozen|<string>|builtins)).*", top)
print(f"wall time of a second call, no profiler: {again:.3f} s")
print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:6000])
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()
    for what, label in (("analyze", "analyze(resnet152, (3, 224, 224))"),
                        ("memory", "estimate_memory(googlenet, (3, 224, 224), 8)")):
        print(f"## {label}, first call in a fresh process\n")
        proc = subprocess.run([sys.executable, "-c", CHILD, what, str(args.top)], capture_output=True, text=True,
                              check=False)
        print(proc.stdout if proc.returncode == 0 else proc.stderr[-2000:])


if __name__ == "__main__":
    main()
