"""Numbers typed in: ``1,2,3``, nested lists ``[[1,2],[3,4]]``, ``.npy`` or ``.json`` files."""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.errors import OpsInputError


def _number(token: Any, what: str, exact: bool) -> Any:
    if isinstance(token, bool):
        raise OpsInputError(f"{what}: {token!r} is not a number")
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
    if s.startswith("["):
        try:
            data = json.loads(s)
        except json.JSONDecodeError:
            # allow fractions and bare words inside brackets: quote every token
            quoted = re.sub(r"[^\[\],\s]+", lambda m: json.dumps(m.group(0)), s)
            try:
                data = json.loads(quoted)
            except json.JSONDecodeError:
                raise OpsInputError(f"{what}: cannot read '{text}'; write nested lists like "
                                    "[[1,2],[3,4]]") from None
        return _nested(data if isinstance(data, list) else [data], what, exact)
    return _nested([t for t in s.replace(";", ",").split(",")], what, exact)
