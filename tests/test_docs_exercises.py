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


# a study's quick form takes minutes and its times differ by machine: the docs quote a measured run, whose
# report.json is kept in docs/studies/NAME/, and this test re-states its findings with the current code
STUDY_BLOCK = re.compile(r"(```study\n\$ (cnnlab study ([a-z-]+) --quick)\n)(.*?)(```)", flags=re.S)
STUDIES = PATH.parent / "studies"


def study_text(name: str) -> str:
    """What ``cnnlab study NAME --quick`` printed, from the measured report kept in docs/studies/NAME."""
    import importlib
    import json

    module = importlib.import_module("cnnlab.study." + name.replace("-", "_"))
    report = json.loads((STUDIES / name / "report.json").read_text(encoding="utf-8"))
    lines = ["- " + line.replace("**", "") for line in module.findings(report)]
    return "\n".join(lines) + f"\nreport: study-{name}/report.md\n"


def study_blocks() -> list[tuple[str, str]]:
    return [(m.group(3), m.group(4)) for m in STUDY_BLOCK.finditer(PATH.read_text(encoding="utf-8"))]


def test_every_study_quoted_is_its_measured_report_restated_by_the_current_code():
    blocks = study_blocks()
    assert {name for name, _ in blocks} >= {"remedies", "pooling-vs-stride", "lrn", "augmentation", "segmentation-resolution",
                                           "semantic-vs-instance"}
    for name, text in blocks:
        import json

        report = json.loads((STUDIES / name / "report.json").read_text(encoding="utf-8"))
        assert report["config"]["quick"] and report["study"] == name
        assert text == study_text(name), "regenerate with: python tests/test_docs_exercises.py --studies"
        for figure in report["figures"]:
            assert (STUDIES / name / figure).stat().st_size > 0


def regenerate_studies(measured: Path | None = None) -> None:
    """Keep each quoted study's report, report.md and figures: from ``measured/NAME`` (the folders of
    ``benchmarks/studies_quick.py``, which timed them), else from a fresh run of its quick form (minutes)."""
    import json
    import shutil
    import subprocess
    import tempfile

    for name, _ in study_blocks():
        with tempfile.TemporaryDirectory() as tmp:
            source = measured / name if measured else Path(tmp) / "s"
            if not measured:
                subprocess.run([sys.executable, "-m", "cnnlab", "study", name, "--quick", "--no-progress", "--out",
                                str(source)], check=True)
            target = STUDIES / name
            target.mkdir(parents=True, exist_ok=True)
            report = json.loads((source / "report.json").read_text())
            for f in ["report.json", "report.md", *report["figures"]]:
                shutil.copy(source / f, target / f)


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


if __name__ == "__main__":   # regenerate every console block's output in place (--studies: rerun the studies too)
    if "--studies" in sys.argv:       # --studies [FOLDER of benchmarks/studies_quick.py]
        rest = sys.argv[sys.argv.index("--studies") + 1:]
        regenerate_studies(Path(rest[0]) if rest else None)
    text = PATH.read_text(encoding="utf-8")
    text = BLOCK.sub(lambda m: m.group(1) + run_command(m.group(2)) + m.group(4), text)
    text = STUDY_BLOCK.sub(lambda m: m.group(1) + study_text(m.group(3)) + m.group(5), text)
    PATH.write_text(text, encoding="utf-8")
    print(f"rewrote {PATH} ({len(examples())} commands)", file=sys.stderr)
