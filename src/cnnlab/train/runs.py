"""A saved run, reopened one way (:func:`open_run`), and what binds its files together.

    from cnnlab.train.runs import open_run
    run = open_run("runs/fashion")              # any task; open_run(path, "semantic") insists on one
    run.model, run.classes, run.normalise(images)
    data = run.load_data()                      # its own data, the split checked against the record

Every command that reads a run — ``eval``, ``predict``, ``segment eval/predict``,
``fcn convert/scan``, ``explore``, the studies — goes through :func:`open_run`:
the run's task (from its ``config.json``) rebuilds the network, the best
weights are loaded and checked to be this run's, and the data is reloaded by
the same task code that trained on it.

A run folder's ``config.json`` carries a ``run_id`` and a digest of itself
(:func:`cnnlab.train.config.seal`); every weights and state file of the run
carries the same ``run_id`` in its metadata, and ``test.json`` too. So a
``model.safetensors`` copied in from another run, a ``state.safetensors``
swapped between runs, or a ``config.json`` edited by hand is refused in one line.

The split is a fact of the run as well: ``config.json`` records a BLAKE2b
digest of each split's images and labels (:func:`split_digests`). Reopening
the run's data — to evaluate it, to show it on the page, to resume — checks
the digests (:func:`check_split`), so a data folder that changed since, or a
different ``ds`` found from another working folder, is an error naming the
split instead of a silent evaluation on images the network was trained on.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnlab.errors import CnnlabError

SPLITS = ("train", "val", "test")


def _tensor_bytes(h: Any, t: torch.Tensor) -> None:
    t = t.detach().cpu().contiguous()
    h.update(f"{t.dtype}|{tuple(t.shape)}|".encode())
    if t.numel():
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())


def split_digest(split: Any) -> str:
    """BLAKE2b of one split's images and targets (labels, masks, or per-image instance masks and classes)."""
    h = hashlib.blake2b(digest_size=16)
    _tensor_bytes(h, split.images)
    for name in ("labels", "masks", "sizes"):           # sizes: images of different sizes (None otherwise)
        value = getattr(split, name, None)
        if isinstance(value, torch.Tensor):
            _tensor_bytes(h, value)
        elif isinstance(value, list):
            for t in value:
                _tensor_bytes(h, t)
    return h.hexdigest()


def split_digests(data: Any) -> dict[str, str]:
    """The digest of each split of ``data`` (``train``, ``val``, ``test``)."""
    return {k: split_digest(getattr(data, k)) for k in SPLITS}


def check_split(run: Path, doc: dict[str, Any], data: Any, splits: tuple[str, ...] = ("test",)) -> None:
    """The reloaded ``data`` gives the run's own ``splits`` (as recorded when it was trained), or one line.

    Runs made before the digests were recorded are not checked."""
    recorded = doc["data"].get("split_digest")
    if not isinstance(recorded, dict):
        return
    for k in splits:
        if recorded.get(k) != split_digest(getattr(data, k)):
            where = doc["config"].get("data")
            raise CnnlabError(f"{run}: the data '{where}' no longer gives the {k} split this run was trained "
                              f"with (its images or labels changed since); restore the data, or evaluate on "
                              "other data on purpose with --data")


def check_file_run(path: Path, meta: dict[str, Any], run_id: str | None) -> None:
    """A file of a run (weights, state, test report) carries the run's id, or one line naming the file."""
    found = meta.get("run_id") if isinstance(meta, dict) else None
    if run_id is None:                 # a run from before run ids: a file that carries one came from elsewhere
        if found is not None:
            raise CnnlabError(f"{path}: belongs to run {str(found)[:16]}, but this run's config.json names no run "
                              "(it was made by an older cnnlab, or its run_id was removed): restore the run's own "
                              "files")
        return
    if found != run_id:
        other = f"run {str(found)[:16]}" if found else "no run (or an older cnnlab)"
        raise CnnlabError(f"{path}: belongs to {other}, not to this run ({run_id}); it was copied in from "
                          "another folder: restore this run's own file, or retrain")


def read_test_report(run: Path, doc: dict[str, Any]) -> dict[str, Any]:
    """The run's ``test.json``, checked to be this run's own (bounded in size and nesting)."""
    from cnnlab import jsonsafe

    from cnnlab.files import read_run_file

    path = Path(run) / "test.json"
    raw = read_run_file(path, 64 << 20)               # a regular file of the run, not a link or a FIFO
    try:
        report = jsonsafe.loads(raw, 64)
    except (ValueError, UnicodeDecodeError) as err:
        raise CnnlabError(f"{path}: unreadable ({str(err)[:80]}); the run folder is damaged") from None
    if not isinstance(report, dict):
        raise CnnlabError(f"{path}: not a test report; the run folder is damaged")
    check_file_run(path, report, doc.get("run_id"))
    return report


TASK_NAMES = {"classification": "classification", "semantic": "semantic segmentation",
              "instance": "instance segmentation"}
TASK_COMMANDS = {"classification": "'cnnlab eval' / 'cnnlab predict'",
                 "semantic": "'cnnlab segment eval' / 'cnnlab segment predict'",
                 "instance": "'cnnlab segment eval' / 'cnnlab segment predict'"}


@dataclass
class Run:
    """A saved run: its folder, ``config.json`` (``doc``), task, network with the best weights (eval mode)."""

    folder: Path
    doc: dict[str, Any]
    task: Any                                  # cnnlab.train.tasks.Task set up with the run's config
    model: nn.Module
    mean: torch.Tensor = field(repr=False)     # (1, C, 1, 1), the training images' statistics
    std: torch.Tensor = field(repr=False)

    @property
    def config(self) -> Any:
        return self.task.cfg

    @property
    def task_name(self) -> str:
        return str(self.task.name)

    @property
    def classes(self) -> list[str]:
        return list(self.doc["data"]["classes"])

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.doc["data"]["shape"])     # type: ignore[return-value]

    def require(self, task: str) -> None:
        """One line naming the right commands when this run is not a ``task`` run."""
        require_task(self.folder, self.doc, task)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images (N, C, H, W) as the network's input: scaled to [0, 1] and standardised."""
        from cnnlab.data.normalise import normalise

        return normalise(images, self.mean, self.std)

    def load_data(self, source: str | None = None, data_dir: str | None = None, skip_bad: bool | None = None
                  ) -> Any:
        """The run's data reloaded by its task (``source``: other data at the run's size and channels, on
        purpose; the run's own data is checked to give the split it was trained on)."""
        from cnnlab.train.tasks import create_task

        cfg = self.config
        c, h, w = self.shape
        # networks that take any size (padded inside): images keep theirs unless the run chose --size
        size = cfg.size if self.task.any_size else (h, w)
        changes: dict[str, Any] = {"channels": c, "size": size}
        if source or data_dir:
            changes.update(data=source or cfg.data, data_dir=data_dir or cfg.data_dir,
                           images=None if source else cfg.images)
        if skip_bad is not None:
            changes["skip_bad"] = skip_bad or cfg.skip_bad
        data = create_task(replace(cfg, **changes)).load_data()
        if not (source or data_dir):
            check_split(self.folder, self.doc, data)
        return data

    def target(self) -> Any:
        """The network as a TARGET for analysis (:mod:`cnnlab.targets`): the saved spec adapted to the data, or
        the zoo network with the saved options, on the meta device."""
        from cnnlab.targets import Target

        model = self.doc["model"]
        if model["kind"] == "spec":
            from cnnlab.train.model import saved_spec

            spec = saved_spec(model["spec_text"], self.shape, len(self.classes), str(self.folder / "model_spec.yaml"))
            return Target(spec, self.shape, spec.name)
        with torch.device("meta"):
            net = self.task.rebuild_model(self.doc)
        return Target(net, self.shape, model["name"])


def require_task(folder: Path, doc: dict[str, Any], task: str) -> None:
    """One line naming the commands for the run's own kind when a command takes another kind of run."""
    found = doc["config"].get("task", "classification")
    if found != task:
        raise CnnlabError(f"{folder}: a {TASK_NAMES.get(found, found)} run, not a {TASK_NAMES.get(task, task)} run; "
                          f"use {TASK_COMMANDS.get(found, 'the commands of its kind')} for it")


def open_run(path: str | Path, task: str | None = None, weights: bool = True) -> Run:
    """The run in ``path``: its checked ``config.json``, its task, and its network with the best weights in eval
    mode (``weights=False``: on the meta device, for analysis). ``task`` names the kind a command takes; another
    kind is one line naming the commands for it."""
    from cnnlab.train.checkpoint import load_weights
    from cnnlab.train.config import TrainConfig, load_run_config
    from cnnlab.train.tasks import create_task

    folder = Path(path)
    doc = load_run_config(folder)
    if task is not None:
        require_task(folder, doc, task)
    run_task = create_task(TrainConfig.from_saved(doc["config"], out=str(folder)))
    with contextlib.nullcontext() if weights else torch.device("meta"):   # no weights: shapes only
        model = run_task.rebuild_model(doc)
    if weights:
        path_w = folder / "model.safetensors"
        check_file_run(path_w, load_weights(path_w, model), doc.get("run_id"))
    channels = doc["data"]["shape"][0]
    mean = torch.tensor(doc["data"].get("mean") or [0.0] * channels).view(1, -1, 1, 1)
    std = torch.tensor(doc["data"].get("std") or [1.0] * channels).view(1, -1, 1, 1)
    return Run(folder, doc, run_task, model.eval(), mean, std)
