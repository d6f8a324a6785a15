"""Byte counts for people: exact integers, with MB (10^6) and MiB (2^20) labelled."""

from __future__ import annotations

import math
import re


def mb(n_bytes: int, digits: int = 2) -> str:
    """Decimal megabytes, as textbooks print them: ``12.61 MB``."""
    return f"{n_bytes / 1e6:,.{digits}f} MB"


def mib(n_bytes: int, digits: int = 2) -> str:
    """Binary mebibytes, as frameworks and GPUs report them: ``12.03 MiB``."""
    return f"{n_bytes / 2**20:,.{digits}f} MiB"


def human_bytes(n_bytes: int) -> str:
    """``12,613,600 B (12.61 MB, 12.03 MiB)``."""
    return f"{n_bytes:,} B ({mb(n_bytes)}, {mib(n_bytes)})"


def si(count: int) -> str:
    """A count with its SI prefix for quick reading: ``4.09 G``."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(count) >= factor:
            return f"{count / factor:.2f} {prefix}"
    return str(count)


_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_bytes(text: str) -> int:
    """``"8GiB"`` -> 8589934592, ``"8GB"`` -> 8000000000 (GB = 10^9, GiB = 2^30); plain numbers are bytes.

    Raises ``ValueError`` with a message naming the accepted units.
    """
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*", text)
    unit = m.group(2).lower() if m else ""
    if not m or (unit and unit not in _UNITS):
        raise ValueError(f"'{text}' is not a size; write e.g. 8GiB (2^30 bytes), 8GB (10^9 bytes), "
                         "8000MiB or 0.5TiB")
    value = float(m.group(1)) * _UNITS.get(unit, 1)
    if not math.isfinite(value) or value >= 2**63:
        raise ValueError(f"'{text}' is too large a size; write e.g. 8GiB or 1TB")
    if value < 1:
        raise ValueError(f"'{text}' must be a positive size of at least one byte")
    return int(value)
