"""docs/exercises.md stays true: every console block is re-run and compared.

Regenerate the outputs after a deliberate change with ``python tests/test_docs_exercises.py``.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import sys
from pathlib import Path

import pytest

from cnnlab.cli.main import main

PATH = Path(__file__).resolve().parents[1] / "docs" / "exercises.md"
BLOCK = re.compile(r"(```console\n\$ (cnnlab [^\n]+)\n)(.*?)(```)", flags=re.S)


def run_command(command: str) -> str:
    """What the command prints (stdout), as a user would see it piped (160 columns)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(shlex.split(command)[1:])
    assert code == 0, f"{command} exited {code}"
    return out.getvalue().rstrip() + "\n"


def examples() -> list[tuple[str, str]]:
    return [(m.group(2), m.group(3)) for m in BLOCK.finditer(PATH.read_text(encoding="utf-8"))]


def test_every_exercise_has_a_command():
    text = PATH.read_text(encoding="utf-8")
    for number in range(1, 13):
        assert re.search(rf"^## {number}\. ", text, flags=re.M), f"exercise {number} is missing"
    assert len(examples()) >= 8


@pytest.mark.slow
@pytest.mark.parametrize("command, expected", examples(), ids=[c[:70] for c, _ in examples()])
def test_exercise_output_is_current(command, expected):
    assert run_command(command) == expected, "regenerate with: python tests/test_docs_exercises.py"


if __name__ == "__main__":   # regenerate every console block's output in place
    text = PATH.read_text(encoding="utf-8")
    text = BLOCK.sub(lambda m: m.group(1) + run_command(m.group(2)) + m.group(4), text)
    PATH.write_text(text, encoding="utf-8")
    print(f"rewrote {PATH} ({len(examples())} commands)", file=sys.stderr)
