"""Field parsers for spec layers.

Each parser takes the raw value read from YAML/JSON and returns the typed
value, or raises :class:`ValueError` with a message that says what is
expected. The caller adds the location (file, layer, field).
"""

from __future__ import annotations

import math
from typing import Any, Callable

Pair = tuple[int, int]
# "same", "valid", or explicit zero padding (rows, cols) on each side.
Padding = str | Pair

Parser = Callable[[Any], Any]


def _is_int(value: Any) -> bool:
    # bool is an int subclass in Python; `kernel: true` is a typo, not 1.
    return isinstance(value, int) and not isinstance(value, bool)


def positive_int(value: Any) -> int:
    if not _is_int(value) or value <= 0:
        raise ValueError(f"must be a positive integer (got {value!r})")
    return int(value)


def positive_pair(value: Any) -> Pair:
    """An int ``k`` (meaning k×k), a list ``[height, width]`` or a string ``"3x3"`` / ``"3×5"``, all > 0."""
    if isinstance(value, str):
        parts = [p.strip() for p in value.lower().replace("×", "x").split("x")]
        if len(parts) in (1, 2) and all(p.isdigit() for p in parts):
            value = int(parts[0]) if len(parts) == 1 else [int(p) for p in parts]
    if _is_int(value):
        if value <= 0:
            raise ValueError(f"must be a positive integer or [height, width] (got {value!r})")
        return (int(value), int(value))
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_int(v) for v in value):
        if min(value) <= 0:
            raise ValueError(f"must be positive (got {list(value)!r})")
        return (int(value[0]), int(value[1]))
    raise ValueError(f"must be a positive integer or [height, width] (got {value!r})")


def padding(value: Any) -> Padding:
    """``same`` (TensorFlow/Keras rule), ``valid``, an int, or ``[rows, cols]``."""
    if isinstance(value, str):
        low = value.lower()
        if low in ("same", "valid"):
            return low
        raise ValueError(f"must be 'same', 'valid', an integer or [rows, cols] (got {value!r})")
    if _is_int(value):
        if value < 0:
            raise ValueError(f"must not be negative (got {value})")
        return (int(value), int(value))
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_int(v) for v in value):
        if min(value) < 0:
            raise ValueError(f"must not be negative (got {list(value)!r})")
        return (int(value[0]), int(value[1]))
    raise ValueError(f"must be 'same', 'valid', an integer or [rows, cols] (got {value!r})")


def pool_padding(value: Any) -> str:
    if isinstance(value, str) and value.lower() in ("same", "valid"):
        return value.lower()
    raise ValueError(f"must be 'same' or 'valid' (got {value!r})")


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(f"must be true or false (got {value!r})")


def positive_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"must be a positive number (got {value!r})")
    return float(value)


def number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"must be a number (got {value!r})")
    return float(value)


def rate(value: Any) -> float:
    """A probability in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"must be a number in [0, 1) (got {value!r})")
    return float(value)


def name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a non-empty string (got {value!r})")
    return value.strip()
