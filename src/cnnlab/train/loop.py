"""``cnnlab train``: a training run on in-memory image data, crash-safe and resumable, one or many processes.

The run folder holds ``config.json``, ``metrics.csv``, ``model.safetensors``
(best validation accuracy), ``last.safetensors``, ``state.safetensors`` (the
resumable training state), ``curves.png``, ``confusion.png`` and ``log.txt``.

Determinism: the data order of epoch ``e`` is a permutation drawn from a
generator seeded with ``(seed, e)``, and augmentation and dropout draw from
torch's global generator, whose state is saved in every checkpoint. So the
same seed, data and device give the same weights, and a run killed anywhere
and resumed from its last checkpoint ends with the same weights as one never
interrupted.

Under ``torchrun`` (``WORLD_SIZE`` > 1) each global batch of the permutation
is split into equal slices, one per process, and DistributedDataParallel
averages the gradients: the same update as one process on the whole batch.
Only rank 0 logs and writes.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.data import ImageData, Split, load_data
from cnnlab.data.augment import PRESETS, apply, make_augment
from cnnlab.errors import CnnlabError
from cnnlab.files import atomic_write_text
from cnnlab.optim import DEFAULT_LR, create_optimizer
from cnnlab.train.checkpoint import load_state, save_state, save_weights
from cnnlab.train.model import build_model
from cnnlab.vocab import OPTIMIZERS, TRAIN_PRECISIONS

KILL_HOOK = "CNNLAB_TEST_SIGKILL_AFTER_STEP"   # tests: SIGKILL this process after that global step


@dataclass
class TrainConfig:
    """Everything that defines a run (saved as ``config.json``)."""

    model: str = "small_cnn"
    data: str = "digits"
    data_dir: str | None = None
    epochs: int = 10
    batch: int = 64
    lr: float | None = None           # default: cnnlab.optim.DEFAULT_LR (0.05 for the SGDs, 1e-3 for Adam/AdamW)
    weight_decay: float = 5e-4
    optimizer: str = "adam"
    augment: str = "none"
    val_fraction: float = 0.1
    seed: int = 0
    device: str = "cpu"
    precision: str = "fp32"
    size: tuple[int, int] | None = None
    channels: int | None = None
    strict: bool = False
    checkpoint_every: int = 0         # also checkpoint every N steps (0: only at epoch ends)
    out: str = "runs/run"

    def check(self) -> None:
        problems = [
            (self.epochs < 1, f"--epochs must be at least 1 (got {self.epochs})"),
            (self.batch < 1, f"--batch must be at least 1 (got {self.batch})"),
            (self.lr is not None and not (0 < self.lr <= 10), f"--lr must be in (0, 10] (got {self.lr})"),
            (self.weight_decay < 0, f"--weight-decay must be ≥ 0 (got {self.weight_decay})"),
            (self.optimizer not in OPTIMIZERS, f"unknown optimizer '{self.optimizer}'; use {', '.join(OPTIMIZERS)}"),
            (self.augment not in PRESETS, f"unknown augmentation '{self.augment}'; use {', '.join(PRESETS)}"),
            (self.precision not in TRAIN_PRECISIONS, f"unknown precision '{self.precision}'; use {', '.join(TRAIN_PRECISIONS)}"),
            (self.device not in ("cpu", "cuda"), f"unknown device '{self.device}'; use cpu or cuda"),
            (not 0 < self.val_fraction < 1, f"--val-fraction must be between 0 and 1 (got {self.val_fraction})"),
            (self.checkpoint_every < 0, f"--checkpoint-every must be ≥ 0 (got {self.checkpoint_every})"),
        ]
        for bad, message in problems:
            if bad:
                raise CnnlabError(message)
        if self.device == "cuda" and not torch.cuda.is_available():
            raise CnnlabError("--device cuda needs a CUDA GPU and this machine has none; use --device cpu")
        if self.precision == "fp16-amp" and self.device != "cuda":
            raise CnnlabError("--precision fp16-amp needs --device cuda; on CPU use bf16-amp")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]


@dataclass
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _dist_setup(device: str) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as tdist

    if not tdist.is_initialized():
        tdist.init_process_group("nccl" if device == "cuda" else "gloo")
    rank = tdist.get_rank()
    if device == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return Dist(rank, tdist.get_world_size())


def normalise(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) → float, per-channel standardised with the training set's statistics."""
    return (images.float().div_(255) - mean) / std


def channel_stats(train: Split) -> tuple[list[float], list[float]]:
    x = train.images.float().div_(255)
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return [round(float(v), 6) for v in mean], [round(float(v), 6) for v in std]


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    return create_optimizer(model.parameters(), cfg.optimizer, cfg.learning_rate, cfg.weight_decay)


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, mean: torch.Tensor, std: torch.Tensor, device: str,
             batch: int = 512) -> tuple[float, float, torch.Tensor]:
    """(mean loss, accuracy, predicted labels) of ``model`` on ``split``."""
    was = model.training
    model.eval()
    total, preds = 0.0, []
    for i in range(0, len(split), batch):
        x = normalise(split.images[i:i + batch], mean, std).to(device)
        y = split.labels[i:i + batch].to(device)
        out = model(x)
        total += float(F.cross_entropy(out.float(), y, reduction="sum"))
        preds.append(out.argmax(1).cpu())
    model.train(was)
    p = torch.cat(preds) if preds else torch.zeros(0, dtype=torch.int64)
    n = max(len(split), 1)
    return total / n, float((p == split.labels).float().mean()) if len(split) else 0.0, p


def confusion_matrix(labels: torch.Tensor, preds: torch.Tensor, classes: int) -> torch.Tensor:
    return torch.bincount(labels * classes + preds, minlength=classes * classes).reshape(classes, classes)


METRIC_FIELDS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "images_per_s",
                 "data_s", "compute_s", "epoch_s"]


@dataclass
class RunState:
    """What a checkpoint stores besides tensors."""

    epoch: int = 0                   # epoch in progress (0-based)
    step: int = 0                    # steps done in that epoch
    global_step: int = 0
    best_val_acc: float = -1.0
    history: list[dict[str, float]] = field(default_factory=list)
    running: dict[str, float] = field(default_factory=lambda: {"loss": 0.0, "correct": 0.0, "seen": 0.0,
                                                                 "data_s": 0.0, "compute_s": 0.0, "time_s": 0.0})


class Run:
    """One run folder: config, logs, metrics, weights, state."""

    def __init__(self, folder: Path, main: bool) -> None:
        self.folder = folder
        self.main = main

    @property
    def state_path(self) -> Path:
        return self.folder / "state.safetensors"

    def log(self, text: str) -> None:
        if self.main:
            with (self.folder / "log.txt").open("a", encoding="utf-8") as f:
                f.write(text.rstrip() + "\n")

    def write_metrics(self, history: list[dict[str, float]]) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=METRIC_FIELDS)
        writer.writeheader()
        for row in history:
            writer.writerow({k: row.get(k, "") for k in METRIC_FIELDS})
        atomic_write_text(self.folder / "metrics.csv", buf.getvalue())


def _config_doc(cfg: TrainConfig, data: ImageData, info: dict[str, Any], mean: list[float], std: list[float],
                params: int) -> dict[str, Any]:
    return {"config": asdict(cfg), "model": info, "params": params,
            "data": {"name": data.name, "classes": data.classes, "shape": list(data.shape),
                     "sizes": {"train": len(data.train), "val": len(data.val), "test": len(data.test)},
                     "mean": mean, "std": std, "skipped_images": len(data.skipped)},
            "torch": torch.__version__}


def load_run_config(folder: Path) -> dict[str, Any]:
    """The ``config.json`` of a run folder, or a clear error when ``folder`` is not a run."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise CnnlabError(f"{folder}: not a cnnlab run folder (no config.json); give the --out folder of a "
                          "'cnnlab train' run")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CnnlabError(f"{path}: unreadable ({err}); the run folder is damaged") from None


def train(cfg: TrainConfig, resume: Path | None = None, progress: bool = True) -> Path:
    """Train (or resume) a run; returns the run folder."""
    if resume is not None:
        doc = load_run_config(resume)
        saved = doc["config"]
        saved["size"] = tuple(saved["size"]) if saved.get("size") else None
        cfg = TrainConfig(**{**saved, "out": str(resume)})   # exactly the saved settings
        if not (Path(resume) / "state.safetensors").is_file():
            raise CnnlabError(f"{resume}: no state.safetensors to resume from (the run never checkpointed)")
    cfg.check()
    dist = _dist_setup(cfg.device)
    folder = Path(cfg.out)
    if resume is None and folder.exists() and any(folder.iterdir()):
        raise CnnlabError(f"{folder}: already holds a run; resume it with --resume {folder} or choose another --out")
    torch.manual_seed(cfg.seed)
    data = load_data(cfg.data, cfg.data_dir, cfg.val_fraction, cfg.seed, cfg.channels, cfg.size, cfg.strict)
    spec_text = doc["model"].get("spec_text") if resume is not None else None
    model, info = build_model(cfg.model, data.shape, len(data.classes), spec_text)
    device = cfg.device
    model.to(device)
    params = sum(p.numel() for p in model.parameters())
    mean_l, std_l = channel_stats(data.train)
    mean = torch.tensor(mean_l).view(1, -1, 1, 1)
    std = torch.tensor(std_l).view(1, -1, 1, 1)
    if cfg.batch % dist.world:
        raise CnnlabError(f"--batch {cfg.batch} is not divisible by the {dist.world} processes; "
                          f"use a multiple of {dist.world}")
    steps_per_epoch = len(data.train) // cfg.batch
    if steps_per_epoch == 0:
        raise CnnlabError(f"--batch {cfg.batch} is larger than the {len(data.train)} training images; use a smaller batch")
    opt = make_optimizer(model, cfg)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.learning_rate, total_steps=cfg.epochs * steps_per_epoch,
                                                pct_start=0.15) if cfg.epochs * steps_per_epoch > 1 else None
    run = Run(folder, dist.main)
    state = RunState()
    if resume is not None:
        meta = load_state(run.state_path, model, opt, sched)
        state = RunState(**meta["run"])
        if state.epoch >= cfg.epochs:
            raise CnnlabError(f"{folder}: the run is complete ({state.epoch} of {cfg.epochs} epochs; results in "
                              "test.json), nothing to resume; to train longer start a new run with a larger "
                              "--epochs (the one-cycle schedule spans the whole run)")
        run.log(f"resumed at epoch {state.epoch + 1}, step {state.step} (global step {state.global_step})")
    elif dist.main:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / "config.json", json.dumps(_config_doc(cfg, data, info, mean_l, std_l, params), indent=2))
        if info["kind"] == "spec":
            atomic_write_text(folder / "model_spec.yaml", info["spec_text"])
        run.log(f"model {info['name']} ({params:,} parameters), data {data.name} {list(data.shape)}: "
                f"{len(data.train)} train / {len(data.val)} val / {len(data.test)} test, {data.classes}")
        for path, reason in data.skipped:
            run.log(f"skipped undecodable image {path}: {reason}")
    net: nn.Module = model
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(model, device_ids=[torch.cuda.current_device()] if device == "cuda" else None)
    augment = make_augment(cfg.augment, data.shape[1:], data.flip_ok)
    autocast = (torch.autocast(device, dtype=torch.bfloat16) if cfg.precision == "bf16-amp" else
                torch.autocast(device, dtype=torch.float16) if cfg.precision == "fp16-amp" else None)
    scaler = torch.amp.GradScaler(device) if cfg.precision == "fp16-amp" else None
    kill_after = int(os.environ.get(KILL_HOOK, "0") or 0)
    local = cfg.batch // dist.world

    def checkpoint() -> None:
        if dist.main:
            save_state(run.state_path, model, opt, sched, {"run": asdict(state)})

    bar = None
    if progress and dist.main:
        from tqdm import tqdm

        bar = tqdm(total=cfg.epochs * steps_per_epoch, initial=state.global_step, unit="step", dynamic_ncols=True,
                   mininterval=0.5, desc="train")
    net.train()
    for epoch in range(state.epoch, cfg.epochs):
        perm = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch))
        epoch_start, epoch_start_seen = time.perf_counter(), state.running["seen"]
        for step in range(state.step, steps_per_epoch):
            t0 = time.perf_counter()
            idx = perm[step * cfg.batch:(step + 1) * cfg.batch][dist.rank * local:(dist.rank + 1) * local]
            x = normalise(apply(augment, data.train.images[idx]), mean, std).to(device, non_blocking=True)
            y = data.train.labels[idx].to(device, non_blocking=True)
            t1 = time.perf_counter()
            with autocast if autocast is not None else torch.enable_grad():
                out = net(x)
                loss = F.cross_entropy(out.float(), y)
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()
            if sched is not None:
                sched.step()
            t2 = time.perf_counter()
            r = state.running
            r["loss"] += float(loss.detach()) * len(idx)
            r["correct"] += float((out.detach().argmax(1) == y).sum())
            r["seen"] += len(idx)
            r["data_s"] += t1 - t0
            r["compute_s"] += t2 - t1
            r["time_s"] += t2 - t0
            state.step, state.global_step = step + 1, state.global_step + 1
            if bar is not None:
                bar.update(1)
                if state.global_step % 10 == 0 or step + 1 == steps_per_epoch:
                    bar.set_postfix(epoch=f"{epoch + 1}/{cfg.epochs}", loss=f"{r['loss'] / r['seen']:.4f}",
                                    acc=f"{r['correct'] / r['seen']:.3f}",
                                    img_s=f"{r['seen'] * dist.world / max(r['time_s'], 1e-9):.0f}")
            if cfg.checkpoint_every and state.global_step % cfg.checkpoint_every == 0 and step + 1 < steps_per_epoch:
                checkpoint()
            if kill_after and state.global_step == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
        wall = time.perf_counter() - epoch_start   # every step of this session's part of the epoch, bar included
        state.running["wall_s"] = state.running.get("wall_s", 0.0) + wall
        state.running["wall_seen"] = state.running.get("wall_seen", 0.0) + state.running["seen"] - epoch_start_seen
        r = _reduce(state.running, dist)
        val_loss, val_acc, _ = evaluate(model, data.val, mean, std, device)
        row = {"epoch": epoch + 1, "train_loss": r["loss"] / r["seen"], "train_acc": r["correct"] / r["seen"],
               "val_loss": val_loss, "val_acc": val_acc, "lr": opt.param_groups[0]["lr"],
               "images_per_s": r["wall_seen"] / max(r["wall_s"] / dist.world, 1e-9), "data_s": r["data_s"] / dist.world,
               "compute_s": r["compute_s"] / dist.world, "epoch_s": r["time_s"] / dist.world}
        state.history.append({k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()})
        state.epoch, state.step = epoch + 1, 0
        state.running = RunState().running
        if dist.main:
            run.write_metrics(state.history)
            save_weights(folder / "last.safetensors", model, {"epoch": epoch + 1, "val_acc": val_acc})
            if val_acc > state.best_val_acc:
                state.best_val_acc = val_acc
                save_weights(folder / "model.safetensors", model, {"epoch": epoch + 1, "val_acc": val_acc})
            run.log(f"epoch {epoch + 1}: train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f}, "
                    f"val loss {val_loss:.4f} acc {val_acc:.4f}, {row['images_per_s']:.0f} images/s "
                    f"(data {row['data_s']:.1f} s, compute {row['compute_s']:.1f} s)")
            summary = (f"epoch {epoch + 1}/{cfg.epochs}: val acc {val_acc:.4f} (loss {val_loss:.4f}), "
                       f"train acc {row['train_acc']:.4f}, {row['images_per_s']:.0f} images/s")
            if bar is not None:
                bar.write(summary, file=sys.stderr)
            else:   # no bar: one line per epoch on stderr, so a quiet run is not a silent one
                print(summary, file=sys.stderr, flush=True)
        checkpoint()
    if bar is not None:
        bar.close()
    if dist.main:
        finish(folder, data, model, mean, std, device, state.history)
    if dist.world > 1:
        import torch.distributed as tdist

        tdist.barrier()
    return folder


def _reduce(running: dict[str, float], dist: Dist) -> dict[str, float]:
    if dist.world == 1:
        return dict(running)
    import torch.distributed as tdist

    keys = sorted(running)
    t = torch.tensor([running[k] for k in keys], dtype=torch.float64)
    tdist.all_reduce(t)
    return dict(zip(keys, t.tolist()))


def finish(folder: Path, data: ImageData, model: nn.Module, mean: torch.Tensor, std: torch.Tensor, device: str,
           history: list[dict[str, float]]) -> dict[str, Any]:
    """Test the best weights, write ``test.json``, ``curves.png`` and ``confusion.png``."""
    from cnnlab.train.checkpoint import load_weights
    from cnnlab.viz.train import plot_confusion, plot_curves

    load_weights(folder / "model.safetensors", model)
    test_loss, test_acc, preds = evaluate(model, data.test, mean, std, device)
    cm = confusion_matrix(data.test.labels, preds, len(data.classes))
    result = {"test_loss": test_loss, "test_acc": test_acc, "confusion": cm.tolist(), "classes": data.classes,
              "best_epoch": max(history, key=lambda h: h["val_acc"])["epoch"] if history else None}
    atomic_write_text(folder / "test.json", json.dumps(result, indent=2))
    plot_curves(history, folder / "curves.png")
    plot_confusion(cm, data.classes, folder / "confusion.png", title=f"test accuracy {test_acc:.4f}")
    Run(folder, True).log(f"test (best weights): loss {test_loss:.4f}, accuracy {test_acc:.4f}")
    return result


def per_class(cm: torch.Tensor) -> list[tuple[float, float]]:
    """(precision, recall) per class from a confusion matrix (rows: true, columns: predicted)."""
    out = []
    for i in range(cm.shape[0]):
        tp = float(cm[i, i])
        pred, true = float(cm[:, i].sum()), float(cm[i].sum())
        out.append((tp / pred if pred else math.nan, tp / true if true else math.nan))
    return out
