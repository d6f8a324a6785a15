"""The network drawn, from its analysis: feature-map blocks for a chain, a layered graph for a DAG (SVG).

A chain (every layer takes the previous one's output) is drawn the way the
book draws LeNet-5 and AlexNet: one block per layer whose height follows the
map's height, whose depth follows its width and whose thickness follows its
channels (each log-scaled, so VGG fits on a screen), labelled with the name,
the shape and the parameters. A network with branches (Inception's
concatenations, ResNet's skips, U-Net's and FCN's skip joins) is drawn as a
layered graph of its layers and joins, traced by ``torch.fx``; the skip edges
(an edge that jumps over layers) are drawn as arcs. Every layer's element
carries ``data-index`` (the report's row) and a tooltip with its shape,
parameters, receptive field and stride; ``cnnlab analyze --plot`` writes the
same SVG as the page shows.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from html import escape
from typing import Any

import torch
from torch import fx, nn

# merge layers that are rows of their own (a Keras model's Add, Concatenate …): drawn as joins, still clickable
MERGE_ROWS = {"Add": "+", "Subtract": "−", "Multiply": "×", "Average": "avg", "Maximum": "max", "Minimum": "min",
              "Concatenate": "concat"}
JOINS = {operator.add: "+", operator.iadd: "+", torch.add: "+", "add": "+", "add_": "+",
         operator.mul: "×", operator.imul: "×", torch.mul: "×", "mul": "×", "mul_": "×",
         torch.cat: "concat", torch.concat: "concat", torch.stack: "stack"}


@dataclass
class Node:
    """A layer (``index`` > 0), the input (``index`` 0) or a join where branches meet (``index`` None)."""

    id: str
    index: int | None
    name: str
    kind: str
    shape: tuple[int, ...] = ()
    params: int = 0
    tip: str = ""
    join: bool = False         # where branches meet: an fx join, or a merge layer (Keras's Add, Concatenate …)


@dataclass
class Graph:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)
    traced: bool = True

    @property
    def chain(self) -> bool:
        """Every node has at most one input and one output, and nothing joins."""
        ins: dict[str, int] = {}
        outs: dict[str, int] = {}
        for a, b in self.edges:
            outs[a] = outs.get(a, 0) + 1
            ins[b] = ins.get(b, 0) + 1
        return all(n.index is not None for n in self.nodes.values()) and max([*ins.values(), *outs.values(), 0]) <= 1

    def add_edge(self, a: str, b: str) -> None:
        if a != b and (a, b) not in self.edges:
            self.edges.append((a, b))


def _dims(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape))


def _tip(row: Any) -> str:
    rf = ("all" if row.sees_all else _dims(row.receptive_field)) if row.effective_stride else "—"
    stride = _dims(row.effective_stride) if row.effective_stride else "—"
    return (f"{row.index} {row.name} ({row.type}): {_dims(row.output_shape)}, {row.params:,} parameters, "
            f"{row.macs:,} MACs; receptive field {rf}, stride {stride}")


def layer_graph(report: Any) -> Graph:
    """The layers of ``report`` and how tensors flow between them (rows in call order if fx cannot trace)."""
    graph = Graph()
    graph.nodes["input"] = Node("input", 0, "input", "input", tuple(report.input_shape))
    for row in report.layers:
        graph.nodes[f"layer-{row.index}"] = Node(f"layer-{row.index}", row.index, row.name, row.type,
                                                 tuple(row.output_shape), row.params, _tip(row),
                                                 row.type in MERGE_ROWS)
    model = getattr(report, "model", None)
    if model is None or not _trace_into(graph, model, report):
        graph.nodes = {k: n for k, n in graph.nodes.items() if n.index is not None}
        ids = ["input", *(f"layer-{r.index}" for r in report.layers)]
        graph.edges = list(zip(ids, ids[1:]))
        graph.traced = False
    return graph


def _row_tracer(report: Any):  # type: ignore[no-untyped-def]
    """fx's tracer with every row that holds no other row kept whole (a DropPath that is the identity in
    evaluation still gets its node), and "same" padding whole (receptive.py's tracer)."""
    from cnnlab.analysis.receptive import _Tracer

    rows = {id(r.module) for r in report.layers if r.module is not None}
    innermost = set(rows)
    for row in report.layers:
        if row.module is not None and any(id(m) in rows for m in row.module.modules() if m is not row.module):
            innermost.discard(id(row.module))

    class RowTracer(_Tracer):
        def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
            return id(m) in innermost or super().is_leaf_module(m, qualname)

    return RowTracer()


def _trace_into(graph: Graph, model: nn.Module, report: Any) -> bool:
    was = model.training
    model.eval()                        # the mode the analysis walked (dropout off, auxiliary heads unused)
    try:
        fx_graph = _row_tracer(report).trace(model)
    except Exception:   # noqa: BLE001 - data-dependent control flow: drawn in call order instead
        return False
    finally:
        model.train(was)
    paths = {id(m): name for name, m in model.named_modules()}
    calls: dict[str, list[str]] = {}          # a row's module path -> its rows' ids, in call order
    for row in report.layers:
        path = paths.get(id(row.module)) if row.module is not None else None
        if path is not None:
            calls.setdefault(path, []).append(f"layer-{row.index}")
    used: dict[str, int] = {}
    carried: dict[fx.Node, list[str]] = {}
    joins = 0
    for node in fx_graph.nodes:
        preds = list(dict.fromkeys(p for a in node.all_input_nodes for p in carried.get(a, [])))
        if node.op == "placeholder":
            carried[node] = ["input"]
        elif node.op == "call_module":
            carried[node] = _module_call(graph, str(node.target), preds, calls, used)
            if any(used[p] > len(calls[p]) for p in used):   # more calls than the walk saw: rows cannot be matched
                return False
        elif node.op in ("call_function", "call_method") and node.target in JOINS and len(preds) >= 2:
            joins += 1
            join = Node(f"join-{joins}", None, JOINS[node.target], "join", join=True)
            graph.nodes[join.id] = join
            for p in preds:
                graph.add_edge(p, join.id)
            carried[node] = [join.id]
        else:
            carried[node] = preds
    reached = {b for _, b in graph.edges}
    return all(f"layer-{r.index}" in reached for r in report.layers) and not _has_cycle(graph)


def _has_cycle(graph: Graph) -> bool:
    """Whether the edges loop (a row matched to the wrong call): then the graph is not drawn as traced."""
    succ: dict[str, list[str]] = {}
    for a, b in graph.edges:
        succ.setdefault(a, []).append(b)
    state: dict[str, int] = {}          # 1: on the current path, 2: done
    for start in graph.nodes:
        stack = [(start, iter(succ.get(start, [])))]
        if state.get(start):
            continue
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                return True
            elif not state.get(child):
                state[child] = 1
                stack.append((child, iter(succ.get(child, []))))
    return False


def _module_call(graph: Graph, target: str, preds: list[str], calls: dict[str, list[str]],
                 used: dict[str, int]) -> list[str]:
    """The row a called module belongs to (its own, or the row of the block that holds it)."""
    path = target
    while path and path not in calls:
        path = path.rpartition(".")[0]
    if not path:
        return preds
    ids = calls[path]
    if preds == [ids[min(used.get(path, 0), len(ids) - 1)]] or (preds and preds[0] in ids and len(preds) == 1):
        return preds                           # a later module of the same row (a block's conv after its pad)
    node_id = ids[min(used.get(path, 0), len(ids) - 1)]
    used[path] = used.get(path, 0) + 1
    for p in preds:
        graph.add_edge(p, node_id)
    return [node_id]


# -- drawing ----------------------------------------------------------------------------------------------------

STYLE = ("<style>text{font:11px sans-serif;fill:#222}.sub{fill:#555;font-size:10px}.join text{font-weight:bold}"
         ".layer:hover polygon,.layer:hover rect{stroke:#e15759;stroke-width:2}.edge{stroke:#888;fill:none}"
         ".skip{stroke:#e15759;stroke-dasharray:4 3}.layer{cursor:pointer}</style>")
COLOURS = {"conv": "#4e79a7", "pool": "#59a14f", "dense": "#f28e2b", "linear": "#f28e2b", "norm": "#b07aa1",
           "input": "#bab0ac"}


def _colour(kind: str) -> str:
    low = kind.lower()
    for key, colour in COLOURS.items():
        if key in low:
            return colour
    return "#76b7b2"


def _log(x: int, scale: float, low: float, high: float) -> float:
    return min(high, low + scale * math.log2(max(x, 1) + 1))


def draw_svg(report: Any, graph: Graph | None = None) -> str:
    """The drawing of ``report``'s network as SVG text: blocks for a chain, a layered graph otherwise."""
    graph = graph or layer_graph(report)
    return _draw_chain(report, graph) if graph.chain else _draw_dag(report, graph)


def _block(node: Node, x: float, base: float) -> tuple[str, float]:
    """A feature-map block (a cuboid) or a vector bar; returns its SVG and its width."""
    colour = _colour(node.kind if node.index else "input")
    if len(node.shape) == 3:
        c, h, w = node.shape
        face_w, face_h, skew = _log(c, 3.0, 4, 40), _log(h, 14, 8, 150), _log(w, 5, 3, 60)
    else:
        face_w, face_h, skew = 8.0, _log(node.shape[0] if node.shape else 1, 9, 8, 150), 0.0
    x0, y0 = x, base - face_h
    front = f"{x0:.1f},{y0:.1f} {x0 + face_w:.1f},{y0:.1f} {x0 + face_w:.1f},{base:.1f} {x0:.1f},{base:.1f}"
    parts = [f'<polygon points="{front}" fill="{colour}" stroke="#333" stroke-width="0.6"/>']
    if skew:
        top = (f"{x0:.1f},{y0:.1f} {x0 + skew:.1f},{y0 - skew:.1f} {x0 + face_w + skew:.1f},{y0 - skew:.1f} "
               f"{x0 + face_w:.1f},{y0:.1f}")
        side = (f"{x0 + face_w:.1f},{y0:.1f} {x0 + face_w + skew:.1f},{y0 - skew:.1f} "
                f"{x0 + face_w + skew:.1f},{base - skew:.1f} {x0 + face_w:.1f},{base:.1f}")
        parts += [f'<polygon points="{top}" fill="{colour}" fill-opacity="0.55" stroke="#333" stroke-width="0.6"/>',
                  f'<polygon points="{side}" fill="{colour}" fill-opacity="0.75" stroke="#333" stroke-width="0.6"/>']
    return "".join(parts), face_w + skew


def _group(node: Node, body: str) -> str:
    index = "" if node.index is None else f' data-index="{node.index}"'
    cls = ("layer join" if node.join else "layer") if node.index else ("input" if node.index == 0 else "join")
    tip = node.tip or f"{node.name}: {_dims(node.shape)}"
    return f'<g id="{node.id}" class="{cls}"{index}><title>{escape(tip)}</title>{body}</g>'


def _draw_chain(report: Any, graph: Graph) -> str:
    order = ["input", *(f"layer-{r.index}" for r in report.layers)]
    base, x, out = 190.0, 10.0, []
    for node_id in order:
        node = graph.nodes[node_id]
        body, width = _block(node, x, base)
        label_x = x + width / 2
        texts = [escape(node.name[:18]), escape(_dims(node.shape))] + ([f"{node.params:,} p"] if node.params else [])
        body += "".join(f'<text x="{label_x:.1f}" y="{base + 14 + 12 * i}" text-anchor="middle" '
                        f'class="{"sub" if i else "name"}">{t}</text>' for i, t in enumerate(texts))
        out.append(_group(node, body))
        x += max(width, 8 * max(len(t) for t in texts[:2]) * 0.75) + 18
    width, height = x + 10, base + 52
    return _svg(width, height, "".join(out), f"{report.name}: {len(report.layers)} layers, a chain")


def _ranks(graph: Graph) -> dict[str, int]:
    """Longest path from the input: a layered layout where every edge goes down."""
    preds: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for a, b in graph.edges:
        preds[b].append(a)
    rank: dict[str, int] = {}

    def depth(n: str) -> int:
        stack = [n]
        while stack:
            top = stack[-1]
            missing = [p for p in preds[top] if p not in rank]
            if missing:
                stack.extend(missing)
                continue
            rank[top] = 1 + max((rank[p] for p in preds[top]), default=-1)
            stack.pop()
        return rank[n]

    for n in graph.nodes:
        depth(n)
    return rank


def _draw_dag(report: Any, graph: Graph) -> str:
    rank = _ranks(graph)
    levels: dict[int, list[str]] = {}
    for n, r in sorted(rank.items(), key=lambda kv: (kv[1], _order(kv[0]))):
        levels.setdefault(r, []).append(n)
    pos: dict[str, tuple[float, float]] = {}
    box_w, step_x, step_y, mid = 170.0, 190.0, 46.0, 0.0
    widest = max(len(v) for v in levels.values())
    mid = 20 + box_w / 2 + step_x * (widest - 1) / 2
    preds: dict[str, list[str]] = {}
    for a, b in graph.edges:
        preds.setdefault(b, []).append(a)
    for r in sorted(levels):
        names = levels[r]
        names.sort(key=lambda n: sum(pos[p][0] for p in preds.get(n, [])) / max(len(preds.get(n, [])), 1)
                   if preds.get(n) else 0.0)
        for i, n in enumerate(names):
            pos[n] = (mid + (i - (len(names) - 1) / 2) * step_x, 20 + r * step_y)
    edges = []
    for a, b in graph.edges:
        (xa, ya), (xb, yb) = pos[a], pos[b]
        skip = rank[b] - rank[a] > 1
        if skip:     # an arc on the side: the skip connection, visible
            bend = max(xa, xb) + box_w / 2 + 20 + 6 * ((rank[b] - rank[a]) % 5)
            d = f"M{xa + box_w / 2:.1f},{ya:.1f} C{bend:.1f},{ya:.1f} {bend:.1f},{yb:.1f} {xb + 12:.1f},{yb:.1f}"
            edges.append(f'<path class="edge skip" d="{d}" data-from="{a}" data-to="{b}"/>')
        else:
            edges.append(f'<line class="edge" x1="{xa:.1f}" y1="{ya + 11:.1f}" x2="{xb:.1f}" y2="{yb - 11:.1f}" '
                         f'data-from="{a}" data-to="{b}"/>')
    nodes = []
    for n, (x, y) in pos.items():
        node = graph.nodes[n]
        if node.join:
            symbol = MERGE_ROWS.get(node.kind, node.name) if node.index else node.name
            symbol = symbol if len(symbol) < 3 else "⧺" if symbol in ("concat", "stack") else symbol
            body = (f'<circle cx="{x:.1f}" cy="{y:.1f}" r="11" fill="#fff" stroke="#e15759" stroke-width="1.5"/>'
                    f'<text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle">{escape(symbol)}</text>')
        else:
            label = f"{node.name[:22]} · {_dims(node.shape)}"
            body = (f'<rect x="{x - box_w / 2:.1f}" y="{y - 11:.1f}" width="{box_w}" height="22" rx="4" '
                    f'fill="{_colour(node.kind if node.index else "input")}" fill-opacity="0.85" stroke="#333" '
                    f'stroke-width="0.6"/><text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle" '
                    f'fill="#fff">{escape(label)}</text>')
        nodes.append(_group(node, body))
    width = 2 * mid + 120
    height = 40 + step_y * (max(levels) + 1)
    joins = sum(1 for n in graph.nodes.values() if n.join)
    return _svg(width, height, "".join(edges) + "".join(nodes),
                f"{report.name}: {len(report.layers)} layers, {joins} joins, a graph")


def _order(node_id: str) -> int:
    kind, _, number = node_id.partition("-")
    return -1 if kind == "input" else int(number or 0) * (1 if kind == "layer" else 1)


def _svg(width: float, height: float, body: str, title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{escape(title)}">'
            f"<title>{escape(title)}</title>{STYLE}{body}</svg>\n")
