"""The training engine: one loop for every task, crash-safe, resumable, one or many processes.

    from cnnlab.train import TrainConfig, train
    folder = train(TrainConfig(data="fashion-mnist", out="runs/fashion"))

:class:`Trainer` reads top to bottom as set-up (``__init__``), one epoch of
steps (:meth:`Trainer.train_one_epoch`), the epoch end (:meth:`Trainer.end_epoch`:
validation, metrics, weights, checkpoint) and :meth:`Trainer.finish` (the
task's test report). Everything task-specific — data, model, batches, loss,
metrics, report — comes from a :class:`cnnlab.train.tasks.Task`.

The run folder holds ``config.json``, ``metrics.csv``, ``model.safetensors``
(best validation value of the task's ``monitor``), ``last.safetensors``,
``state.safetensors`` (the resumable state), ``log.txt``, ``test.json`` and the
task's figures.

Determinism: batches are pure functions of (seed, step) (:mod:`cnnlab.train.batches`)
and dropout draws from torch's global generator, whose state every checkpoint
saves. So the same seed, data and device give the same weights, and a run
killed anywhere and resumed from its last checkpoint ends with the weights of
one never interrupted.

Under ``torchrun`` (``WORLD_SIZE`` > 1) each global batch is split into equal
slices, one per process, and DistributedDataParallel averages the gradients:
the same update as one process on the whole batch. Only rank 0 logs and writes.
"""

from __future__ import annotations

import atexit
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
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.files import atomic_write_text, open_in_run, write_error
from cnnlab.memory.step import StepConfig, training_step
from cnnlab.machine import keep_freed_memory
from cnnlab.precision import choose
from cnnlab.text import printable
from cnnlab.optim import create_optimizer, param_groups
from cnnlab.train.batches import epoch_order, prefetch, step_generator
from cnnlab.train.checkpoint import load_state, load_weights, save_state, save_weights
from cnnlab.train.config import (DIGEST, MAX_EPOCHS, RUN_ID, TrainConfig, anchored, load_run_config, new_run_id,
                                 seal)
from cnnlab.train.runs import SPLITS, check_file_run, check_split, split_digests
from cnnlab.train.schedule import make_scheduler
from cnnlab.train.tasks import Task, create_task

STEP_BOUND_FACTOR = 2000    # a training step's bytes per byte of float32 input batch, generously (see _check_step_fits)
KILL_HOOK = "CNNLAB_TEST_SIGKILL_AFTER_STEP"   # tests: SIGKILL this process after that global step
LOCK = ".lock"                                 # held by the process that owns a run folder


@dataclass
class Dist:
    """This process's place under torchrun (rank 0 of 1 without it)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: str, low: int, high: int = 1 << 31) -> int:
    raw = os.environ.get(name, default)
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise CnnlabError(f"{name}={raw[:40]!r} is not an integer from {low} to {high}; start multi-process "
                          "training with torchrun --nproc-per-node N (it sets WORLD_SIZE, RANK and the rest), "
                          "or unset it")
    return value


def dist_setup(device: str) -> Dist:
    """Join the other processes of a multi-process run (``WORLD_SIZE`` > 1), or run alone.

    Under torchrun the rendezvous is torchrun's. Processes started by hand with
    ``WORLD_SIZE``, ``RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` wait at most
    ``CNNLAB_JOIN_TIMEOUT`` seconds (default 300) for each other, then stop with
    one line instead of waiting for torch's 30-minute timeout.
    """
    world = _env_int("WORLD_SIZE", "1", 1)
    if world == 1:
        return Dist()
    import torch.distributed as tdist

    if not tdist.is_initialized():
        backend = "nccl" if device == "cuda" else "gloo"
        if os.environ.get("TORCHELASTIC_RUN_ID"):          # torchrun: its agent holds the rendezvous
            tdist.init_process_group(backend)
        else:
            _join_by_hand(tdist, backend, world)
        atexit.register(_leave, tdist)
    if device == "cuda":
        torch.cuda.set_device(_env_int("LOCAL_RANK", "0", 0))
    return Dist(tdist.get_rank(), tdist.get_world_size())


def _leave(tdist) -> None:  # noqa: ANN001 - torch.distributed
    """Destroy the process group while the interpreter is whole.

    Left to interpreter shutdown, gloo's worker threads can outlive it and the
    process aborts ("terminate called without an active exception", SIGABRT) after
    a run that finished: pytorch/pytorch#190489. Seen in 1 of 6 two-process exits.
    """
    if tdist.is_initialized():
        tdist.destroy_process_group()


def _join_by_hand(tdist, backend: str, world: int) -> None:  # noqa: ANN001 - torch.distributed
    """Processes started without torchrun: rank 0 hosts the store, the others connect, with a bounded wait."""
    from datetime import timedelta

    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if not os.environ.get(k)]
    if missing:
        raise CnnlabError(f"WORLD_SIZE={world} but {', '.join(missing)} not set: start multi-process training with "
                          f"torchrun --nproc-per-node {world} (it sets them), or unset WORLD_SIZE")
    rank, port = _env_int("RANK", "0", 0), _env_int("MASTER_PORT", "0", 1, 65535)
    wait = _env_int("CNNLAB_JOIN_TIMEOUT", "300", 1)
    if rank >= world:
        raise CnnlabError(f"RANK={rank} but WORLD_SIZE={world}: ranks go from 0 to {world - 1}")
    try:
        store = tdist.TCPStore(os.environ["MASTER_ADDR"], port, world, rank == 0,
                               timeout=timedelta(seconds=wait), wait_for_workers=True)
        tdist.init_process_group(backend, store=store, rank=rank, world_size=world)
    except (RuntimeError, ValueError, OSError) as err:   # DistStoreError and DistNetworkError are RuntimeErrors
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise CnnlabError(f"process {rank} of {world} could not join the others within {wait} s at "
                          f"{os.environ['MASTER_ADDR']}:{port} ({first}); start all {world} processes (torchrun "
                          "--nproc-per-node N does), or unset WORLD_SIZE; CNNLAB_JOIN_TIMEOUT sets the wait") from err


def all_reduce(values: dict[str, float], dist: Dist, device: torch.device | str = "cpu") -> dict[str, float]:
    """Sums of ``values`` over the processes (on ``device``: NCCL reduces GPU tensors only)."""
    if dist.world == 1:
        return dict(values)
    import torch.distributed as tdist

    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    tdist.all_reduce(t)
    return dict(zip(keys, t.cpu().tolist()))


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The run's optimizer: ``cfg.optimizer`` from the shared factory, weight decay on ≥ 2-D weights only."""
    return create_optimizer(param_groups(model, cfg.weight_decay), cfg.optimizer, cfg.learning_rate)


def _new_running() -> dict[str, float]:
    return {"loss": 0.0, "seen": 0.0, "data_s": 0.0, "compute_s": 0.0, "time_s": 0.0, "wall_s": 0.0,
            "wall_seen": 0.0}


@dataclass
class RunState:
    """What a checkpoint stores besides tensors."""

    epoch: int = 0                   # epoch in progress (0-based)
    step: int = 0                    # steps done in that epoch
    global_step: int = 0
    best: float = float("-inf")      # best validation value of the task's monitor
    best_loss: float = float("inf")  # its validation loss: breaks ties (the lower wins)
    history: list[dict[str, float]] = field(default_factory=list)
    running: dict[str, float] = field(default_factory=_new_running)   # sums of the epoch in progress
    stats: dict[str, float] = field(default_factory=dict)             # the task's step_stats sums


class RunFolder:
    """One run folder: claimed by one process at a time; log, metrics."""

    def __init__(self, folder: Path, main: bool) -> None:
        self.folder = folder
        self.main = main

    @property
    def state_path(self) -> Path:
        return self.folder / "state.safetensors"

    def check_empty(self) -> None:
        """A new run needs a folder that holds no run."""
        if self.main and self.folder.exists() and not self.folder.is_dir():
            raise CnnlabError(f"{self.folder}: is a file, not a folder; give --out a folder to create")
        if self.main and self.folder.is_dir() and any(p.name != LOCK for p in self.folder.iterdir()):
            if (self.folder / "config.json").is_file():
                raise CnnlabError(f"{self.folder}: already holds a run; resume it with --resume {self.folder} "
                                  "or choose another --out")
            if (self.folder / LOCK).exists():      # made by cnnlab: a run starting now, or one stopped that early
                raise CnnlabError(f"{self.folder}: already holds a run being made (or one that stopped before "
                                  "writing its config.json); choose another --out")
            raise CnnlabError(f"{self.folder}: is not empty and holds no cnnlab run (no config.json); cnnlab "
                              "never writes into a folder of yours: choose a new or empty --out")

    def claim(self, fresh: bool) -> None:
        """Take the folder for this run: an exclusive ``flock`` on ``.lock``, held until :meth:`release`.

        The kernel drops the lock when the process ends however it ends, so a
        killed run never leaves the folder locked, and two runs can never both
        hold it (the file itself stays: unlinking it would let a third process
        lock a new file while the second still holds the old one).
        """
        if not self.main:
            return
        import fcntl

        try:
            if fresh:
                self.check_empty()
                self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise CnnlabError(f"{self.folder}: cannot create the run folder ({err.strerror}); choose another "
                              "--out") from None
        fd = open_in_run(self.folder / LOCK, os.O_CREAT | os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise CnnlabError(f"{self.folder}: another cnnlab train is using this folder; wait for it or "
                              "choose another --out") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd
        if fresh:              # checked again while holding the lock: another run may have finished meanwhile
            try:
                self.check_empty()
            except CnnlabError:
                self.release()
                raise

    def release(self) -> None:
        fd = getattr(self, "_lock_fd", None)
        if fd is not None:
            os.close(fd)       # closing the descriptor drops the flock
            self._lock_fd = None

    def log(self, text: str) -> None:
        """Append one line to ``log.txt``: newlines, ESC and undecodable bytes of a file name are escaped, so a
        name cannot forge a line; the file is never reached through a link."""
        if self.main:
            path = self.folder / "log.txt"
            fd = open_in_run(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(printable(text.rstrip()) + "\n")
            except OSError as err:
                raise write_error(path, err) from err

    def write_metrics(self, history: list[dict[str, float]]) -> None:
        fields = list(dict.fromkeys(k for row in history for k in row))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=fields)
        writer.writeheader()
        for row in history:
            writer.writerow({k: row.get(k, "") for k in fields})
        atomic_write_text(self.folder / "metrics.csv", buf.getvalue())


class Trainer:
    """Set-up, steps, epoch ends and the finish of one run; ``Trainer(cfg).run()`` trains it."""

    def __init__(self, cfg: TrainConfig, resume: Path | None = None, progress: bool = True,
                 epochs: int | None = None, quiet: bool = False) -> None:
        """``quiet``: the run's lines (what was read, each epoch) go to its ``log.txt`` only, not to stderr (a study
        trains dozens of runs and says one line for each)."""
        saved: dict[str, Any] | None = None
        if resume is not None:
            saved = load_run_config(resume)
            cfg = TrainConfig.from_saved(saved["config"], out=str(resume))   # exactly the saved settings
            if epochs is not None and not (Path(resume) / "state.safetensors").is_file():
                cfg.epochs = epochs      # nothing was trained yet: any length
        cfg.check()
        if cfg.device == "cpu":
            keep_freed_memory()      # no page faults for each step's activations: 5–12 % faster on CPU
        # --precision auto becomes what this machine runs fastest, recorded in config.json as such (a resume runs
        # the same precision and layout, on any machine)
        self.choice = choose(cfg.precision, cfg.device, cfg.channels_last, measured=cfg.task == "classification")
        cfg.precision, cfg.channels_last = self.choice.precision, self.choice.channels_last
        if saved is None:                # the data means the same folder from anywhere, for the run's life
            cfg.data, cfg.data_dir = anchored(cfg.data) or cfg.data, anchored(cfg.data_dir)
            cfg.images = anchored(cfg.images)
        self.run_id: str | None = saved.get(RUN_ID) if saved else new_run_id()   # None: a run from before ids
        self.resumed = saved is not None
        self.cfg, self.progress, self.quiet = cfg, progress, quiet
        self._extended: int | None = None        # the epoch an extension (--resume --epochs N) starts at
        self._scaler_state: dict[str, Any] | None = None
        self._finish_only = False
        self.dist = dist_setup(cfg.device)
        # the batch thread has its own current CUDA device (cuda:0): name this rank's GPU explicitly
        self.device = (torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if cfg.device == "cuda"
                       else torch.device("cpu"))
        self.task: Task = create_task(cfg)
        self.folder = RunFolder(Path(cfg.out), self.dist.main)
        if saved is None:
            self.folder.check_empty()        # early, before the data loads (claim() re-checks atomically)
        self._set_up_data_and_model(saved)
        self._open_folder(saved, epochs)
        self._set_up_step()

    def _set_up_data_and_model(self, saved: dict[str, Any] | None) -> None:
        """The data (checked against the run's record on a resume), the network on its device, the steps."""
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        self.data = self.task.load_data()
        if saved is not None:
            check_split(Path(cfg.out), saved, self.data, SPLITS)     # the data the run was trained on, unchanged
        self.model, self.model_info = self.task.build_model(self.data, saved["model"] if saved else None)
        fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.model.to(self.device, memory_format=fmt)
        if cfg.batch % self.dist.world:
            raise CnnlabError(f"--batch {cfg.batch} is not divisible by the {self.dist.world} processes; "
                              f"use a multiple of {self.dist.world}")
        self.steps_per_epoch = len(self.data.train) // cfg.batch
        if self.steps_per_epoch == 0:
            n = len(self.data.train)
            raise CnnlabError(f"--batch {cfg.batch} is larger than the {n} training items of {self.data.name} "
                              f"({n} train / {len(self.data.val)} val / {len(self.data.test)} test); use --batch "
                              f"{max(1, 2 ** (n.bit_length() - 1) if n else 1)} or less")
        self._check_step_fits()
        self._checkpoint_blocks()

    def _checkpoint_blocks(self) -> None:
        """``--checkpointing``: the network's blocks recompute their insides in backward (what ``cnnlab memory
        --checkpointing`` predicts, by the same function); after the memory check, which copies the plain network."""
        self.checkpointed: list[str] = []
        if not self.cfg.checkpointing:
            return
        from cnnlab.memory.checkpointing import checkpoint_segments

        self.checkpointed = checkpoint_segments(self.model)
        if not self.checkpointed:
            raise CnnlabError(f"--checkpointing: cnnlab finds no blocks to checkpoint in {self.model_info['name']}; "
                              "train it without --checkpointing")

    def _check_step_fits(self) -> None:
        """cnnlab's own prediction of this run's training step (meta tensors, nothing allocated) against the RAM
        available, before the first step: a batch or image size too large for the machine is one line, not an
        allocation traceback after the run folder was made. Networks the predictor cannot run (Mask R-CNN's
        detection losses) and GPU runs are not checked here."""
        cfg = self.cfg
        if cfg.device != "cpu" or self.task.name == "instance":
            return
        from cnnlab.machine import available_ram, require_ram
        from cnnlab.memory.estimate import estimate_memory

        free = available_ram()
        shape = tuple(self.data.train.images.shape[1:])
        batch = cfg.batch // self.dist.world
        weights = sum(p.numel() * p.element_size() for p in self.model.parameters())
        # no prediction (~1 s at start-up) where even a generous bound fits twice over: on the memory grid of
        # docs/benchmarks.md a step holds at most ~1,000× its float32 input batch beyond 4 copies of the weights
        # (VGG-16 at batch 8) and never more than STEP_BOUND_FACTOR× beyond 6 copies (weights, gradients, Adam's
        # two moments, weight decay's and the update's temporaries)
        if free is None or 2 * (STEP_BOUND_FACTOR * 4 * batch * math.prod(shape) + 6 * weights) < free:
            return
        try:
            est = estimate_memory(self.model, shape, batch, cfg.optimizer, cfg.precision, cfg.checkpointing,
                                  weight_decay=cfg.weight_decay, include_inference=False,
                                  channels_last=cfg.channels_last)
        except CnnlabError:
            return                   # a network the predictor cannot trace: trained unchecked, as before
        need = est.training.peak_bytes
        if any("unverified" in n for n in est.notes):     # bfloat16 / channels-last: measured up to 7.9 % low
            need = need * 11 // 10
        require_ram(need, f"training {self.model_info['name']} on {list(shape)} images at batch "
                    f"{batch} (cnnlab's prediction of the step)", "lower --batch or --size (see 'cnnlab fit')")

    def _open_folder(self, saved: dict[str, Any] | None, epochs: int | None) -> None:
        """Optimizer and schedule; the folder claimed; a new run started or a saved one restored."""
        self.state = RunState()
        restart = saved is not None and not self._has_state()     # stopped before any checkpoint
        if saved is not None and not restart:
            self._resume(epochs)
        self.optimizer = make_optimizer(self.model, self.cfg)
        self.scheduler = make_scheduler(self.optimizer, self.cfg.epochs, self.cfg.segments, self.steps_per_epoch,
                                        self.cfg.warmup)
        self.folder.claim(fresh=saved is None)
        try:
            if saved is not None and not restart:
                meta = load_state(self.folder.state_path, self.model, self.optimizer, self.scheduler)
                check_file_run(self.folder.state_path, meta, self.run_id)
                self._restore(meta)
                self._say_data()
            else:
                if restart:
                    self.folder.log("no checkpoint was written before the run stopped: starting again from step 0 "
                                    "with the saved settings")
                self._start()
        except BaseException:
            self.folder.release()
            raise

    def _has_state(self) -> bool:
        """Whether the run has a checkpoint to resume from. None and no trained weights: it stopped before its
        first checkpoint (start again). None but trained weights (the file was deleted or replaced): an error —
        starting again would overwrite the run's results."""
        path = self.folder.state_path
        if path.exists() or path.is_symlink():
            return True                   # read (and checked: a regular file of this run) by load_state
        trained = [n for n in ("model.safetensors", "last.safetensors", "test.json")
                   if (self.folder.folder / n).exists()]
        if trained:
            raise CnnlabError(f"{path}: missing, but the run has trained ({', '.join(trained)} exist); resuming "
                              "would start again from step 0 and overwrite them: restore state.safetensors, or "
                              "use the run as it is (cnnlab eval)")
        return False

    def _set_up_step(self) -> None:
        """DistributedDataParallel under torchrun, the fp16 gradient scaler, and the step's settings."""
        cfg = self.cfg
        self.net: nn.Module = self.model
        if self.dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [torch.cuda.current_device()] if cfg.device == "cuda" else None
            self.net = DDP(self.model, device_ids=ids)
        self.scaler = torch.amp.GradScaler(cfg.device) if cfg.precision == "fp16-amp" else None
        self.step_cfg = StepConfig(cfg.optimizer, cfg.precision, cfg.checkpointing, cfg.device, cfg.weight_decay, cfg.channels_last)
        if self.scaler is not None and self._scaler_state:
            self.scaler.load_state_dict(self._scaler_state)

    # -- set-up ---------------------------------------------------------------------------------------------

    def _start(self) -> None:
        """A new run: write its config and first log lines."""
        cfg, data = self.cfg, self.data
        params = sum(p.numel() for p in self.model.parameters())
        if not self.dist.main:
            return
        doc = seal({RUN_ID: self.run_id, "config": asdict(cfg), "model": self.model_info, "params": params,
                    "data": {**self.task.describe_data(data), "split_digest": split_digests(data)},
                    "torch": torch.__version__, "processes": self.dist.world})
        atomic_write_text(self.folder.folder / "config.json", json.dumps(doc, indent=2))
        if self.model_info["kind"] == "spec":
            atomic_write_text(self.folder.folder / "model_spec.yaml", self.model_info["spec_text"])
        if "head" in self.model_info:      # a Keras model: what it starts from
            self.folder.log(f"model {self.model_info['source']}: {self.model_info['head']}")
        sizes = doc["data"]["sizes"]
        self.folder.log(f"task {cfg.task}, model {self.model_info['name']} ({params:,} parameters), data "
                        f"{doc['data']['name']} {doc['data']['shape']}: {sizes['train']} train / {sizes['val']} val / "
                        f"{sizes['test']} test" + (f"; {self.dist.world} processes (torchrun), batch "
                                                   f"{cfg.batch // self.dist.world} each" if self.dist.world > 1 else ""))
        for path, reason in getattr(data, "skipped", []):
            self.folder.log(f"skipped {path}: {reason}")
        self._say_data()

    def _say_data(self) -> None:
        """What was read (and the precision ``auto`` chose), in one line each on stderr and in log.txt, at every
        start (a resume too)."""
        if self.dist.main:
            data_line = self.task.data_line(self.data, self.model)
            lines = [data_line]
            if self.choice.asked == "auto":
                lines.insert(0, self.choice.line())
            if self.checkpointed:
                shown = ", ".join(self.checkpointed[:3]) + (f" and {len(self.checkpointed) - 3} more blocks"
                                                            if len(self.checkpointed) > 3 else "")
                lines.append(f"activation checkpointing: {shown}")
            if self.cfg.recipe != "none":
                from cnnlab.train.recipes import recipe_line

                lines.insert(0, recipe_line(self.cfg, resumed=self.resumed))
            loud = bool(getattr(self.data, "skipped", None))     # files were left out: a quiet run says so too
            for line in lines:
                self.folder.log(line)
                if not self.quiet or (loud and line == data_line):
                    print(printable(line), file=sys.stderr, flush=True)

    def _tested(self, epochs: int) -> bool:
        """Whether ``test.json`` reports the run at ``epochs`` epochs (an extension killed after its last
        checkpoint has the shorter run's report: it is tested again). Reports without ``epochs`` (older cnnlab)
        count as the run's."""
        path = self.folder.folder / "test.json"
        if not path.exists():
            return False
        from cnnlab.train.runs import read_test_report

        report = read_test_report(self.folder.folder, {"run_id": self.run_id})
        return report.get("epochs", epochs) == epochs

    def _check_weights_belong(self) -> None:
        """The run's weights files carry its id (read from their headers before any training)."""
        from cnnlab.train.checkpoint import read_weights_meta

        for name in ("model.safetensors", "last.safetensors"):
            path = self.folder.folder / name
            if path.exists() or path.is_symlink():
                check_file_run(path, read_weights_meta(path), self.run_id)

    def _resume(self, epochs: int | None) -> None:
        """Checks before a resume; ``epochs`` larger than the saved one extends the run with a new segment."""
        cfg = self.cfg
        meta_epoch = _saved_epoch(self.folder.state_path, self.run_id)
        self._check_weights_belong()
        if epochs is not None and epochs < cfg.epochs:
            raise CnnlabError(f"--epochs {epochs} is fewer than the run's {cfg.epochs}; a run can only be extended")
        if epochs is not None and epochs > cfg.epochs:
            start = meta_epoch if meta_epoch >= cfg.epochs else cfg.epochs
            cfg.segments = [*cfg.segments, start]
            cfg.epochs = epochs
            self._extended = start
        elif meta_epoch >= cfg.epochs and not self._tested(cfg.epochs):
            self._finish_only = True        # stopped after its last checkpoint, before the test report
        elif meta_epoch >= cfg.epochs:
            raise CnnlabError(f"{cfg.out}: the run is complete ({meta_epoch} of {cfg.epochs} epochs; results in "
                              f"test.json), nothing to resume; to train longer give --epochs N (N > {cfg.epochs}) "
                              "with --resume")

    def _restore(self, meta: dict[str, Any]) -> None:
        run = meta["run"]
        self.state = RunState(**{k: v for k, v in run.items() if k in RunState.__dataclass_fields__})
        if not self.dist.main:                  # the saved sums are every process's: count them once
            self.state.running, self.state.stats = _new_running(), {}
        self._scaler_state = meta.get("scaler")
        # LambdaLR.load_state_dict does not recompute the rate: set it for the restored step (and a new segment)
        for group, rate, base in zip(self.optimizer.param_groups, self.scheduler.lr_lambdas, self.scheduler.base_lrs):
            group["lr"] = base * rate(self.scheduler.last_epoch)
        folder = self.folder
        if self._extended is not None:
            cfg_path = folder.folder / "config.json"
            doc = load_run_config(folder.folder)
            doc["config"]["epochs"], doc["config"]["segments"] = self.cfg.epochs, self.cfg.segments
            if self.dist.main:        # cnnlab's own change: sealed again
                atomic_write_text(cfg_path, json.dumps(seal(doc) if DIGEST in doc else doc, indent=2))
            folder.log(f"extended to {self.cfg.epochs} epochs: a new warm-up + cosine segment of the learning rate "
                       f"from epoch {self._extended + 1} (step {self._extended * self.steps_per_epoch})")
        folder.log(f"resumed at epoch {self.state.epoch + 1}, step {self.state.step} "
                   f"(global step {self.state.global_step})")

    # -- the loop -------------------------------------------------------------------------------------------

    def run(self) -> Path:
        """Train the remaining epochs, test, and return the run folder."""
        try:
            bar = None if self._finish_only else self._bar()
            self.net.train()
            for epoch in range(self.state.epoch, self.cfg.epochs):
                self.train_one_epoch(epoch, bar)
                self.end_epoch(epoch, bar)
            if bar is not None:
                bar.close()
            if self.dist.main:
                self.finish()
            if self.dist.world > 1:
                import torch.distributed as tdist

                tdist.barrier()
        finally:
            self.folder.release()
        return self.folder.folder

    def _bar(self) -> Any:
        if not (self.progress and self.dist.main):
            return None
        from tqdm import tqdm

        return tqdm(total=self.cfg.epochs * self.steps_per_epoch, initial=self.state.global_step, unit="step",
                    dynamic_ncols=True, mininterval=0.5, desc="train", file=sys.stderr)

    def _make_batch(self, order: torch.Tensor, epoch_start: int, step: int) -> tuple[Any, Any, float]:
        """The batch of ``step`` in this epoch, for this process, on the device; and the seconds it took."""
        t0 = time.perf_counter()
        cfg, dist = self.cfg, self.dist
        local = cfg.batch // dist.world
        indices = order[step * cfg.batch:(step + 1) * cfg.batch]
        rows = slice(dist.rank * local, (dist.rank + 1) * local)
        x, y = self.task.batch(self.data.train, indices, rows, step_generator(cfg.seed, epoch_start + step))
        fmt = torch.channels_last if cfg.channels_last and x.dim() == 4 else torch.contiguous_format
        x = x.to(self.device, non_blocking=True, memory_format=fmt)
        y = _to(y, self.device)
        return x, y, time.perf_counter() - t0

    def train_one_epoch(self, epoch: int, bar: Any = None) -> None:
        """The remaining steps of ``epoch``: forward, loss, backward, update, schedule, bookkeeping."""
        cfg, state = self.cfg, self.state
        order = self.task.order(self.data.train, epoch_order(len(self.data.train), cfg.seed, epoch), cfg.batch)
        epoch_start = epoch * self.steps_per_epoch
        kill_after = int(os.environ.get(KILL_HOOK, "0") or 0)
        wall0, seen0 = time.perf_counter(), state.running["seen"]
        steps = range(state.step, self.steps_per_epoch)
        waited = time.perf_counter()
        # On a GPU the next batch is made in a thread while the device computes. On a CPU the same cores would
        # make it and compute the step: the thread only contends with the step's threads (measured 3-8 % slower
        # than making the ~1 ms batch in line, docs/benchmarks.md), so the batch is made between steps.
        ahead = self.device.type == "cuda"
        for step, (x, y, made_s) in prefetch(lambda s: self._make_batch(order, epoch_start, s), steps, ahead):
            t1 = time.perf_counter()
            loss = self._step(x, y)
            t2 = time.perf_counter()
            r = state.running
            n = _rows(y)
            r["loss"] += float(loss) * n
            r["seen"] += n
            r["data_s"] += t1 - waited                 # time the step waited for its batch
            r["compute_s"] += t2 - t1
            r["time_s"] += t2 - waited
            state.step, state.global_step = step + 1, state.global_step + 1
            if bar is not None:
                self._show(bar, epoch)
            if cfg.checkpoint_every and state.global_step % cfg.checkpoint_every == 0 and step + 1 < self.steps_per_epoch:
                self.checkpoint()
            if kill_after and state.global_step == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
            waited = time.perf_counter()
        state.running["wall_s"] += time.perf_counter() - wall0
        state.running["wall_seen"] += state.running["seen"] - seen0

    def _step(self, x: torch.Tensor, y: Any) -> torch.Tensor:
        """One step of :func:`cnnlab.memory.step.training_step` — the step ``cnnlab memory`` predicts — with
        the task's forward and loss; the task's step statistics are added up; returns the detached loss."""
        kept: list[torch.Tensor] = []

        def on_loss(outputs: Any, loss: torch.Tensor) -> None:
            kept.append(loss.detach())
            for k, v in self.task.step_stats(outputs, y).items():
                self.state.stats[k] = self.state.stats.get(k, 0.0) + v

        training_step(self.net, x, y, self.optimizer, self.step_cfg, forward=self.task.forward,
                      loss_fn=self.task.loss, on_loss=on_loss, scaler=self.scaler)
        self.scheduler.step()
        return kept[0]

    def _show(self, bar: Any, epoch: int) -> None:
        bar.update(1)
        r, state = self.state.running, self.state
        if state.global_step % 10 == 0 or state.step == self.steps_per_epoch:
            metrics = self.task.train_metrics(state.stats, r["seen"])
            bar.set_postfix(epoch=f"{epoch + 1}/{self.cfg.epochs}", loss=f"{r['loss'] / max(r['seen'], 1):.4f}",
                            **{k.replace("train_", ""): f"{v:.3f}" for k, v in metrics.items()},
                            img_s=f"{r['seen'] * self.dist.world / max(r['time_s'], 1e-9):.0f}")

    def end_epoch(self, epoch: int, bar: Any = None) -> None:
        """Validate, record the epoch's metrics, keep the best and last weights, checkpoint."""
        cfg, state, dist = self.cfg, self.state, self.dist
        r = all_reduce(state.running, dist, self.device)
        stats = all_reduce(state.stats, dist, self.device)
        val = self.task.validate(self.model, self.data.val, cfg.device)
        row: dict[str, float] = {"epoch": epoch + 1, "train_loss": r["loss"] / max(r["seen"], 1),
                                 **self.task.train_metrics(stats, r["seen"]), **val,
                                 "lr": self.optimizer.param_groups[0]["lr"],
                                 "images_per_s": r["wall_seen"] / max(r["wall_s"] / dist.world, 1e-9),
                                 "data_s": r["data_s"] / dist.world, "compute_s": r["compute_s"] / dist.world,
                                 "epoch_s": r["time_s"] / dist.world}
        state.history.append({k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()})
        state.epoch, state.step = epoch + 1, 0
        state.running, state.stats = _new_running(), {}
        monitor = val[self.task.monitor]
        self._check_finite(epoch)
        if dist.main:
            folder = self.folder.folder
            self.folder.write_metrics(state.history)
            save_weights(folder / "last.safetensors", self.model, {"epoch": epoch + 1, **val, RUN_ID: self.run_id})
            val_loss = val.get("val_loss", float("inf"))
            if monitor > state.best or (monitor == state.best and val_loss < state.best_loss):
                state.best, state.best_loss = monitor, val_loss
                save_weights(folder / "model.safetensors", self.model, {"epoch": epoch + 1, **val,
                                                                        RUN_ID: self.run_id})
            metric = self.task.metric
            line = (f"epoch {epoch + 1}/{cfg.epochs}: val {metric} {val['val_' + metric]:.4f}"
                    + (f" (loss {val['val_loss']:.4f})" if "val_loss" in val else "")
                    + (f", train {metric} {row['train_' + metric]:.4f}" if f"train_{metric}" in row
                       else f", train loss {row['train_loss']:.4f}")
                    + f", {row['images_per_s']:.0f} images/s (batches {row['data_s']:.1f} s, "
                    f"compute {row['compute_s']:.1f} s)")
            self.folder.log(line.replace(f"epoch {epoch + 1}/{cfg.epochs}", f"epoch {epoch + 1}"))
            if not self.quiet:          # a quiet run (a study's) keeps its epochs to log.txt
                if bar is not None:
                    bar.write(line, file=sys.stderr)
                else:   # no bar: one line per epoch on stderr, so a run without a bar is not a silent one
                    print(line, file=sys.stderr, flush=True)
        self.checkpoint()

    def _check_finite(self, epoch: int) -> None:
        """Stop with a clear error, before anything is saved, when a weight became NaN or infinite."""
        for name, t in self.model.state_dict().items():
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise CnnlabError(f"{self.cfg.out}: after epoch {epoch + 1} tensor '{name}' holds NaN or infinite "
                                  "values: the training diverged (the files of the last good epoch are kept); "
                                  "start again with a lower --lr")

    def checkpoint(self) -> None:
        """Write the resumable state (model, optimizer, schedule, RNG, scaler, run state), atomically.

        Every process calls it at the same step: under torchrun the in-epoch sums
        are reduced first, so the file holds all processes' part of the epoch.
        """
        run = asdict(self.state)
        if self.dist.world > 1:
            run["running"] = all_reduce(self.state.running, self.dist, self.device)
            run["stats"] = all_reduce(self.state.stats, self.dist, self.device)
        if self.dist.main:
            meta = {"run": run, "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                    RUN_ID: self.run_id}
            save_state(self.folder.state_path, self.model, self.optimizer, self.scheduler, meta)

    def finish(self) -> dict[str, Any]:
        """Test the best weights with the task's report; returns it."""
        folder = self.folder.folder
        check_file_run(folder / "model.safetensors", load_weights(folder / "model.safetensors", self.model),
                       self.run_id)
        report = self.task.test_report(folder, self.model, self.data, self.cfg.device, self.state.history)
        if self.run_id is not None:   # the report belongs to this run, at this length
            report = {**report, RUN_ID: self.run_id, "epochs": self.cfg.epochs}
            atomic_write_text(folder / "test.json", json.dumps(report, indent=2))
        self.folder.log(f"best weights: {self.task.summary(report)}")
        return report


def _saved_epoch(path: Path, run_id: str | None) -> int:
    """The epoch count a state file of run ``run_id`` has finished (read from its metadata, no tensors loaded)."""
    from cnnlab.train.checkpoint import read_meta

    meta = read_meta(path)
    check_file_run(path, meta, run_id)
    epoch = meta.get("run", {}).get("epoch") if isinstance(meta.get("run"), dict) else None
    if not (isinstance(epoch, int) and 0 <= epoch <= MAX_EPOCHS):
        raise CnnlabError(f"{path}: its epoch count is missing or out of range; the checkpoint is damaged")
    return epoch


def _to(y: Any, device: str) -> Any:
    if isinstance(y, torch.Tensor):
        return y.to(device, non_blocking=True)
    if isinstance(y, (list, tuple)):
        return type(y)(_to(v, device) for v in y)
    if isinstance(y, dict):
        return {k: _to(v, device) for k, v in y.items()}
    return y


def _rows(y: Any) -> int:
    return int(y.shape[0]) if isinstance(y, torch.Tensor) else len(y)


def train(cfg: TrainConfig, resume: Path | None = None, progress: bool = True, epochs: int | None = None) -> Path:
    """Train (or resume, or with ``epochs`` extend) a run; returns the run folder."""
    return Trainer(cfg, resume=resume, progress=progress, epochs=epochs).run()
