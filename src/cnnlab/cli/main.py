"""The ``cnnlab`` command: one sub-command module per command group.

The CLI is a thin layer over the Python API. User mistakes (``CnnlabError``)
print one line, ``cnnlab: error: ...``, and exit with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Callable, Sequence

from cnnlab import __version__
from cnnlab.cli import analyze as analyze_cmd
from cnnlab.cli import explore as explore_cmd
from cnnlab.cli import fcn as fcn_cmd
from cnnlab.cli import memory as memory_cmd
from cnnlab.cli import ops as ops_cmd
from cnnlab.cli import segment as segment_cmd
from cnnlab.cli import study as study_cmd
from cnnlab.cli import train as train_cmd
from cnnlab.cli import zoo as zoo_cmd
from cnnlab.cli.common import given_options
from cnnlab.errors import CnnlabError
from cnnlab.text import printable, shorten_words

EXIT_USAGE = 2


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written; every option's help ends with its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (not action.option_strings or action.default in (None, argparse.SUPPRESS)
                or isinstance(action.default, bool) or "default" in text.lower()):
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line naming the fix (and exit 2).

    Values such as ``--kernel -1,0,1`` or ``--input -0.5,2`` are numbers, not options:
    argparse only recognises ``-1`` and ``-.5`` by itself.
    """

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        kwargs["formatter_class"] = HelpFormatter
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-\.?\d[\d.,/eE+\-\s]*$")

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {shorten_words(printable(message))} (see '{self.prog} --help')\n")
        sys.exit(EXIT_USAGE)




def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cnnlab",
        description="Size, explain, build and train convolutional neural networks, by computation.",
    )
    parser.add_argument("--version", action="version", version=f"cnnlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    analyze_cmd.register(sub)
    ops_cmd.register(sub)
    zoo_cmd.register(sub)
    memory_cmd.register(sub)
    train_cmd.register(sub)
    fcn_cmd.register(sub)
    segment_cmd.register(sub)
    study_cmd.register(sub)
    explore_cmd.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if sys.stdout is None or sys.stderr is None:      # started with stdout or stderr closed (>&-)
        sys.stdout = sys.stdout or open(os.devnull, "w")   # noqa: SIM115 - lives as long as the process
        sys.stderr = sys.stderr or open(os.devnull, "w")   # noqa: SIM115
    for stream in (sys.stdout, sys.stderr):    # an ASCII-only locale: escapes instead of UnicodeEncodeError
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    import signal

    before = _catch_interrupts_in_imports() if argv is None else None   # the command itself, not a caller's process
    try:
        return _main(argv)
    except KeyboardInterrupt:   # Ctrl-C anywhere else: one line, after the finally blocks on the way have run
        signal.signal(signal.SIGINT, signal.SIG_IGN)    # a second Ctrl-C (or a late one) cannot replace the exit
        sys.stderr.write("cnnlab: interrupted\n")
        return 130
    finally:
        if before is not None and signal.getsignal(signal.SIGINT) is _on_interrupt:
            signal.signal(signal.SIGINT, before)


def _on_interrupt(signum: int, frame: FrameType | None) -> None:
    """Ctrl-C: ``KeyboardInterrupt``, unless it lands inside an import (torch's takes seconds).

    There the exception passes through the imported library's own code, which may turn
    it into another error (``RuntimeError: Error calling __set_name__``), swallow it
    (a bare ``except``), or leave CPython's flag that kills the process by SIGINT after
    cnnlab's exit status 130 — all measured. So there the one line, and exit 130 at once,
    as a kill would: the ``finally`` blocks around the import do not run (a temporary
    folder may stay), while every file cnnlab writes is written atomically and stays whole.
    """
    f = frame
    while f is not None:
        if f.f_code.co_filename.startswith("<frozen importlib"):
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(OSError, ValueError):   # a closed pipe or stream has nothing left to flush
                    stream.flush()
            sys.stderr.write("cnnlab: interrupted\n")
            sys.stderr.flush()
            os._exit(130)
        f = f.f_back
    raise KeyboardInterrupt


def _catch_interrupts_in_imports() -> Callable[[int, FrameType | None], Any] | int | None:
    """Install :func:`_on_interrupt` where Ctrl-C has Python's default handler; the handler it replaced
    (None: left alone — not the main thread, or Ctrl-C ignored or handled by the caller)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    before = signal.getsignal(signal.SIGINT)
    if before is not signal.default_int_handler:
        return None
    signal.signal(signal.SIGINT, _on_interrupt)
    return before


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:   # name the sub-command whose --help lists what it accepts
        prog = " ".join(["cnnlab", args.command, *[str(v) for k, v in vars(args).items()
                                                   if k.endswith("_command") and v]])
        sys.stderr.write(f"{prog}: error: unrecognized arguments: {' '.join(extra)} (see '{prog} --help')\n")
        return EXIT_USAGE
    args.given = lambda: given_options(parser, list(argv) if argv is not None else sys.argv[1:])
    try:
        return int(args.func(args) or 0)
    except CnnlabError as err:
        sys.stderr.write(f"cnnlab: error: {shorten_words(printable(str(err)))}\n")
        return EXIT_USAGE
    except BrokenPipeError:  # `cnnlab analyze ... | head`
        return 0
    except OSError as err:   # the system refused a file operation that no cnnlab reader or writer named first
        from cnnlab.files import FIXES

        if err.errno not in FIXES and err.filename is None:
            raise
        where = printable(str(err.filename)) if err.filename is not None else "a file"
        fix = FIXES.get(err.errno or 0, "check the path and try again")
        line = f"cnnlab: error: {where}: {err.strerror or type(err).__name__} ({fix})"
        sys.stderr.write(shorten_words(line) + "\n")
        return EXIT_USAGE
    except (Exception, SystemExit) as err:  # noqa: BLE001 - re-raised unless the user's own code raised it
        where = users_frame(err.__traceback__)
        if where is None:
            raise       # a bug of cnnlab's: the traceback is what to report
        what = (f"called sys.exit({err.code!r})" if isinstance(err, SystemExit)
                else f"raised {type(err).__name__}" + (f": {str(err).strip().splitlines()[0][:300]}"
                                                       if str(err).strip() else ""))
        sys.stderr.write(f"cnnlab: error: the network's own code at {printable(where)} {printable(what)}; "
                         "fix it there\n")
        return EXIT_USAGE


def users_frame(tb: TracebackType | None) -> str | None:
    """``file.py:line in function`` where the user's own code raised: the innermost traceback frame that
    is in a target module's folder (cnnlab.targets.USER_CODE), passing over library frames below it.
    ``None`` when that innermost frame is cnnlab's own (a bug: its traceback is what to report) or no
    user code is on the traceback."""
    import sysconfig
    import traceback

    targets = sys.modules.get("cnnlab.targets")
    user = list(getattr(targets, "USER_CODE", []))
    if not user:
        return None
    own = Path(__file__).resolve().parents[1]
    libraries = {Path(sysconfig.get_paths()[k]).resolve() for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    for frame, line in reversed(list(traceback.walk_tb(tb))):
        if frame.f_code.co_filename.startswith("<"):
            continue
        path = Path(frame.f_code.co_filename).resolve()
        if path.is_relative_to(own):
            return None
        if any(path.is_relative_to(d) for d in libraries):   # torch, numpy, Python: pass over them
            continue
        if any(path.is_relative_to(d) for d in user):
            return f"{path.name}:{line} in {frame.f_code.co_name}"
    return None



if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
