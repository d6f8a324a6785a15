"""``cnnlab analyze MODEL --compare-keras``: Keras's own per-layer numbers beside cnnlab's (Keras installed).

Keras's ``model.summary()`` gives each layer's output shape and parameter
count (moving statistics included); cnnlab's rows give the same for the
converted network. Side by side, layer by layer, the two must agree: the
parameters exactly, the shapes after moving Keras's channels to the front.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.keras.graph import statistics, torch_shape

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Row:
    """One Keras layer: Keras's numbers and cnnlab's (``None`` where cnnlab has no row of that name)."""

    name: str
    kind: str
    keras_params: int
    keras_shape: Shape
    params: int | None
    shape: Shape | None

    @property
    def agrees(self) -> bool:
        return self.params == self.keras_params and self.shape == self.keras_shape

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.kind, "keras_params": self.keras_params,
                "keras_shape": list(self.keras_shape), "params": self.params,
                "shape": None if self.shape is None else list(self.shape), "agrees": self.agrees}


def keras_model(target: str) -> Any:
    """The Keras model a TARGET names, built by Keras itself (a ``.keras`` file in safe mode, or the builder)."""
    from cnnlab.keras.live import prefer_torch_backend

    prefer_torch_backend()
    try:
        import keras
    except ImportError as err:
        raise CnnlabError(f"--compare-keras needs Keras ({err}): pip install -e '.[keras]' (cnnlab chooses "
                          "KERAS_BACKEND=torch unless you set it)") from err
    if target.lower().endswith(".keras"):
        try:
            return keras.saving.load_model(target, compile=False, safe_mode=True)
        except Exception as err:  # noqa: BLE001 - Keras's own message, in one line
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            raise CnnlabError(f"{target}: Keras cannot load it ({first})") from err
    from cnnlab.targets import load_module_target

    return load_module_target(target)


def _keras_style(module: nn.Module | None, params: int) -> int:
    """A row's parameters as Keras counts them: with the persistent buffers (moving statistics)."""
    return params if module is None else params + statistics(module)


def compare(model: Any, report: Any) -> list[Row]:
    """One :class:`Row` per layer of the Keras model (its top level, as ``summary()`` shows it)."""
    ours = {row.name: row for row in report.layers}
    rows = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        mine = ours.get(layer.name)
        rows.append(Row(layer.name, type(layer).__name__, int(layer.count_params()),
                        tuple(torch_shape(tuple(layer.output.shape[1:]))),  # type: ignore[arg-type]
                        None if mine is None else _keras_style(mine.module, mine.params),
                        None if mine is None else tuple(mine.output_shape)))
    return rows
