"""``cnnlab zoo``: the landmark CNNs, listed and compared in numbers."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cnnlab.cli.common import batch_size, command_group, console, print_json, shape_arg
from cnnlab.errors import CnnlabError
from cnnlab.units import si

if TYPE_CHECKING:
    from cnnlab.zoo import ZooRow

EPILOG = """\
examples:
  cnnlab zoo list
  cnnlab zoo compare                                  # every model at its usual input
  cnnlab zoo compare alexnet vgg16 googlenet resnet50 --input 3,224,224 --plot zoo.png
  cnnlab zoo compare resnet50 --batch 32 --json
  cnnlab analyze resnet50 --input 3,224,224          # one model, layer by layer
"""


def register(sub: argparse._SubParsersAction) -> None:
    _, zoo_sub = command_group(sub, "zoo", EPILOG,
                               help="the landmark CNNs (LeNet-5 … EfficientNet): list and compare",
                               description="Readable reference implementations of the landmark CNNs, with "
                                           "exact parameter counts; compare them side by side without running "
                                           "them (each row is 'cnnlab analyze' on the meta device).")
    ls = zoo_sub.add_parser("list", help="every zoo model: family, year, what it brought",
                            epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=run_list)
    cmp = zoo_sub.add_parser(
        "compare", help="parameters, MACs, depth and textbook memory, one row per model",
        description="One row per model: year, key innovation, depth (weight layers on the deepest "
                    "path), parameters, MACs per instance and the textbook memory for inference "
                    "(1 instance) and training (one mini-batch), in float32.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    cmp.add_argument("names", nargs="*", metavar="NAME", help="zoo models (default: all; see 'zoo list')")
    cmp.add_argument("--input", type=shape_arg, metavar="C,H,W",
                     help="one input shape for every model (default: each model's usual input: "
                          "3,224,224; 1,32,32 for LeNet-5; 1,28,28 for the MLP)")
    cmp.add_argument("--batch", type=batch_size, default=1, metavar="N",
                     help="mini-batch size for the training memory (default: 1)")
    cmp.add_argument("--json", action="store_true", help="machine-readable output (stable keys)")
    cmp.add_argument("--plot", metavar="FILE.png", help="also write a bar chart of parameters and MACs")
    cmp.set_defaults(func=run_compare)


def run_list(args: argparse.Namespace) -> int:
    from cnnlab.models import ZOO

    if args.json:
        print_json([{"name": e.name, "family": e.family, "year": e.year, "innovation": e.innovation,
                     "default_input": list(e.default_input), "paper_resolution": e.resolution,
                     "default_classes": e.default_classes, "reference": e.reference}
                    for e in ZOO.values()])
        return 0
    table = Table(title="cnnlab zoo — build with cnnlab.models.create_model(NAME)", title_justify="left")
    for col in ("name", "family", "year", "paper input", "what it brought", "parameter count equals"):
        table.add_column(col)
    for e in ZOO.values():
        table.add_row(e.name, e.family, str(e.year), f"{e.resolution}×{e.resolution}", e.innovation,
                      e.reference)
    console().print(table)
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from cnnlab.models import analyzable_names
    from cnnlab.models.registry import get_entries  # the zoo only when asked for

    names = [e.name for e in get_entries(args.names)] or analyzable_names()  # unknown names fail before any work
    if args.plot and not args.plot.lower().endswith(".png"):
        raise CnnlabError(f"--plot {args.plot}: figures are PNG files; give a path ending in .png")
    rows = _compare_with_progress(names, args.input, args.batch)
    good = [r for r in rows if r.error is None]
    if not good:
        raise CnnlabError("no model takes this input: " + "; ".join(f"{r.name}: {r.error}" for r in rows))
    if args.plot:
        from cnnlab.viz.zoo import plot_compare  # matplotlib only when a figure is asked for
        plot_compare(good, args.plot)
    if args.json:
        print_json([r.to_dict() for r in rows])
    else:
        print_table(rows)
        if args.plot:
            console().print(f"bar chart: {args.plot}")
    return 0


def _compare_with_progress(names: list[str], input_shape: tuple[int, ...] | None,
                           batch: int) -> list[ZooRow]:
    from cnnlab.zoo import compare

    if not sys.stderr.isatty():
        return compare(names, input_shape, batch)
    with Progress(TextColumn("analyzing {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(names[0], total=len(names))

        def advance(row: ZooRow) -> None:
            i = names.index(row.name) + 1
            progress.update(task, advance=1, description=names[i] if i < len(names) else "done")
        return compare(names, input_shape, batch, on_row=advance)


def print_table(rows: list[ZooRow]) -> None:
    """The comparison as a table for people."""
    batch = rows[0].batch_size
    shapes = {r.input_shape for r in rows}
    inputs = ("all at input " + "×".join(map(str, rows[0].input_shape)) if len(shapes) == 1
              else "each at its paper's input")
    table = Table(title=f"cnnlab zoo compare — {inputs}; float32, training memory at batch {batch}; "
                        "MACs per instance (FLOPs = 2 × MACs); MB = 10^6 bytes", title_justify="left")
    for col, just in (("model", "left"), ("year", "right"), ("input", "left"), ("depth", "right"),
                      ("params", "right"), ("MACs", "right"), ("inference MB", "right"),
                      (f"training MB (batch {batch})", "right"), ("what it brought", "left")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in rows:
        if r.error is not None:
            table.add_row(r.name, str(r.year), "×".join(map(str, r.input_shape)), "–", "–", "–", "–", "–",
                          f"not at this input: {r.error}")
            continue
        table.add_row(r.name, str(r.year), "×".join(map(str, r.input_shape)),
                      "?" if r.depth is None else str(r.depth), f"{r.params:,}", si(r.macs),
                      f"{r.inference_bytes / 1e6:,.1f}", f"{r.training_bytes / 1e6:,.1f}", r.innovation)
    console().print(table)
