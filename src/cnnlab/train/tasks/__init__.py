"""Tasks the training engine runs: one file per task, registered by name."""

from __future__ import annotations

from typing import Any

from cnnlab.errors import CnnlabError
from cnnlab.train.tasks.base import Task
from cnnlab.train.tasks.classification import Classification
from cnnlab.train.tasks.instance import Instance
from cnnlab.train.tasks.semantic import Semantic

TASKS: dict[str, type[Task]] = {cls.name: cls for cls in (Classification, Semantic, Instance)}


def create_task(cfg: Any) -> Task:
    """The task named by ``cfg.task``, set up for ``cfg``."""
    try:
        return TASKS[cfg.task](cfg)
    except KeyError:
        raise CnnlabError(f"unknown task '{cfg.task}'; use {', '.join(TASKS)}") from None


__all__ = ["TASKS", "Classification", "Instance", "Semantic", "Task", "create_task"]
