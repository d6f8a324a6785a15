"""Numbers typed in, in the forms books and NumPy print them (:func:`parse_array`), or read from
``.npy``/``.json`` files named on the command line (:func:`read_array`).

``1,2,3`` · ``1 2 3`` · ``(1,2,3,4,5,6,7,8)`` (a tuple, as the exercises write
sequences) · nested lists ``[[1,2],[3,4]]`` · NumPy's print format
``[[1 2 3 -1]\n [4 5 6 -2]]`` (rows without commas), also without its outer brackets
(``[1 2 3 -1]\n[4 5 6 -2]``, as the book prints its answer's rows) · fractions ``1/3``.
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab import jsonsafe
from cnnlab.errors import OpsInputError
from cnnlab.text import excerpt

MAX_ABS = 1e100          # larger magnitudes are refused: they overflow float64 arithmetic in the ops
MAX_TOKEN = 64           # characters in one number
MAX_DEPTH = 8            # nesting of lists: ops take at most F×C×H×W
MAX_VALUES = 1_000_000   # numbers in one input: a person checks them by hand
MAX_FILE_BYTES = 64 << 20   # a .npy or .json file named on the command line


def _shown(token: Any) -> str:
    return excerpt(token if isinstance(token, str) else repr(token))


def _number(token: Any, what: str, exact: bool) -> Any:
    value = _parse_number(token, what, exact)
    if not abs(value) <= MAX_ABS:     # also NaN, ±inf
        raise OpsInputError(f"{what}: {str(token)[:40]!r} is too large; numbers go up to ±1e100")
    return value


def _parse_number(token: Any, what: str, exact: bool) -> Any:
    if isinstance(token, bool):
        raise OpsInputError(f"{what}: {_shown(token)} is not a number")
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
    raise OpsInputError(f"{what}: {_shown(token)} is not a number; use numbers like 3, -1.5 or 1/3")


def _depth(data: Any) -> int:
    """How deeply lists nest in ``data`` (iteratively: a hostile input cannot exhaust the recursion limit)."""
    deepest, stack = 0, [(data, 0)]
    while stack:
        node, d = stack.pop()
        if isinstance(node, list):
            deepest = max(deepest, d + 1)
            if deepest > MAX_DEPTH:
                return deepest
            stack.extend((child, d + 1) for child in node)
    return deepest


def _nested(data: Any, what: str, exact: bool) -> np.ndarray:
    if _depth(data) > MAX_DEPTH:
        raise OpsInputError(f"{what}: lists nested more than {MAX_DEPTH} deep; ops take at most F×C×H×W (4 levels)")
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
    """Parse numbers typed in (a string, nested lists or an array); never reads a file.

    ``exact=True`` gives an object array of :class:`fractions.Fraction` (``1/3``
    stays one third). A file of numbers is read by :func:`read_array` (the
    command line does that for an argument ending in ``.npy`` or ``.json``);
    the web page only ever passes typed numbers here.
    """
    if isinstance(text, np.ndarray):
        return _checked_array(text, what, exact)
    if not isinstance(text, str):
        return _nested(text if isinstance(text, list) else [text], what, exact)
    s = text.strip()
    if not s:
        raise OpsInputError(f"{what}: no numbers given")
    if s.endswith((".npy", ".json")):
        raise OpsInputError(f"{what}: {excerpt(s)} is a file name, not numbers; type the numbers "
                            "(e.g. 1,2,3 or [[1,2],[3,4]])")
    if s[0] in "[(":
        return _nested(_bracketed(s, text, what), what, exact)
    if "..." in s:
        raise OpsInputError(f"{what}: {excerpt(s)} is a summarised NumPy printout ('...'); print the whole array "
                            "(numpy.set_printoptions(threshold=sys.maxsize)) or save it with numpy.save")
    return _nested([t for t in re.split(r"[,;\s]+", s) if t], what, exact)


def read_array(path: str | Path, what: str = "--input", exact: bool = False) -> np.ndarray:
    """Numbers from a ``.npy`` file (no pickles) or a ``.json`` file of nested lists, checked like typed ones.

    Files over :data:`MAX_VALUES` numbers or :data:`MAX_FILE_BYTES` bytes are refused before they are read.
    """
    path = Path(path)
    if not path.is_file():
        raise OpsInputError(f"{what}: no such file {excerpt(str(path))}")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise OpsInputError(f"{what}: {excerpt(str(path))} is {size:,} bytes; cnnlab ops reads files of at most "
                            f"{MAX_FILE_BYTES:,} bytes (it works on numbers a person can check)")
    if path.suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False, mmap_mode="r")
        except (ValueError, OSError, EOFError) as err:
            raise OpsInputError(f"{what}: cannot read {excerpt(str(path))} as a NumPy array "
                                f"({excerpt(str(err), 80)})") from None
        return _checked_array(np.asarray(arr), what, exact)
    try:
        data = jsonsafe.loads(path.read_bytes(), MAX_DEPTH)
    except jsonsafe.TooDeep as err:
        raise OpsInputError(f"{what}: {excerpt(str(path))} is {err}") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise OpsInputError(f"{what}: {excerpt(str(path))} is not valid JSON ({excerpt(str(err), 80)})") from None
    return _nested(data if isinstance(data, list) else [data], what, exact)


def _checked_array(arr: np.ndarray, what: str, exact: bool) -> np.ndarray:
    """A real-valued array within the limits (no complex, NaN, ±inf or magnitude past ±1e100)."""
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
                                    or arr.dtype == np.bool_):
        raise OpsInputError(f"{what}: the array holds {arr.dtype}, not real numbers; give integers or floats")
    if arr.size > MAX_VALUES:
        raise OpsInputError(f"{what}: {arr.size:,} numbers; cnnlab ops works on at most {MAX_VALUES:,}")
    if arr.ndim > MAX_DEPTH:
        raise OpsInputError(f"{what}: {arr.ndim} dimensions; at most {MAX_DEPTH}")
    values = arr.astype(np.float64)
    bad = ~(np.abs(values) <= MAX_ABS)          # NaN, ±inf and too large
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise OpsInputError(f"{what}: element {list(first)} is {float(values[first])}; numbers must be finite and "
                            "within ±1e100")
    return parse_array(arr.tolist(), what, exact) if exact else values


_TOKEN = re.compile(r"[\[\]()]|[^\[\]()\s,]+")


def _bracketed(s: str, text: str, what: str) -> list[Any]:
    """Nested lists from brackets or parentheses, numbers separated by commas and/or spaces (NumPy's print)."""
    if "..." in s:
        raise OpsInputError(f"{what}: {excerpt(s)} is a summarised NumPy printout ('...'); print the whole array "
                            "(numpy.set_printoptions(threshold=sys.maxsize)) or save it with numpy.save")
    stack: list[list[Any]] = [[]]
    for token in _TOKEN.findall(s):
        if token in "[(":
            stack.append([])
            if len(stack) > MAX_DEPTH + 1:
                raise OpsInputError(f"{what}: lists nested more than {MAX_DEPTH} deep; ops take at most "
                                    "F×C×H×W (4 levels)")
        elif token in "])":
            if len(stack) == 1:
                raise OpsInputError(f"{what}: cannot read {excerpt(s)}: a closing '{token}' without its opening one")
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(token)
    if len(stack) == 1 and len(stack[0]) > 1 and all(isinstance(row, list) for row in stack[0]):
        return stack[0]      # rows printed one per line without the outer brackets: [1 2 3]\n[4 5 6]
    if len(stack) != 1 or len(stack[0]) != 1:
        raise OpsInputError(f"{what}: cannot read {excerpt(s)}; write nested lists like [[1,2],[3,4]] "
                            "(commas or spaces between numbers)")
    data = stack[0][0]
    return data if isinstance(data, list) else [data]
