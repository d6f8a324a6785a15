"""Input shapes as users type them (torch-free: the CLI parses them before loading anything)."""

from __future__ import annotations

from cnnlab.errors import ShapeError


def parse_shape(text: str, what: str = "--input") -> tuple[int, ...]:
    """``"3,224,224"`` or ``"3x224x224"`` -> ``(3, 224, 224)``."""
    parts = [p for p in text.replace("x", ",").replace("×", ",").replace(" ", "").split(",") if p]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if len(shape) not in (1, 3) or min(shape, default=0) <= 0:
        raise ShapeError(f"{what} '{text}' must be C,H,W (e.g. 3,224,224) or N for a vector input, "
                         "with positive integers")
    return shape
