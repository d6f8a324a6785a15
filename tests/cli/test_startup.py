"""Start-up: the parser, --help, --version and the NumPy-only ``ops`` never import torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHECK = """
import sys
from cnnlab.cli.main import main
try:
    main({argv!r})
except SystemExit:
    pass
heavy = sorted(m for m in ("torch", "torchvision", "matplotlib") if m in sys.modules)
print("HEAVY", ",".join(heavy))
"""


@pytest.mark.parametrize("argv", [
    ["--help"], ["--version"], ["train", "--help"], ["memory", "--help"], ["zoo", "--help"],
    ["ops", "conv2d", "--input", "[[1,2],[3,4]]", "--kernel", "[[1,0],[0,1]]", "--explain"],
    ["ops", "maxpool", "--input", "1,2,3,4", "--size", "2", "--json"],
])
def test_help_version_and_ops_load_no_torch(argv):
    out = subprocess.run([sys.executable, "-c", CHECK.format(argv=argv)], capture_output=True, text=True,
                         check=True).stdout
    assert "HEAVY \n" in out or out.rstrip().endswith("HEAVY"), out[-500:]


def test_the_library_still_loads_torch_when_asked():
    out = subprocess.run([sys.executable, "-c", "import sys, cnnlab; print('torch' in sys.modules); "
                          "cnnlab.analyze; print('torch' in sys.modules)"], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "True"]
