"""The network drawn: blocks for a chain, a layered graph with its joins and skip arcs for a DAG (SVG)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
import torch
from torch import nn

from cnnlab.analysis import analyze
from cnnlab.analysis.drawing import draw_svg, layer_graph
from cnnlab.targets import resolve_target
from tests.helpers import run

NS = {"s": "http://www.w3.org/2000/svg"}


def _report(target: str, shape=None):  # type: ignore[no-untyped-def]
    t = resolve_target(target, shape)
    return analyze(t.network, t.input_shape, name=t.name)


def _svg(text: str) -> ET.Element:
    return ET.fromstring(text)           # well-formed XML, or this raises


def _groups(root: ET.Element, cls: str) -> list[ET.Element]:
    return [g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == cls]


@pytest.mark.parametrize("target, residual_or_concat", [
    ("resnet18", 8),        # 2+2+2+2 basic blocks, one residual sum each (He et al. 2016, table 1)
    ("googlenet", 9),       # inception 3a, 3b, 4a–4e, 5a, 5b: nine concatenations (Szegedy et al. 2015)
    ("unet", 4),            # four skip concatenations, one per decoder level (Ronneberger et al. 2015)
])
def test_a_dag_shows_its_joins(target: str, residual_or_concat: int) -> None:
    report = _report(target)
    graph = layer_graph(report)
    assert not graph.chain and graph.traced
    joins = [n for n in graph.nodes.values() if n.index is None]
    assert len(joins) == residual_or_concat
    into = Counter(b for _, b in graph.edges)
    assert all(into[j.id] >= 2 for j in joins)
    root = _svg(draw_svg(report, graph))
    assert len(_groups(root, "layer")) == len(report.layers)
    assert len(_groups(root, "join")) == residual_or_concat


def test_resnet18_skips_are_arcs_and_every_layer_is_reached() -> None:
    report = _report("resnet18")
    root = _svg(draw_svg(report))
    skips = [p for p in root.iter("{http://www.w3.org/2000/svg}path") if "skip" in (p.get("class") or "")]
    assert len(skips) == 8 and all((p.get("data-to") or "").startswith("join-") for p in skips)
    indices = sorted(int(g.get("data-index")) for g in _groups(root, "layer"))
    assert indices == [row.index for row in report.layers]


def test_a_chain_is_blocks_that_shrink_with_the_map(tmp_path: Path) -> None:
    report = _report("examples/geron_ex2.yaml")
    graph = layer_graph(report)
    assert graph.chain and len(graph.edges) == len(report.layers)
    root = _svg(draw_svg(report, graph))
    blocks = _groups(root, "layer")
    assert [b.get("data-index") for b in blocks] == ["1", "2", "3"]

    def front_height(g: ET.Element) -> float:
        ys = [float(p.split(",")[1]) for p in g.find("s:polygon", NS).get("points").split()]
        return max(ys) - min(ys)

    heights = [front_height(b) for b in blocks]          # 100, 50, 25 rows: each block lower than the last
    assert heights[0] > heights[1] > heights[2]
    assert "receptive field 15×15, stride 8×8" in blocks[2].find("s:title", NS).text


def test_names_are_escaped(tmp_path: Path) -> None:
    spec = tmp_path / "odd.yaml"
    spec.write_text('input: [1, 8, 8]\nlayers:\n  - conv: {filters: 2, kernel: 3, name: "<script>x</script>&"}\n'
                    "  - flatten\n")
    text = draw_svg(_report(str(spec)))
    assert "<script>" not in text
    titles = [t.text or "" for t in _svg(text).iter("{http://www.w3.org/2000/svg}title")]
    assert any("<script>x</script>&" in t for t in titles)        # read back as the name it is


class Peeks(nn.Module):
    """A forward fx cannot trace (it branches on a size): drawn in call order."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 2, 3), nn.Conv2d(2, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.a(x)
        return self.b(x) if x.shape[-1] > 5 else x


def test_an_untraceable_network_is_drawn_in_call_order() -> None:
    report = analyze(Peeks(), (1, 9, 9))
    graph = layer_graph(report)
    assert graph.chain and not graph.traced
    assert graph.edges == [("input", "layer-1"), ("layer-1", "layer-2")]


def test_analyze_plot_writes_the_drawing(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "net.svg"
    code, stdout, err = run(capsys, "analyze", "resnet18", "--plot", str(out))
    assert code == 0, err
    assert f"drawing: {out}" in stdout
    root = _svg(out.read_text())
    assert len(_groups(root, "join")) == 8
    code, stdout, _ = run(capsys, "analyze", "resnet18", "--plot", str(tmp_path / "b.svg"), "--json")
    assert code == 0 and stdout.lstrip().startswith("{")          # --json stays pure JSON
    code, _, err = run(capsys, "analyze", "resnet18", "--plot", str(tmp_path / "net.png"))
    assert code == 2 and "the drawing is SVG" in err


class Branches(nn.Module):
    """Two branches summed, with names a browser would read as markup."""

    def __init__(self) -> None:
        super().__init__()
        self.add_module("a<b>&", nn.Conv2d(1, 2, 3, padding=1))
        self.add_module("c", nn.Conv2d(1, 2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, "a<b>&")(x) + self.c(x)


def test_names_in_a_graph_are_escaped_too() -> None:
    report = analyze(Branches(), (1, 6, 6))
    graph = layer_graph(report)
    assert not graph.chain and sum(n.index is None for n in graph.nodes.values()) == 1
    text = draw_svg(report, graph)
    assert "a<b>&" not in text
    labels = [t.text or "" for t in _svg(text).iter("{http://www.w3.org/2000/svg}text")]
    assert any(label.startswith("a<b>& ·") for label in labels)


class OneLayerSkip(nn.Module):
    """``x + conv(x)``: the skip jumps over one layer."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


def test_a_skip_over_one_layer_is_an_arc_and_the_adjacent_edges_are_lines() -> None:
    root = _svg(draw_svg(analyze(OneLayerSkip(), (2, 5, 5))))
    arcs = [(p.get("data-from"), p.get("data-to")) for p in root.iter("{http://www.w3.org/2000/svg}path")
            if "skip" in (p.get("class") or "")]
    lines = sorted((e.get("data-from"), e.get("data-to")) for e in root.iter("{http://www.w3.org/2000/svg}line"))
    assert arcs == [("input", "join-1")]
    assert lines == [("input", "layer-1"), ("layer-1", "join-1")]
