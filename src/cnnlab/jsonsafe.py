"""JSON from outside (a request body, a file named by the user) read without Python's recursion limit.

``json.loads`` recurses once per nested ``[`` or ``{``: 30,000 of them raise
``RecursionError`` deep inside the parser. :func:`nesting` measures the depth
with a linear scan first, so a caller can refuse the document in one line
before parsing it.
"""

from __future__ import annotations

import json
from typing import Any


def nesting(text: str | bytes) -> int:
    """The deepest nesting of ``[``/``{`` in a JSON text (brackets inside strings do not count)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


class TooDeep(ValueError):
    """A JSON document nested deeper than allowed."""


class DuplicateKey(ValueError):
    """A key given twice in one JSON object (``json`` keeps the last silently)."""


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise DuplicateKey(f"the key '{key[:40]}' is given twice in one object; keep one")
        seen[key] = value
    return seen


def loads(text: str | bytes, max_depth: int, unique_keys: bool = False) -> Any:
    """``json.loads`` after checking the nesting; :class:`TooDeep` (a ValueError) past ``max_depth``; with
    ``unique_keys``, :class:`DuplicateKey` for a key given twice."""
    depth = nesting(text)
    if depth > max_depth:
        raise TooDeep(f"nested {depth} levels deep; at most {max_depth} are allowed")
    return json.loads(text, object_pairs_hook=_unique if unique_keys else None)
