"""The spec networks that ship inside the package, usable by name in every command and in the Python API
(``cnnlab analyze geron_ex2``, ``cnnlab.load_spec("small_cnn")``) from any folder (torch-free)."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).parent

PACKAGED_SPECS: dict[str, Path] = {
    "small_cnn": _HERE / "train" / "small_cnn.yaml",
    "small_cnn_valid": _HERE / "train" / "small_cnn_valid.yaml",   # for exact FCN scans
    "fashion_cnn": _HERE / "train" / "fashion_cnn.yaml",           # a Fashion-MNIST network
    "speedrun_cnn": _HERE / "train" / "speedrun_cnn.yaml",         # the speedrun recipe's network
}
EXAMPLES_DIR = _HERE / "examples"
# the README's and the exercises' example specs (the repository's examples/ links to them)
EXAMPLE_SPECS: dict[str, Path] = {p.stem: p for p in sorted(EXAMPLES_DIR.glob("*.yaml"))}
PACKAGED_SPECS.update(EXAMPLE_SPECS)


def packaged_path(target: str | Path) -> Path:
    """``target`` as a path: a packaged spec's file for its name (a name has no suffix, so it never means a spec
    file of this folder; a folder of that name here, such as a run, does not hide it)."""
    return PACKAGED_SPECS.get(str(target), Path(target))
