"""Helpers shared by the sub-commands: output, JSON, argument types."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console

from cnnlab.errors import ShapeError
from cnnlab.shapes import parse_shape
from cnnlab.text import printable_block




class SafeConsole(Console):
    """A rich console that prints text as given: no markup or emoji codes, control characters shown as
    escapes (``\\x1b``).

    Names in cnnlab's tables come from files and modules the user did not write
    by hand (a module's ``add_module`` name, a YAML key); ``[bold]`` in one is
    text, and an ESC sequence in one must not reach the terminal raw. Every
    string a command prints, a table cell included, passes through ``render_str``.
    """

    def render_str(self, text: str, **kwargs: Any):  # type: ignore[override]  # noqa: ANN201 - rich's Text
        return super().render_str(printable_block(text), **kwargs)


def console() -> Console:
    """A console on stdout; plain text when stdout is not a terminal."""
    return SafeConsole(highlight=False, markup=False, emoji=False, soft_wrap=False,
                       width=None if sys.stdout.isatty() else 160)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def shape_arg(text: str) -> tuple[int, ...]:
    """argparse type for ``--input C,H,W``; bad input becomes a one-line error."""
    try:
        return parse_shape(text)
    except ShapeError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"'{text}' must be a positive integer")
    return value


MAX_BATCH = 1 << 31     # a batch past 2^31 images is no real run, and batch × C×H×W must stay a 64-bit count


def batch_size(text: str) -> int:
    """A mini-batch size, 1 to 2^31."""
    value = positive_int(text)
    if value > MAX_BATCH:
        raise argparse.ArgumentTypeError(f"'{text[:30]}' is past the largest batch cnnlab takes ({MAX_BATCH:,} = 2^31)")
    return value


def size_arg(text: str) -> tuple[int, int]:
    try:
        parts = [int(p) for p in text.replace("x", ",").split(",")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a size; use H,W (e.g. 64,64) or one number")
    return parts[0], parts[1]


def nonneg_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = -1
    if v < 0:
        raise argparse.ArgumentTypeError(f"'{text}' must be a non-negative integer")
    return v


def finite_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"'{text}' must be finite")
    return v


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    """An argument type: an integer from ``low`` to ``high``."""
    def parse(text: str) -> int:
        try:
            value = int(text) if len(text) <= 20 else low - 1
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"'{text[:30]}' must be an integer from {low} to {high}")
        return value
    return parse


def host_arg(text: str) -> str:
    """An address to listen on: non-empty, no spaces (an empty one would listen on every interface)."""
    if not text or len(text) > 253 or any(c.isspace() or ord(c) < 32 for c in text):
        raise argparse.ArgumentTypeError(f"'{text[:40]}' is not a host address; give e.g. 127.0.0.1 (this machine "
                                         "only, the default) or 0.0.0.0 (every interface)")
    return text


def port(text: str) -> int:
    """A TCP port, 1 to 65535."""
    try:
        value = int(text) if len(text) <= 10 else 0
    except ValueError:
        value = 0
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"'{text[:20]}' must be a port number from 1 to 65535")
    return value


def command_group(sub: argparse._SubParsersAction, name: str, epilog: str = "",
                  **kwargs: Any) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """``cnnlab NAME SUBCOMMAND``: the group's parser and its required sub-commands (dest ``<name>_command``)."""
    parser = sub.add_parser(name, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)
    group = parser.add_subparsers(dest=f"{name}_command", metavar=f"{name.upper()}_COMMAND", parser_class=type(parser))
    group.required = True
    return parser, group


def report_unreadable(predicted: int, failed: list[dict]) -> int:
    """Name each image a predict command could not read, one line each on stderr; the exit status.

    0 when every image was read, 1 when some were not (the others were still predicted, as ``cat`` goes on
    past a missing file), 2 when none could be read.
    """
    from cnnlab.text import printable

    for f in failed:
        reason = str(f["error"]).replace(f" '{f['image']}'", "").replace(f" {f['image']}", "")
        done = "skipped; the other images were predicted" if predicted else "nothing was predicted"
        sys.stderr.write(f"cnnlab: error: {printable(str(f['image']))}: {printable(reason)} ({done})\n")
    return 0 if not failed else 1 if predicted else 2


def given_options(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The ``dest`` of every option the command line ``argv`` gave (even at its default value): ``argv`` parsed
    again with every default of ``parser`` and its sub-commands suppressed, so only what was given is set."""
    saved: list[tuple[Any, str, Any]] = []

    def suppress(p: argparse.ArgumentParser) -> None:
        saved.append((p, "_defaults", p._defaults))
        p._defaults = {}
        for action in p._actions:
            saved.append((action, "default", action.default))
            action.default = argparse.SUPPRESS
            if isinstance(action, argparse._SubParsersAction):
                for sub in {id(s): s for s in action.choices.values()}.values():   # aliases: one parser
                    suppress(sub)

    try:
        suppress(parser)
        given, _ = parser.parse_known_args(argv, argparse.Namespace())
    finally:
        for owner, name, value in reversed(saved):
            setattr(owner, name, value)
    return set(vars(given))
