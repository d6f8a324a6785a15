"""The zoo bar chart is a real PNG, written atomically."""

from __future__ import annotations

import pytest

from cnnlab.errors import CnnlabError
from cnnlab.viz.zoo import plot_compare
from cnnlab.zoo import compare


def test_plot_writes_a_png(tmp_path):
    rows = compare(["lenet5", "resnet18"])
    path = plot_compare(rows, tmp_path / "z.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    with pytest.raises(CnnlabError, match="PNG"):
        plot_compare(rows, tmp_path / "z.pdf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["z.png"]
