"""Training: one engine (:mod:`cnnlab.train.engine`) for every task (:mod:`cnnlab.train.tasks`).

    from cnnlab.train import TrainConfig, train
    folder = train(TrainConfig(data="fashion-mnist", out="runs/fashion"))

Names load lazily, so ``cnnlab.train.config`` (torch-free) can serve the CLI's parser.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {"TrainConfig": "config", "load_run_config": "config", "KILL_HOOK": "engine", "Trainer": "engine",
          "make_optimizer": "engine", "train": "engine", "open_run": "runs", "Run": "runs"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"cnnlab.train.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'cnnlab.train' has no attribute '{name}'")


__all__ = list(_WHERE)
