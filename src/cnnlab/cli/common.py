"""Helpers shared by the sub-commands: output, JSON, argument types."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console

from cnnlab.errors import ShapeError
from cnnlab.shapes import parse_shape


def console() -> Console:
    """A console on stdout; plain text when stdout is not a terminal."""
    return Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 160)


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


def command_group(sub: argparse._SubParsersAction, name: str, epilog: str = "",
                  **kwargs: Any) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """``cnnlab NAME SUBCOMMAND``: the group's parser and its required sub-commands (dest ``<name>_command``)."""
    parser = sub.add_parser(name, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)
    group = parser.add_subparsers(dest=f"{name}_command", metavar=f"{name.upper()}_COMMAND", parser_class=type(parser))
    group.required = True
    return parser, group
