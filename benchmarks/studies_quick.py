"""How long each study's ``--quick`` form takes, whole command, in a fresh folder (the issue's goal: ≤ 3 minutes on
2 cores each); and, with ``--full``, the full forms (goal: ≤ 20 minutes each).

    python benchmarks/studies_quick.py --out runs/studies-quick
    python benchmarks/studies_quick.py --out runs/studies-full --full --studies pooling-vs-stride lrn

Each study runs as ``cnnlab study NAME [--quick] --out OUT/NAME --no-progress`` in a subprocess, one after the other
(never two at once on 2 cores); its folder must not exist yet (a resumed study would be timed short). Prints a
markdown table: study, whole-command seconds, and the report's findings.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

STUDIES = ("remedies", "pooling-vs-stride", "lrn", "augmentation", "segmentation-resolution", "semantic-vs-instance")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/studies-quick")
    p.add_argument("--studies", nargs="+", default=list(STUDIES), choices=STUDIES)
    p.add_argument("--full", action="store_true", help="the full forms instead of --quick")
    args = p.parse_args()
    rows = []
    for name in args.studies:
        folder = Path(args.out) / name
        if folder.exists():
            sys.exit(f"{folder}: exists; give --out a new folder (a resumed study would be timed short)")
        argv = [sys.executable, "-m", "cnnlab", "study", name, "--out", str(folder), "--no-progress"]
        argv += [] if args.full else ["--quick"]
        print(" ".join(argv[2:]), file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, stdout=sys.stderr)      # the table alone on stdout
        seconds = time.perf_counter() - t0
        findings = json.loads((folder / "report.json").read_text())["findings"]
        rows.append((name, seconds, findings))
    from cnnlab.study.common import machine_line

    cpu = machine_line()          # the CPU's model name, torch threads and version
    print(f"\n{'full' if args.full else 'quick'} forms, {cpu}\n")
    print("| study | whole command |\n|---|---:|")
    for name, seconds, _ in rows:
        print(f"| `cnnlab study {name}{'' if args.full else ' --quick'}` | {seconds:.0f} s ({seconds / 60:.1f} min) |")
    for name, _, findings in rows:
        print(f"\n{name}:\n" + "\n".join("- " + f.replace("**", "") for f in findings))


if __name__ == "__main__":
    main()
