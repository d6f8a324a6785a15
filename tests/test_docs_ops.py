"""docs/ops.md stays true: every console example is re-run and compared."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from cnnlab.cli.main import main

DOC = (Path(__file__).resolve().parents[1] / "docs" / "ops.md").read_text(encoding="utf-8")
EXAMPLES = re.findall(r"```console\n\$ (cnnlab .+?)\n(.*?)```", DOC, flags=re.S)


def test_doc_has_examples():
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize("command,expected", EXAMPLES, ids=[c[:60] for c, _ in EXAMPLES])
def test_doc_example(capsys, command, expected):
    assert main(shlex.split(command)[1:]) == 0
    assert capsys.readouterr().out.rstrip() == expected.rstrip()
