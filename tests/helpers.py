"""Helpers the test modules share (no test module imports another)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file

from cnnlab.cli.main import main

TINY = """\
input: [1, 8, 8]
layers:
  - conv: {filters: 8, kernel: 3, padding: same, activation: relu}
  - maxpool: {size: 2}
  - flatten
  - dense: {units: 10}
"""
SMALL = "small_cnn"


def run(capsys, *argv: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    """``cnnlab ARGV`` in this process: (exit status, stdout, stderr)."""
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse errors
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def cli(*argv: str) -> list[str]:
    """The command line of ``cnnlab ARGV`` in a fresh Python process."""
    return [sys.executable, "-m", "cnnlab", *argv]


def run_ok(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``cnnlab ARGS`` in a fresh process, which must succeed."""
    p = subprocess.run(cli(*args), capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    return p


def weights(run_folder: Path, name: str = "last.safetensors") -> dict[str, torch.Tensor]:
    """The tensors of a run's weights file."""
    return load_file(str(run_folder / name))


def same(a: dict, b: dict, atol: float = 0.0) -> bool:
    """Two state dicts with the same keys and (within ``atol``) the same values."""
    return a.keys() == b.keys() and all(torch.allclose(a[k].float(), b[k].float(), atol=atol, rtol=0) for k in a)


def make_folder(root: Path, classes=("cat", "dog"), per_class: int = 6, size=(12, 10), mode="RGB") -> None:  # type: ignore[no-untyped-def]
    """An image folder ``root/<class>/<i>.png`` of seeded random images."""
    rng = np.random.default_rng(1)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            arr = rng.integers(0, 256, (*size, 3) if mode == "RGB" else size, dtype=np.uint8)
            Image.fromarray(arr, mode).save(root / c / f"{i}.png")
