"""docs/zoo.md's comparison table is what ``cnnlab zoo compare`` computes today."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cnnlab.models import analyzable_names
from cnnlab.zoo import compare

DOC = (Path(__file__).resolve().parents[1] / "docs" / "zoo.md").read_text(encoding="utf-8")
ROW = re.compile(r"^\| (\w+) \| (\d{4}) \| ([\d×]+) \| (\d+) \| ([\d,]+) \| ([\d,]+) \| ([\d.,]+) \| ([\d.,]+) \|$",
                 re.MULTILINE)


@pytest.mark.slow
def test_the_table_in_docs_zoo_md_is_current():
    documented = {m[0]: m for m in ROW.findall(DOC)}
    assert list(documented) == analyzable_names(), "regenerate with: python benchmarks/zoo_table.py"
    for row in compare():
        name, year, shape, depth, params, macs, inf_mb, train_mb = documented[row.name]
        assert (int(year), shape, int(depth)) == (row.year, "×".join(map(str, row.input_shape)), row.depth)
        assert int(params.replace(",", "")) == row.params
        assert int(macs.replace(",", "")) == row.macs
        assert inf_mb == f"{row.inference_bytes / 1e6:,.1f}" and train_mb == f"{row.training_bytes / 1e6:,.1f}"
