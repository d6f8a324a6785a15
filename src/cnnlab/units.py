"""Byte counts for people: exact integers, with MB (10^6) and MiB (2^20) labelled."""

from __future__ import annotations


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
