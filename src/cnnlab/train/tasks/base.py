"""The task interface: what the training engine asks of classification, segmentation, ….

The engine (:mod:`cnnlab.train.engine`) owns everything a task shares — the
run folder, the schedule, the loop, progress, checkpoints and exact resume,
torchrun — and asks its :class:`Task` for the rest, in this order:

1. ``load_data(cfg)``: the data, split three ways (``.train``/``.val``/``.test``, each with ``len``);
2. ``describe_data(data)``: what the run's ``config.json`` records of it (classes, statistics, …);
3. ``build_model(data, saved)``: the network for that data (``saved``: the ``model`` entry of a
   saved config, when a run is resumed); ``rebuild_model(doc)`` the same network from a saved
   ``config.json`` alone (:func:`cnnlab.train.runs.open_run`);
4. per step, ``batch(split, indices, rows, generator)``: the inputs and targets of the rows ``rows`` of
   the global batch ``indices`` (a process under torchrun gets its slice), augmented with draws from
   ``generator`` only; then ``forward(net, inputs, targets)`` (the network's output: ``net(inputs)``, or
   for detection models, which take the targets in training, their losses), ``loss(outputs, targets)`` and ``step_stats(outputs, targets)`` (sums the
   engine accumulates, e.g. correct predictions);
5. per epoch, ``train_metrics(sums, seen)`` and ``validate(model, split, device)``; the engine keeps the
   weights with the best ``monitor`` value;
6. at the end, ``test_report(folder, model, data, device, history)``: ``test.json`` and the figures.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from cnnlab.errors import CnnlabError


class Task(ABC):
    """One kind of training problem, plugged into the engine."""

    name: ClassVar[str]
    metric: ClassVar[str]            # the per-epoch metric besides the loss, e.g. "acc" (train_acc, val_acc)
    monitor: ClassVar[str]           # the validation value that picks the best weights (higher is better)
    any_size: ClassVar[bool] = False  # its networks take images of any size (no resize unless --size)

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg

    @abstractmethod
    def load_data(self) -> Any:
        """The data with ``train``, ``val`` and ``test`` splits."""

    @abstractmethod
    def describe_data(self, data: Any) -> dict[str, Any]:
        """JSON-ready facts about the data for ``config.json`` (shape, classes, sizes, statistics)."""

    def data_line(self, data: Any, model: nn.Module) -> str:
        """One line for the start of a run: what was read (layout), images per split, the classes with their
        ids, the sizes seen, and what is padded or resized."""
        counts = f"{len(data.train)} train / {len(data.val)} val / {len(data.test)} test images"
        ids = getattr(data, "category_ids", None)
        skipped = len(getattr(data, "skipped", []))
        left_out = f", {skipped} left out (listed in log.txt)" if skipped else ""
        return (f"read {getattr(data, 'layout', '') or data.name}: {counts}{left_out}; {len(data.classes)} "
                f"classes: {class_list(data.classes, ids)}; {self.size_line(data, model)}")

    def size_line(self, data: Any, model: nn.Module) -> str:
        """The sizes seen and what is done about them (the tasks say more)."""
        seen = getattr(data, "seen", "") or "×".join(str(v) for v in data.shape[1:])
        note = getattr(data, "note", None)
        return f"sizes {seen}" + (f"; {note}" if note else "")

    @abstractmethod
    def build_model(self, data: Any, saved: dict[str, Any] | None = None) -> tuple[nn.Module, dict[str, Any]]:
        """``(module, info)``: a fresh network for ``data`` and how to rebuild it."""

    @abstractmethod
    def batch(self, split: Any, indices: torch.Tensor, rows: slice,
              generator: torch.Generator) -> tuple[torch.Tensor, Any]:
        """``(inputs, targets)`` on CPU for rows ``rows`` of the global batch ``indices``."""

    def order(self, split: Any, order: torch.Tensor, batch: int) -> torch.Tensor:
        """The epoch's shuffled ``order`` of the training items, regrouped if the task batches better so (images
        of one size together); a pure function of its arguments, so a resumed run makes the same batches."""
        return order

    def forward(self, net: nn.Module, inputs: torch.Tensor, targets: Any) -> Any:
        """The network's training-mode output for a batch (what :meth:`loss` and :meth:`step_stats` read)."""
        out = net(inputs)
        if not isinstance(out, torch.Tensor):
            raise CnnlabError(f"the network's forward returned {type(out).__name__}, not a tensor of scores; "
                              "return the output tensor from forward")
        return out

    @abstractmethod
    def loss(self, outputs: Any, targets: Any) -> torch.Tensor:
        """The scalar training loss."""

    @abstractmethod
    def step_stats(self, outputs: Any, targets: Any) -> dict[str, float]:
        """Sums over the batch that :meth:`train_metrics` turns into epoch metrics."""

    @abstractmethod
    def train_metrics(self, sums: dict[str, float], seen: float) -> dict[str, float]:
        """Training metrics of an epoch, e.g. ``{"train_acc": ...}``."""

    @abstractmethod
    def validate(self, model: nn.Module, split: Any, device: str) -> dict[str, float]:
        """Validation metrics: ``val_<metric>`` at least, and ``val_loss`` where the model has one in eval mode."""

    @abstractmethod
    def test_report(self, folder: Path, model: nn.Module, data: Any, device: str,
                    history: list[dict[str, float]]) -> dict[str, Any]:
        """Evaluate the best weights on the test split; write ``test.json`` and figures; return the report."""

    @abstractmethod
    def summary(self, report: dict[str, Any]) -> str:
        """One line for the console about a finished run's test report."""

    @abstractmethod
    def rebuild_model(self, doc: dict[str, Any]) -> nn.Module:
        """The network of a saved run, from its ``config.json`` alone (fresh weights; :func:`cnnlab.train.runs.
        open_run` loads the best ones)."""


def class_list(classes: list[str], category_ids: list[int] | None = None, limit: int = 12) -> str:
    """``'0 background, 1 cat (COCO id 17), …'``: the first ``limit`` classes with their indices."""
    shown = [(name if name == str(k) else f"{k} {name}")        # digits' classes are their indices: '0', not '0 0'
             + (f" (id {category_ids[k]})" if category_ids and k and category_ids[k] != k else "")
             for k, name in enumerate(classes[:limit])]
    return ", ".join(shown) + (f", … ({len(classes) - limit} more)" if len(classes) > limit else "")
