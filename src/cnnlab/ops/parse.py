"""Numbers typed in, in the forms books and NumPy print them, or ``.npy``/``.json`` files.

``1,2,3`` · ``1 2 3`` · ``(1,2,3,4,5,6,7,8)`` (a tuple, as the exercises write
sequences) · nested lists ``[[1,2],[3,4]]`` · NumPy's print format
``[[1 2 3 -1]\n [4 5 6 -2]]`` (rows without commas) · fractions ``1/3``.
"""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.errors import OpsInputError


MAX_ABS = 1e100          # larger magnitudes are refused: they overflow float64 arithmetic in the ops
MAX_TOKEN = 64           # characters in one number


def _number(token: Any, what: str, exact: bool) -> Any:
    value = _parse_number(token, what, exact)
    if not abs(value) <= MAX_ABS:     # also NaN, ±inf
        raise OpsInputError(f"{what}: {str(token)[:40]!r} is too large; numbers go up to ±1e100")
    return value


def _parse_number(token: Any, what: str, exact: bool) -> Any:
    if isinstance(token, bool):
        raise OpsInputError(f"{what}: {token!r} is not a number")
    if isinstance(token, str) and len(token.strip()) > MAX_TOKEN:
        raise OpsInputError(f"{what}: a number of {len(token.strip())} characters; use at most {MAX_TOKEN}")
    if isinstance(token, (int, float)):
        if exact:
            return Fraction(token) if isinstance(token, int) else Fraction(str(token))
        return float(token)
    if isinstance(token, str):
        try:
            value = Fraction(token.strip())  # "3", "-1.5", "1/3", "2e-3"
        except (ValueError, ZeroDivisionError):
            value = None
        if value is not None:
            if not exact and abs(value) > MAX_ABS:
                raise OpsInputError(f"{what}: {token.strip()[:40]!r} is too large; numbers go up to ±1e100")
            return value if exact else float(value)
    raise OpsInputError(f"{what}: {token!r} is not a number; use numbers like 3, -1.5 or 1/3")


def _nested(data: Any, what: str, exact: bool) -> np.ndarray:
    def depth_shape(node: Any, path: str) -> tuple[int, ...]:
        if isinstance(node, list):
            if not node:
                raise OpsInputError(f"{what}: empty list at {path or 'top level'}")
            shapes = [depth_shape(child, f"{path}[{i}]") for i, child in enumerate(node)]
            if any(s != shapes[0] for s in shapes):
                bad = next(i for i, s in enumerate(shapes) if s != shapes[0])
                raise OpsInputError(f"{what}: ragged list: {path or 'top level'}[{bad}] has shape "
                                    f"{list(shapes[bad])}, expected {list(shapes[0])}; every row needs "
                                    "the same length")
            return (len(node), *shapes[0])
        return ()

    shape = depth_shape(data, "")

    def flat(node: Any) -> list[Any]:
        return [x for child in node for x in flat(child)] if isinstance(node, list) else [node]

    values = [_number(v, what, exact) for v in flat(data)]
    return np.array(values, dtype=object if exact else np.float64).reshape(shape)


def parse_array(text: str | Any, what: str = "--input", exact: bool = False) -> np.ndarray:
    """Parse numbers typed on the command line or named by a file path.

    ``exact=True`` gives an object array of :class:`fractions.Fraction` (``1/3``
    stays one third).
    """
    if isinstance(text, np.ndarray):
        return text.astype(object) if exact else text.astype(np.float64)
    if not isinstance(text, str):
        return _nested(text if isinstance(text, list) else [text], what, exact)
    s = text.strip()
    if s.endswith((".npy", ".json")):
        path = Path(s)
        if not path.is_file():
            raise OpsInputError(f"{what}: no such file '{s}'")
        if s.endswith(".npy"):
            try:
                arr = np.load(path, allow_pickle=False)
            except (ValueError, OSError) as err:
                raise OpsInputError(f"{what}: cannot read '{s}' as a NumPy array ({err})") from None
            if not np.issubdtype(arr.dtype, np.number):
                raise OpsInputError(f"{what}: '{s}' holds {arr.dtype}, not numbers")
            return parse_array(arr.tolist(), what, exact) if exact else arr.astype(np.float64)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise OpsInputError(f"{what}: '{s}' is not valid JSON ({err})") from None
        return _nested(data if isinstance(data, list) else [data], what, exact)
    if not s:
        raise OpsInputError(f"{what}: no numbers given")
    if s[0] in "[(":
        return _nested(_bracketed(s, text, what), what, exact)
    if "..." in s:
        raise OpsInputError(f"{what}: '{text}' is a summarised NumPy printout ('...'); print the whole array "
                            "(numpy.set_printoptions(threshold=sys.maxsize)) or save it with numpy.save")
    return _nested([t for t in re.split(r"[,;\s]+", s) if t], what, exact)


_TOKEN = re.compile(r"[\[\]()]|[^\[\]()\s,]+")


def _bracketed(s: str, text: str, what: str) -> list[Any]:
    """Nested lists from brackets or parentheses, numbers separated by commas and/or spaces (NumPy's print)."""
    if "..." in s:
        raise OpsInputError(f"{what}: '{text}' is a summarised NumPy printout ('...'); print the whole array "
                            "(numpy.set_printoptions(threshold=sys.maxsize)) or save it with numpy.save")
    stack: list[list[Any]] = [[]]
    for token in _TOKEN.findall(s):
        if token in "[(":
            stack.append([])
        elif token in "])":
            if len(stack) == 1:
                raise OpsInputError(f"{what}: cannot read '{text}': a closing '{token}' without its opening one")
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(token)
    if len(stack) != 1 or len(stack[0]) != 1:
        raise OpsInputError(f"{what}: cannot read '{text}'; write nested lists like [[1,2],[3,4]] "
                            "(commas or spaces between numbers)")
    data = stack[0][0]
    return data if isinstance(data, list) else [data]
