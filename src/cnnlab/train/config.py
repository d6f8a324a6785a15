"""What defines a training run: :class:`TrainConfig`, saved as the run folder's ``config.json`` (torch-free)."""

from __future__ import annotations

import functools
import json
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnlab import jsonsafe
from cnnlab.errors import CnnlabError
from cnnlab.vocab import AUGMENT_PRESETS, DEFAULT_LR, DEFAULT_WEIGHT_DECAY, OPTIMIZERS, TRAIN_PRECISIONS, TTA_MODES

MAX_EPOCHS = 100_000        # a run of more epochs is a typo (or an edited config.json), not a plan
MAX_BATCH = 1 << 31



@dataclass
class TrainConfig:
    """Everything that defines a run (saved as ``config.json``); defaults are the documented recipe."""

    task: str = "classification"
    model: str = "small_cnn"
    data: str = "digits"
    data_dir: str | None = None
    images: str | None = None         # the image folder of a COCO file or a labels CSV, when not where layouts put it
    epochs: int = 10
    batch: int = 64
    lr: float | None = None           # peak of the schedule; default cnnlab.optim.DEFAULT_LR[optimizer]
    weight_decay: float = DEFAULT_WEIGHT_DECAY   # on weights of ≥ 2 dimensions only (not on biases or norm scales)
    optimizer: str = "adam"
    augment: str = "none"
    label_smoothing: float = 0.0
    tta: str = "none"                 # classification: test-time augmentation of the test report (cnnlab.vocab)
    val_fraction: float = 0.1
    seed: int = 0
    device: str = "cpu"
    precision: str = "auto"          # bf16-amp + channels-last on a CPU with native bfloat16, else fp32 (precision.py)
    channels_last: bool = False       # NHWC memory layout for model and batches
    checkpointing: bool = False       # activation checkpointing of the network's blocks (cnnlab.memory.checkpointing)
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
    recipe: str = "none"              # the recipe the unset options came from (a record; for_recipe applies one)
    out: str = "runs/run"

    def check(self) -> None:
        """Raise :class:`CnnlabError` naming the first option of the wrong type or out of range."""
        self._check_types()
        problems = [
            (not 1 <= self.epochs <= MAX_EPOCHS, f"--epochs must be from 1 to {MAX_EPOCHS:,} (got {self.epochs})"),
            (not 1 <= self.batch <= MAX_BATCH, f"--batch must be from 1 to {MAX_BATCH:,} (got {self.batch})"),
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
            (self.recipe not in _recipe_names(), f"unknown recipe '{self.recipe}'; use {', '.join(_recipe_names())}"),
            (not 0 < self.val_fraction < 1, f"--val-fraction must be between 0 and 1 (got {self.val_fraction})"),
            (not 0 <= self.checkpoint_every < 2**31, f"--checkpoint-every must be from 0 to 2^31 (got "
                                                    f"{self.checkpoint_every})"),
            (self.size is not None and not (len(self.size) == 2 and all(1 <= v <= 65536 for v in self.size)),
             f"--size must be H,W with sizes 1..65536 (got {self.size})"),
            (self.channels not in (None, 1, 3), f"--channels must be 1 or 3 (got {self.channels})"),
            (any(not 0 <= e <= self.epochs for e in self.segments), "segments must be epochs of the run"),
            (not 0 <= self.warmup < 1, f"warmup must be in [0, 1) (got {self.warmup})"),
            (not 0 <= self.seed < 2**32, f"--seed must be between 0 and {2**32 - 1} (got {self.seed})"),
            (self.train_size is not None and not 1 <= self.train_size < 2**31,
             f"--train-size must be from 1 to 2^31 (got {self.train_size})"),
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

    def _check_types(self) -> None:
        """Every field has the type its annotation names (a config.json edited to ``"epochs": 1e30`` is refused)."""
        for name, kinds in _field_types().items():
            value = getattr(self, name)
            ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
            if name in ("size", "segments") and ok and value is not None:
                ok = all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            if not ok:
                shown = repr(value)[:40]
                raise CnnlabError(f"'{name}' must be {' or '.join(k.__name__ for k in kinds)} (got {shown})")

    @classmethod
    def for_task(cls, task: str, **settings: Any) -> TrainConfig:
        """A config with ``task``'s recipe (:mod:`cnnlab.train.recipes`) as its defaults; ``settings`` win."""
        from cnnlab.train.recipes import RECIPES, model_options, recipe_lr

        recipe = RECIPES.get(task)
        if recipe is None:
            return cls(task=task, **settings)
        defaults: dict[str, Any] = {"task": task, "model": recipe["model"], "batch": recipe["batch"],
                                    "epochs": recipe["epochs"], "augment": recipe["augment"],
                                    "data": "scenes:fashion-mnist"}
        merged = {**defaults, **settings}
        merged["lr"] = recipe_lr(recipe, merged.get("optimizer", cls.optimizer), merged.get("lr"))
        merged.setdefault("model_args", model_options(task, merged["model"]))
        return cls(**merged)

    @classmethod
    def for_recipe(cls, recipe: str, **settings: Any) -> TrainConfig:
        """A classification config with a recipe's settings (:mod:`cnnlab.train.recipes`) where ``settings`` give
        none, as ``cnnlab train --recipe`` makes it: ``TrainConfig.for_recipe("speedrun", data="fashion-mnist")``.
        (``TrainConfig(recipe=...)`` only records the name.)"""
        from cnnlab.train.recipes import CLASSIFICATION_RECIPES, with_recipe

        if recipe not in CLASSIFICATION_RECIPES:
            raise CnnlabError(f"unknown recipe '{recipe}'; use {', '.join(CLASSIFICATION_RECIPES)}")
        return cls(**{**settings, **with_recipe(CLASSIFICATION_RECIPES[recipe], settings, cls()), "recipe": recipe})

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


def _recipe_names() -> tuple[str, ...]:
    from cnnlab.train.recipes import CLASSIFICATION_RECIPES

    return ("none", *CLASSIFICATION_RECIPES)


def _runtime_types(hint: Any) -> tuple[type, ...]:
    """What ``isinstance`` accepts for a field annotated ``hint`` (JSON gives lists for tuples, ints for floats)."""
    import typing

    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return tuple(t for arg in typing.get_args(hint) for t in _runtime_types(arg))
    base = origin or hint
    return {float: (int, float), tuple: (tuple, list)}.get(base, (base,))


@functools.cache
def _field_types() -> dict[str, tuple[type, ...]]:
    """Each TrainConfig field's accepted runtime types, read off its annotation."""
    import typing

    return {name: _runtime_types(hint) for name, hint in typing.get_type_hints(TrainConfig).items()}


MAX_CONFIG_BYTES = 64 << 20   # a run's config.json (a spec's text included) is a few KB

NAMED_DATA = ("digits", "fashion-mnist", "fashionmnist")


def anchored(source: str | None) -> str | None:
    """A data source that means the same folder from anywhere: a path is made absolute (symbolic links kept);
    named sets (``digits``, ``fashion-mnist``, ``scenes:digits``) are left as they are."""
    import os

    if source is None:
        return None
    prefix, rest = ("scenes:", source[7:]) if source.lower().startswith("scenes:") else ("", source)
    if rest.lower().replace("_", "-") in NAMED_DATA or not Path(rest).exists():
        return source
    return prefix + os.path.abspath(rest)


RUN_ID = "run_id"        # 16 hex digits drawn when a run is made; every file of the run carries it
DIGEST = "digest"        # BLAKE2b of config.json's content (all but this key): an edit is refused


def new_run_id() -> str:
    """A fresh run id (64 random bits, hex)."""
    import secrets

    return secrets.token_hex(8)


def document_digest(doc: dict[str, Any]) -> str:
    """BLAKE2b of a run document's canonical JSON (sorted keys), the ``digest`` key left out."""
    import hashlib

    text = json.dumps({k: v for k, v in doc.items() if k != DIGEST}, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def seal(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with its ``digest``: what cnnlab writes as a run's ``config.json`` (and re-seals when it extends
    the run itself)."""
    return {**doc, DIGEST: document_digest(doc)}


def _check_seal(path: Path, doc: dict[str, Any]) -> None:
    """A run's config.json is as cnnlab wrote it: its split, model and data are facts of the run, not settings."""
    if RUN_ID not in doc and DIGEST not in doc:
        return       # a run made before cnnlab bound its files (kept readable; nothing to check against)
    if not (isinstance(doc.get(RUN_ID), str) and len(doc[RUN_ID]) == 16):
        raise CnnlabError(f"{path}: its '{RUN_ID}' is missing or malformed; the run folder is damaged")
    if doc.get(DIGEST) != document_digest(doc):
        raise CnnlabError(f"{path}: was edited after the run was made (its digest no longer matches); a run's "
                          "seed, split, data and model are facts of the run, not settings: restore the file, or "
                          "train a new run with the settings you want")


def load_run_config(folder: Path) -> dict[str, Any]:
    """The ``config.json`` of a run folder, or a clear error when ``folder`` is not a run (or was edited)."""
    path = Path(folder) / "config.json"
    if not path.exists() and not path.is_symlink():
        raise CnnlabError(f"{folder}: not a cnnlab run folder (no config.json); give the --out folder of a "
                          "'cnnlab train' run")
    from cnnlab.files import read_run_file

    raw = read_run_file(path, MAX_CONFIG_BYTES)         # a regular file, not a link or a FIFO
    try:
        doc = jsonsafe.loads(raw, 64)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        raise CnnlabError(f"{path}: unreadable ({type(err).__name__}); the run folder is damaged") from None
    missing = [k for k in ("config", "model", "data") if not isinstance(doc, dict) or not isinstance(doc.get(k), dict)]
    if missing:
        raise CnnlabError(f"{path}: no '{missing[0]}' section; the run folder is damaged or not cnnlab's")
    _check_seal(path, doc)
    try:
        TrainConfig.from_saved(doc["config"], out=str(folder)).check()
    except (TypeError, ValueError, CnnlabError) as err:
        raise CnnlabError(f"{path}: its 'config' section does not fit this cnnlab ({str(err)[:200]}); the run "
                          "folder is damaged") from None
    problem = _schema_problem(doc)
    if problem:
        raise CnnlabError(f"{path}: {problem}; the run folder is damaged or not cnnlab's")
    return doc


def _keras_text_ok(text: Any) -> bool:
    if not isinstance(text, str):
        return False
    try:
        saved = json.loads(text)
    except ValueError:
        return False
    return isinstance(saved, dict) and isinstance(saved.get("config"), dict) and isinstance(saved.get("shapes"), dict)


def _schema_problem(doc: dict[str, Any]) -> str | None:
    """What is wrong with the 'model' and 'data' sections of a run's config.json (types and ranges), if anything."""
    model, data = doc["model"], doc["data"]
    if model.get("kind") not in ("spec", "zoo", "keras") or not isinstance(model.get("name"), str):
        return "'model' needs kind 'spec', 'zoo' or 'keras' and a name"
    if model["kind"] == "spec" and not isinstance(model.get("spec_text"), str):
        return "'model' of kind 'spec' needs its spec_text"
    if model["kind"] == "keras" and not _keras_text_ok(model.get("keras_text")):
        return "'model' of kind 'keras' needs its keras_text (the Keras config and variable shapes)"
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
