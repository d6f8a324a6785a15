"""Compare the zoo's models side by side, in numbers, without running them.

Each row reuses :func:`cnnlab.analyze` on a model built on the meta device
(no weights allocated), so the whole zoo is compared in seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from cnnlab.analysis import analyze
from cnnlab.analysis.depth import weight_depth
from cnnlab.errors import CnnlabError
from cnnlab.models import analyzable_names, get_entry
from cnnlab.targets import zoo_target


@dataclass(frozen=True)
class ZooRow:
    """One model's numbers at one input shape and batch size (bytes are float32)."""

    name: str
    family: str
    year: int
    innovation: str
    depth: int | None          # weight layers on the deepest path
    params: int
    macs: int                  # multiply-accumulates per instance (FLOPs = 2 × MACs)
    input_shape: tuple[int, ...]
    batch_size: int
    param_bytes: int
    inference_bytes: int       # textbook: parameters + the two largest consecutive layer outputs
    training_bytes: int        # textbook: every layer output × batch + parameters
    reference: str
    error: str | None = None   # why this model has no numbers at this input (the other rows still do)

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` record (snake_case keys, integer bytes)."""
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        return d


def compare(names: Iterable[str] | None = None, input_shape: Sequence[int] | None = None,
            batch_size: int = 1, on_row: Callable[[ZooRow], None] | None = None) -> list[ZooRow]:
    """One :class:`ZooRow` per model (default: every zoo model but the detection ones, which have no shape table).

    By default each model is analysed at its paper's input (Xception 299×299,
    EfficientNet-B7 600×600, LeNet-5 1×32×32, ...); ``input_shape`` ``(C, H, W)``
    puts every model at that one size instead. A model that cannot take the
    input gets a row with ``error`` set and zeros, so the others still compare.
    ``on_row`` is called as each row is ready (for progress display).
    """
    rows = []
    for name in (list(names) if names else analyzable_names()):
        entry = get_entry(name)
        try:
            target = zoo_target(entry.name, tuple(input_shape) if input_shape else None)
            report = analyze(target.network, target.input_shape, batch_size=batch_size, name=entry.name)
        except CnnlabError as err:
            row = ZooRow(entry.name, entry.family, entry.year, entry.innovation, None, 0, 0,
                         tuple(input_shape or entry.default_input), batch_size, 0, 0, 0, entry.reference, str(err))
        else:
            row = ZooRow(entry.name, entry.family, entry.year, entry.innovation,
                         weight_depth(target.network), report.total_params, report.total_macs,
                         report.input_shape, batch_size, report.memory.param_bytes,
                         report.memory.inference_bytes, report.memory.training_bytes, entry.reference)
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows
