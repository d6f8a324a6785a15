"""``cnnlab analyze``: shapes, parameters, MACs and memory, without running the network."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from cnnlab.cli.common import batch_size, console, print_json, shape_arg
from cnnlab.errors import CnnlabError, ShapeError
from cnnlab.text import label
from cnnlab.units import mb, mib, si

if TYPE_CHECKING:  # pragma: no cover
    from cnnlab.analysis import AnalysisReport

EPILOG = """\
examples:
  cnnlab analyze geron_ex2 --batch 50 --explain
  cnnlab analyze geron_ex2 --input 3,224,224 --json
  cnnlab analyze resnet50 --input 3,224,224 --batch 32
  cnnlab analyze torchvision.models:resnet50 --input 3,224,224 --batch 32
  cnnlab analyze my_model.keras --explain
  cnnlab analyze book.py:build_model           (Keras installed: KERAS_BACKEND=torch is chosen for you)
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyze", help="shapes, parameters, MACs and memory of a network (no real compute)",
        description="Walk a network on the meta device (no activations allocated) and report, per "
                    "layer, the output shape, parameters, MACs and output bytes, with the textbook "
                    "memory for inference (one instance) and training (one mini-batch).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", metavar="TARGET",
                   help="a zoo model name (cnnlab zoo list), a spec file (.yaml/.yml/.json), a Keras model "
                        "(.keras; Keras not needed) or package.module:callable returning an nn.Module or a "
                        "Keras model")
    p.add_argument("--input", type=shape_arg, metavar="C,H,W",
                   help="shape of one instance (default: the spec's 'input' or the zoo model's usual input)")
    p.add_argument("--batch", type=batch_size, default=1, metavar="N",
                   help="mini-batch size for the training figure (default: 1)")
    p.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32",
                   help="element type for memory figures (default: float32)")
    p.add_argument("--plot", metavar="FILE.svg",
                   help="also write the network drawn (SVG): feature-map blocks for a chain, a layered graph with "
                        "its skip connections otherwise; the drawing 'cnnlab explore' shows")
    p.add_argument("--compare-keras", action="store_true",
                   help="Keras installed: print Keras's own per-layer parameters and shapes beside cnnlab's "
                        "and say where they agree (a .keras file or a builder returning a Keras model)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="machine-readable output (stable keys)")
    out.add_argument("--explain", action="store_true", help="print the textbook derivation")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cnnlab.analysis import DTYPES
    from cnnlab.analysis.explain import explain
    from cnnlab.targets import analyze_target, resolve_target

    target = resolve_target(args.target, args.input)
    if target.input_shape is None:
        raise ShapeError(f"{args.target}: --input C,H,W is required for a module target "
                         "(e.g. --input 3,224,224)")
    report = analyze_target(target, args.batch, DTYPES[args.dtype])
    is_keras = report.keras is not None
    if args.compare_keras and not is_keras:
        raise CnnlabError(f"{args.target}: --compare-keras takes a Keras model (a .keras file, or a builder "
                          "returning a Keras model)")
    rows, keras_total = _keras_rows(args.target, target.origin, report) if args.compare_keras else (None, 0)
    if args.plot:
        _write_plot(args.plot, report)
    if args.json:
        doc = report.to_dict()
        if rows is not None:
            doc["keras"]["compare"] = {"keras_count_params": keras_total, "layers": [r.to_dict() for r in rows]}
        print_json(doc)
        return 0
    if args.explain:
        print_table(report)
        sys.stdout.write("\n" + explain(report) + "\n")
    else:
        print_table(report)
    if rows is not None:
        print_comparison(rows, keras_total, report.keras["count_params"])
    if args.plot:
        console().print(f"drawing: {args.plot}", highlight=False)
    return 0


def _keras_rows(target: str, origin: object, report: AnalysisReport) -> tuple[list, int]:
    """Keras's per-layer rows beside the report's, and Keras's own ``count_params`` (of the builder's model
    itself, or of the file loaded by Keras)."""
    from cnnlab.keras.compare import compare, keras_model

    model = origin if origin is not None else keras_model(target)
    return compare(model, report), int(model.count_params())


def _field_text(row) -> str:  # type: ignore[no-untyped-def]
    """``7×7 / 2``: the receptive field in input pixels and the effective stride; ``all`` for global layers."""
    if row.effective_stride is None:
        return ""
    size = "all" if row.sees_all else "×".join(map(str, row.receptive_field))
    sh, sw = row.effective_stride
    return f"{size} / {sh if sh == sw else f'{sh}×{sw}'}"


def print_table(report: AnalysisReport) -> None:
    """Per-layer table, totals and the textbook memory."""
    from rich.table import Table

    con = console()
    dims = "×".join(map(str, report.input_shape))
    table = Table(title=f"{label(report.name, 200)} — input {dims}, batch {report.batch_size}, "
                        f"{str(report.dtype).removeprefix('torch.')}", title_justify="left")
    for col, just in (("#", "right"), ("layer", "left"), ("type", "left"), ("output shape", "left"),
                      ("params", "right"), ("MACs", "right"), ("output bytes", "right"),
                      ("RF / stride", "right")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    table.add_row("0", "input", "", "×".join(map(str, report.input_shape)), "", "",
                  f"{report.memory.outputs[0]:,}", "1×1 / 1")
    for row in report.layers:
        table.add_row(str(row.index), row.name, row.type + (f" {row.detail}" if row.detail else ""),
                      "×".join(map(str, row.output_shape)), f"{row.params:,}", f"{row.macs:,}",
                      f"{row.output_bytes:,}", _field_text(row))
    con.print(table)
    mem = report.memory
    i, j = mem.inference_pair
    con.print(f"parameters: {report.total_params:,} ({report.trainable_params:,} trainable), "
              f"{mem.param_bytes:,} B ({mb(mem.param_bytes)}, {mib(mem.param_bytes)})")
    human = si(report.total_macs)
    con.print(f"MACs per instance: {report.total_macs:,} ({human}{'' if human[-1].isalpha() else ' '}MACs; "
              f"FLOPs = 2 × MACs)")
    con.print(f"textbook memory, inference (1 instance): {mem.inference_bytes:,} B "
              f"({mb(mem.inference_bytes)}, {mib(mem.inference_bytes)}) — parameters + layers {i} and {j}")
    if report.batch_size > 1:
        con.print(f"textbook memory, inference (batch {report.batch_size}): {mem.batch_inference_bytes:,} B "
                  f"({mb(mem.batch_inference_bytes)}, {mib(mem.batch_inference_bytes)}) — parameters + "
                  f"{report.batch_size} × layers {i} and {j}")
    con.print(f"textbook memory, training (batch {report.batch_size}): {mem.training_bytes:,} B "
              f"({mb(mem.training_bytes)}, {mib(mem.training_bytes)}) — all outputs + input, "
              "× batch, + parameters")
    if report.outside_params or report.outside_macs:
        con.print(_outside_line(report))
    for note in report.notes:
        con.print(f"note: {note}")


def _outside_line(report: AnalysisReport) -> str:
    """What the totals hold beyond the rows: parameters no row counts and MACs outside every row."""
    own = [(name, n) for name, n, kind in report.outside_params if kind == "parameter"]
    uncalled = [(name, n) for name, n, kind in report.outside_params if kind == "module"]
    parts = []
    for what, items in (("the network's own parameters", own), ("modules this forward never calls", uncalled)):
        if items:
            total = sum(n for _, n in items)
            parts.append(f"{what}: " + ", ".join(f"{name} ({n:,} parameters)" for name, n in items)
                         + (f", {total:,} parameters in all" if len(items) > 1 else ""))
    if report.outside_macs:
        parts.append(f"{report.outside_macs:,} MACs outside every row (operations in the network's own forward or "
                     "in a module without a row)")
    return "not in any row, but in the totals: " + "; ".join(parts)


def print_comparison(rows: list, keras_total: int, ours_total: int) -> None:
    """Keras's per-layer numbers beside cnnlab's, and whether they agree."""
    from rich.table import Table

    table = Table(title="Keras (model.summary) beside cnnlab — shapes channels first; cnnlab's parameters counted "
                        "as Keras counts them (moving statistics included)")
    for col in ("layer", "type", "Keras params", "cnnlab params (Keras's way)", "Keras shape", "cnnlab shape", ""):
        table.add_column(col, justify="right" if "params" in col else "left")
    dims = lambda s: "–" if s is None else "×".join(map(str, s))  # noqa: E731
    for r in rows:
        table.add_row(r.name, r.kind, f"{r.keras_params:,}", "–" if r.params is None else f"{r.params:,}",
                      dims(r.keras_shape), dims(r.shape), "✓" if r.agrees else "✗ differs")
    con = console()
    con.print(table)
    bad = [r.name for r in rows if not r.agrees]
    verdict = (f"all {len(rows)} layers agree" if not bad else
               f"{len(bad)} of {len(rows)} layers differ: {', '.join(bad[:8])}{' …' if len(bad) > 8 else ''}")
    total = "equal" if keras_total == ours_total else "DIFFER"
    con.print(f"{verdict}; count_params: Keras {keras_total:,}, cnnlab {ours_total:,} ({total}; the trainable "
              "parameters PyTorch counts are in the table above)")


def _write_plot(path: str, report: AnalysisReport) -> None:
    """The drawing as an SVG file, written atomically (a .png is the page's download button)."""
    from pathlib import Path

    from cnnlab.analysis.drawing import draw_svg
    from cnnlab.files import atomic_write_text

    if Path(path).suffix.lower() != ".svg":
        raise CnnlabError(f"--plot {path}: the drawing is SVG; name the file .svg (cnnlab explore downloads PNG)")
    atomic_write_text(path, draw_svg(report))
