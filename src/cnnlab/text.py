"""Text from outside (file names, keys, layer names, a request) made safe to print: one place, every printer.

A name can hold a newline (it would forge a line of a log or split an error),
an ESC sequence (it would rewrite the terminal), a right-to-left override
(it would show ``gpj.exe`` as ``exe.jpg``) or, from a file name that is not
UTF-8, a lone surrogate (it cannot be encoded at all). :func:`printable` shows
each as an escape; :func:`excerpt` also shortens what it quotes.
"""

from __future__ import annotations

import re
import reprlib
from typing import Any

# C0 and C1 controls (newline and tab included), the bidirectional overrides and isolates, zero-width
# characters that hide text, and lone surrogates (Python's stand-in for undecodable bytes of a file name)
_HIDDEN = "\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff"
_UNPRINTABLE = re.compile(f"[\x00-\x1f{_HIDDEN}]")
_TABLE_UNPRINTABLE = re.compile(f"[\x00-\x08\x0b-\x1f{_HIDDEN}]")     # newlines and tabs kept


_REPR = reprlib.Repr()
_REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict, _REPR.maxlevel = 40, 40, 6, 4, 3


def _escape(ch: str) -> str:
    shown = repr(ch)[1:-1]            # Python's own escapes: \n, \x1b, \u202e, \udcff
    return shown if shown != ch else f"\\u{ord(ch):04x}"


def printable(text: str) -> str:
    """``text`` with control, bidi-override, zero-width and undecodable characters shown as escapes
    (``\\n``, ``\\x1b``, ``\\u202e``), so it stays one line and cannot rewrite or reorder the terminal."""
    return _UNPRINTABLE.sub(lambda m: _escape(m.group()), str(text))


def printable_block(text: str) -> str:
    """:func:`printable` that keeps newlines and tabs (a table or a multi-line report)."""
    return _TABLE_UNPRINTABLE.sub(lambda m: _escape(m.group()), str(text))


def excerpt(value: Any, limit: int = 40) -> str:
    """A short, quoted, printable excerpt for an error message: never the whole of a long value.

    A string is quoted as typed (cut after ``limit`` characters, with its length); any other value (a number,
    a list from a JSON file) is shown by :mod:`reprlib`, which never builds the whole ``repr`` of a huge one."""
    if isinstance(value, str):
        short = value if len(value) <= limit else value[:limit] + f"… ({len(value):,} characters)"
        return "'" + printable(short) + "'"
    text = _REPR.repr(value)
    return printable(text if len(text) <= limit else text[:limit - 1] + "…")


def label(text: str, limit: int = 80) -> str:
    """A name from outside (a class, an image file) for one cell or line of output: :func:`printable`, and cut
    after ``limit`` characters with an ellipsis (a 100,000-character category name is not printed whole)."""
    shown = printable(str(text))
    return shown if len(shown) <= limit else shown[:limit - 1] + "…"


_LONG_WORD = re.compile(r"\S{121,}")


def shorten_words(text: str, keep: int = 60) -> str:
    """``text`` with every run of more than 120 non-space characters (a pasted value, a 4,000-character file
    name) cut to its first ``keep`` characters and its length: an error never echoes a long value whole."""
    return _LONG_WORD.sub(lambda m: f"{m.group()[:keep]}…({len(m.group()):,} characters)", text)
