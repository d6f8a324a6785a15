"""What every reference op returns: the result, and how each element was made."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

TRACE_LIMIT = 64  # output elements traced by default; large inputs still compute in full


@dataclass
class TraceStep:
    """How one output element was computed."""

    index: tuple[int, ...]          # position in the output
    window: np.ndarray              # the input values the element sees (padded input)
    reduce: str                     # "sum", "max", "mean", "lrn"
    value: Any
    kernel: np.ndarray | None = None
    bias: Any = None
    text: str = ""                  # "1×(-1) + 2×0 + 3×1 = 2"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"index": list(self.index), "window": to_jsonable(self.window),
                             "reduce": self.reduce, "value": to_jsonable(self.value), "text": self.text}
        if self.kernel is not None:
            d["kernel"] = to_jsonable(self.kernel)
            d["products"] = to_jsonable(self.window * self.kernel)
        if self.bias is not None:
            d["bias"] = to_jsonable(self.bias)
        return d


@dataclass
class OpResult:
    """Result of a reference op: ``output`` plus the working."""

    op: str
    output: np.ndarray
    convention: str
    trace: list[TraceStep] = field(default_factory=list)
    trace_total: int = 0            # how many output elements exist (trace may be capped)
    padded_input: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def trace_capped(self) -> bool:
        return len(self.trace) < self.trace_total

    def to_dict(self, explain: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {"op": self.op, "output": to_jsonable(self.output),
                             "output_shape": list(self.output.shape), "convention": self.convention}
        if self.output.dtype == object:
            d["output_float"] = to_jsonable(self.output.astype(float))
        if explain:
            d["notes"] = self.notes
            if self.padded_input is not None:
                d["padded_input"] = to_jsonable(self.padded_input)
            d["trace"] = [step.to_dict() for step in self.trace]
            d["trace_capped"] = self.trace_capped
            d["trace_total"] = self.trace_total
        return d


def fmt(value: Any) -> str:
    """A number for people: ints plain, floats to 6 significant digits, fractions as p/q."""
    if isinstance(value, Fraction):
        return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v):      # max pooling pads with −∞
            return "nan" if math.isnan(v) else ("−∞" if v < 0 else "∞")
        if v == int(v) and abs(v) < 1e15:
            return str(int(v))
        return f"{v:.6g}"
    return str(value)


def to_jsonable(value: Any) -> Any:
    """Arrays to nested lists; Fractions to "p/q" strings (ints stay ints); ±∞ to "-inf"/"inf" (JSON has none)."""
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value] if value.ndim else to_jsonable(value.item())
    if isinstance(value, Fraction):
        return value.numerator if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    if isinstance(value, (np.floating, float)):
        v = float(value)
        if not math.isfinite(v):
            return "nan" if math.isnan(v) else ("-inf" if v < 0 else "inf")
        return int(v) if v == int(v) and abs(v) < 2**53 else v
    if isinstance(value, np.integer):
        return int(value)
    return value


def grid(array: np.ndarray) -> str:
    """Aligned text grid: 1-D on one line, 2-D as rows, 3-D as one grid per channel."""
    if array.ndim == 0:
        return fmt(array.item())
    if array.ndim == 1:
        return "[" + ", ".join(fmt(v) for v in array) + "]"
    if array.ndim == 2:
        cells = [[fmt(v) for v in row] for row in array]
        width = max(len(c) for row in cells for c in row)
        return "\n".join("  ".join(c.rjust(width) for c in row) for row in cells)
    return "\n\n".join(f"channel {c}:\n{grid(array[c])}" for c in range(array.shape[0]))
