"""What defines a training run: :class:`TrainConfig`, saved as the run folder's ``config.json`` (torch-free)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnlab.errors import CnnlabError
from cnnlab.vocab import AUGMENT_PRESETS, DEFAULT_LR, OPTIMIZERS, TRAIN_PRECISIONS, TTA_MODES

@dataclass
class TrainConfig:
    """Everything that defines a run (saved as ``config.json``); defaults are the documented recipe."""

    task: str = "classification"
    model: str = "small_cnn"
    data: str = "digits"
    data_dir: str | None = None
    epochs: int = 10
    batch: int = 64
    lr: float | None = None           # peak of the schedule; default cnnlab.optim.DEFAULT_LR[optimizer]
    weight_decay: float = 5e-4        # on weights of ≥ 2 dimensions only (not on biases or norm scales)
    optimizer: str = "adam"
    augment: str = "none"
    label_smoothing: float = 0.0
    tta: str = "none"                 # classification: test-time augmentation of the test report (cnnlab.vocab)
    val_fraction: float = 0.1
    seed: int = 0
    device: str = "cpu"
    precision: str = "fp32"
    channels_last: bool = False       # NHWC memory layout for model and batches
    size: tuple[int, int] | None = None
    channels: int | None = None
    train_size: int | None = None     # classification: train on a seeded subset of this many training images
    permute_pixels: bool = False      # classification: scramble every image's pixels by one fixed permutation
    strict: bool = False              # classification: fail on an undecodable image instead of skipping it
    skip_bad: bool = False            # segmentation: leave out bad image/mask pairs instead of failing
    model_args: dict[str, Any] = field(default_factory=dict)   # options of the model's builder (width, depth, …)
    checkpoint_every: int = 0         # also checkpoint every N steps (0: only at epoch ends)
    warmup: float = 0.15              # share of each schedule segment spent warming up
    segments: list[int] = field(default_factory=list)   # epochs where a --resume --epochs extension began
    out: str = "runs/run"

    def check(self) -> None:
        """Raise :class:`CnnlabError` naming the first option out of range."""
        problems = [
            (self.epochs < 1, f"--epochs must be at least 1 (got {self.epochs})"),
            (self.batch < 1, f"--batch must be at least 1 (got {self.batch})"),
            (self.lr is not None and not (0 < self.lr <= 10), f"--lr must be in (0, 10] (got {self.lr})"),
            (self.weight_decay < 0, f"--weight-decay must be ≥ 0 (got {self.weight_decay})"),
            (not 0 <= self.label_smoothing < 1, f"--label-smoothing must be in [0, 1) (got {self.label_smoothing})"),
            (self.optimizer not in OPTIMIZERS, f"unknown optimizer '{self.optimizer}'; use {', '.join(OPTIMIZERS)}"),
            (self.tta not in TTA_MODES, f"unknown --tta '{self.tta}'; use {', '.join(TTA_MODES)}"),
            (self.augment not in AUGMENT_PRESETS,
             f"unknown augmentation '{self.augment}'; use {', '.join(AUGMENT_PRESETS)}"),
            (self.precision not in TRAIN_PRECISIONS,
             f"unknown precision '{self.precision}'; use {', '.join(TRAIN_PRECISIONS)}"),
            (self.device not in ("cpu", "cuda"), f"unknown device '{self.device}'; use cpu or cuda"),
            (not 0 < self.val_fraction < 1, f"--val-fraction must be between 0 and 1 (got {self.val_fraction})"),
            (self.checkpoint_every < 0, f"--checkpoint-every must be ≥ 0 (got {self.checkpoint_every})"),
            (not 0 <= self.warmup < 1, f"warmup must be in [0, 1) (got {self.warmup})"),
            (not 0 <= self.seed < 2**32, f"--seed must be between 0 and {2**32 - 1} (got {self.seed})"),
            (self.train_size is not None and self.train_size < 1,
             f"--train-size must be at least 1 (got {self.train_size})"),
        ]
        for bad, message in problems:
            if bad:
                raise CnnlabError(message)
        if self.device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise CnnlabError("--device cuda needs a CUDA GPU and this machine has none; use --device cpu")
        if self.precision == "fp16-amp" and self.device != "cuda":
            raise CnnlabError("--precision fp16-amp needs --device cuda; on CPU use bf16-amp")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    @classmethod
    def from_saved(cls, saved: dict[str, Any], out: str) -> TrainConfig:
        """The config of a saved run (older runs lack newer fields: they get the values those runs used)."""
        known = {k: v for k, v in saved.items() if k in cls.__dataclass_fields__}
        if known.get("size"):
            known["size"] = tuple(known["size"])
        return cls(**{**known, "out": out})


def load_run_config(folder: Path) -> dict[str, Any]:
    """The ``config.json`` of a run folder, or a clear error when ``folder`` is not a run."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise CnnlabError(f"{folder}: not a cnnlab run folder (no config.json); give the --out folder of a "
                          "'cnnlab train' run")
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise CnnlabError(f"{path}: unreadable ({type(err).__name__}); the run folder is damaged") from None
    missing = [k for k in ("config", "model", "data") if not isinstance(doc, dict) or not isinstance(doc.get(k), dict)]
    if missing:
        raise CnnlabError(f"{path}: no '{missing[0]}' section; the run folder is damaged or not cnnlab's")
    try:
        TrainConfig.from_saved(doc["config"], out=str(folder)).check()
    except (TypeError, ValueError, CnnlabError) as err:
        raise CnnlabError(f"{path}: its 'config' section does not fit this cnnlab ({str(err)[:200]}); the run "
                          "folder is damaged") from None
    problem = _schema_problem(doc)
    if problem:
        raise CnnlabError(f"{path}: {problem}; the run folder is damaged or not cnnlab's")
    return doc


def _schema_problem(doc: dict[str, Any]) -> str | None:
    """What is wrong with the 'model' and 'data' sections of a run's config.json (types and ranges), if anything."""
    model, data = doc["model"], doc["data"]
    if model.get("kind") not in ("spec", "zoo") or not isinstance(model.get("name"), str):
        return "'model' needs kind 'spec' or 'zoo' and a name"
    if model["kind"] == "spec" and not isinstance(model.get("spec_text"), str):
        return "'model' of kind 'spec' needs its spec_text"
    if not isinstance(model.get("options", {}), dict):
        return "'model.options' must be a mapping"
    shape = data.get("shape")
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(v, int) and 1 <= v <= 65536 for v in shape)):
        return "'data.shape' must be [C, H, W] with sizes 1..65536"
    classes = data.get("classes")
    if not (isinstance(classes, list) and 1 <= len(classes) <= 100_000 and all(isinstance(c, str) for c in classes)):
        return "'data.classes' must be a list of class names"
    for key in ("mean", "std"):
        v = data.get(key)
        if v is not None and not (isinstance(v, list) and len(v) == shape[0]
                                  and all(isinstance(x, (int, float)) and x == x for x in v)):
            return f"'data.{key}' must hold one number per channel ({shape[0]})"
    if any(x <= 0 for x in data.get("std") or [1]):
        return "'data.std' must be positive"
    return None
