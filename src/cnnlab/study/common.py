"""What every study shares: its folder, its runs, their results and the honesty rules.

A study trains several *arms* (networks or recipes) through the one training engine
(:mod:`cnnlab.train.engine`), each arm with the same seeds and budget, each run in its own folder under
``out/runs/``. A killed study resumes the run it was in and reuses finished ones; a folder made with other
settings is refused. The report states a difference only when it holds for the spread of the seeds
(:func:`verdict`), says how long each arm took and on what CPU (:func:`machine_line`).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from cnnlab.errors import CnnlabError

STUDY_MARK = ".cnnlab-study"      # written into a study's folder: only such a folder is written into again
# a run's config fields that are bookkeeping, not settings: a reused run may differ in these
NOT_SETTINGS = ("out", "segments", "checkpoint_every", "data_dir", "images")


@dataclass(frozen=True)
class ArmsConfig:
    """What a study of arms × seeds trains; ``quick`` is digits-sized (23–78 s on 2 cores for the classification
    studies). A study's own config subclasses it with its ``out`` folder (and its own options)."""

    data: str | None = None           # default: fashion-mnist (digits with quick)
    data_dir: str | None = None
    out: str = "study"
    epochs: int | None = None         # default: 4 (15 with quick)
    batch: int | None = None          # default: 128 (64 with quick)
    seeds: tuple[int, ...] = (0, 1, 2)
    quick: bool = False

    def effective(self) -> ArmsConfig:
        """The settings with every default filled in (``quick``: digits, 15 epochs, batch 64)."""
        q = self.quick
        return replace(self, data=self.data or ("digits" if q else "fashion-mnist"),
                       epochs=self.epochs or (15 if q else 4), batch=self.batch or (64 if q else 128))


def claim_study_folder(out: Path, name: str) -> None:
    """``out`` for a study: new or empty (then marked as the study's), or already this study's folder.

    A folder of the user's (non-empty, unmarked) is refused: the study would overwrite a report.md or
    figure of theirs. Folders made before the mark (with the study's runs/ and specs/) are accepted."""
    from cnnlab.files import atomic_write_text

    if out.exists() and not out.is_dir():
        raise CnnlabError(f"{out}: is a file; give --out a folder")
    mark = out / STUDY_MARK
    if out.is_dir() and any(out.iterdir()):
        legacy = name == "cnn-vs-dense" and (out / "runs").is_dir() and (out / "specs").is_dir()
        if mark.is_file() and mark.read_text(encoding="utf-8", errors="replace").strip() != name:
            raise CnnlabError(f"{out}: holds another study ({mark.read_text(errors='replace').strip()[:40]}); "
                              "give this one another --out")
        if not mark.is_file() and not legacy:
            raise CnnlabError(f"{out}: is not empty and holds no cnnlab study; cnnlab never writes into a folder "
                              "of yours: choose a new or empty --out")
        return
    atomic_write_text(mark, name + "\n")


@contextlib.contextmanager
def study_folder(out: Path, name: str, seeds: Sequence[int] | None = None) -> Iterator[None]:
    """:func:`claim_study_folder` for the study's planning: when planning refuses (other settings, a bad value),
    a folder this call created is removed with what planning wrote in it (scenes, specs), and a mark it put in an
    empty folder of the user's is taken back — a refused study leaves no trace. ``seeds``: a finished report over
    seeds that these leave out is not replaced by a report over fewer (more seeds extend it)."""
    mark = out / STUDY_MARK
    existed, marked = out.exists(), mark.is_file()
    claim_study_folder(out, name)
    try:
        if seeds is not None:
            keep_seeds(out, seeds)
        yield
    except BaseException:
        if not existed and mark.is_file():
            shutil.rmtree(out)            # made by this call (scenes drawn, specs written): nothing of the user's
        elif not marked and mark.is_file() and [p.name for p in out.iterdir()] == [STUDY_MARK]:
            mark.unlink()
        raise


def keep_seeds(out: Path, seeds: Sequence[int]) -> None:
    """Refuse ``seeds`` that leave out some of the seeds of the report already in ``out``."""
    report = out / "report.json"
    try:
        before = [int(s) for s in json.loads(report.read_text())["config"]["seeds"]]
    except (OSError, ValueError, KeyError, TypeError):
        return                               # no report yet (or not one of cnnlab's): nothing to keep
    dropped = [s for s in before if s not in seeds]
    if dropped:
        had = ",".join(map(str, before))
        raise CnnlabError(f"{out}: its report is over seeds {had}; --seeds {','.join(map(str, seeds))} would replace "
                          f"it with one over fewer (the runs stay): give --seeds {had} (or more), or another --out")


def write_spec(path: Path, doc: Mapping[str, Any], comment: str) -> str:
    """A study's network as a spec file (a ``# comment`` line, then YAML), written atomically and only when its text
    changed (a finished run's spec keeps its time stamp); returns the path."""
    from cnnlab.files import atomic_write_text

    text = spec_text(doc, comment)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text() != text:
        atomic_write_text(path, text)
    return str(path)


def spec_text(doc: Mapping[str, Any], comment: str) -> str:
    """A spec file's text as :func:`write_spec` writes it: a ``# comment`` line, then YAML."""
    import yaml

    return f"# {comment}\n" + yaml.safe_dump(dict(doc), sort_keys=False)


def resolved(tc: Any) -> Any:
    """``tc`` with ``--precision auto`` replaced by what it comes to on this machine (as the engine records it),
    so a saved run compares with the study's settings field by field."""
    from dataclasses import replace

    from cnnlab.precision import choose

    choice = choose(tc.precision, tc.device, tc.channels_last, measured=tc.task == "classification")
    return replace(tc, precision=choice.precision, channels_last=choice.channels_last)


def check_same(folder: Path, tc: Any, fields_: Iterable[str] | None = None) -> None:
    """A run folder is reused only when it was made with the study's present settings (every config field
    but bookkeeping, unless ``fields_`` names the ones that matter)."""
    from cnnlab.train.runs import open_run

    saved = type(tc).from_saved(open_run(folder, weights=False).doc["config"], str(folder))  # older runs: defaults
    names = list(fields_) if fields_ is not None else [f.name for f in fields(tc) if f.name not in NOT_SETTINGS]
    diff = [k for k in names if _plain(getattr(saved, k)) != _plain(getattr(tc, k))]
    if diff:
        raise CnnlabError(f"{folder}: made with other settings ({', '.join(f'{k} {getattr(saved, k)}' for k in diff)}); "
                          "give the study another --out or the same options")


def _plain(value: Any) -> Any:
    """JSON's view of a value (tuples are lists), for comparing a saved config with a live one."""
    return json.loads(json.dumps(value))


def run_all(runs: Mapping[str, Any], progress: bool = True, check: Iterable[str] | None = None,
            desc: str = "study", train: Callable[[str, Any, Path | None], None] | None = None,
            workers: int = 1, record: Path | None = None) -> None:
    """Train every run that is not finished (resuming a stopped one), each quietly (its lines go to its
    ``log.txt``): one bar over the runs, or without a bar one line on stderr per run trained. ``train(key, config,
    resume)`` trains a run another way (the remedies study's data-parallel runs under torchrun). ``workers`` > 1
    trains up to that many runs at a time, each in its own process on its share of the torch threads (small
    networks keep 2 cores busier that way: :func:`parallel_note`). ``record``: a JSON file that keeps, for each run
    trained, how many ran at a time and on how many threads (what a report may say of its seconds)."""
    check = list(check) if check is not None else None
    pending = []
    for key, tc in runs.items():
        folder = Path(tc.out)
        if (folder / "config.json").is_file():
            check_same(folder, tc, check)
        if not (folder / "test.json").is_file():
            pending.append((key, tc, folder if (folder / "config.json").is_file() else None))
    before = len(runs) - len(pending)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(runs), initial=before, unit="run", desc=desc, position=0, leave=True)

    workers = min(workers, len(pending))
    side_by_side = workers if workers > 1 and train is None else 1

    def done(n: int, key: str, seconds: float, resume: Path | None) -> None:
        if record is not None:
            _record(record, key, side_by_side)
        if bar is not None:
            bar.update(1)
        else:
            print(f"{desc}: run {before + n} of {len(runs)} ({key}) trained in {seconds:.0f} s"
                  + (" (resumed)" if resume else "") + f"; its log: {Path(runs[key].out) / 'log.txt'}",
                  file=sys.stderr, flush=True)

    try:
        if side_by_side > 1:
            if bar is not None:
                bar.set_postfix_str(f"{workers} at a time")
            _train_parallel(pending, workers, done)
        else:
            for n, (key, tc, resume) in enumerate(pending, 1):
                if bar is not None:
                    bar.set_postfix_str(key)
                start = time.perf_counter()
                if train is not None:
                    train(key, tc, resume)
                else:
                    _train_quietly(tc, resume, progress)
                done(n, key, time.perf_counter() - start, resume)
    finally:              # closed before an error or "interrupted" is said, so that line comes after the bar
        if bar is not None:
            bar.close()


def _record(path: Path, key: str, side_by_side: int) -> None:
    """Add to ``path`` how run ``key`` was trained: how many runs at a time, on how many torch threads each."""
    from cnnlab.files import atomic_write_text

    doc = trained_how(path)
    doc[key] = {"at_a_time": side_by_side, "threads": thread_share(side_by_side)}
    atomic_write_text(path, json.dumps(doc, indent=1, sort_keys=True))


def trained_how(path: Path) -> dict[str, dict[str, int]]:
    """What :func:`run_all` recorded in ``path`` ({} if nothing, or unreadable)."""
    try:
        doc = json.loads(path.read_text())
        return doc if isinstance(doc, dict) else {}
    except (OSError, ValueError):
        return {}


def parallel_note(how: Mapping[str, Mapping[str, int]]) -> str:
    """What a report says of its runs' seconds when some were trained side by side ("" when none was)."""
    side = [h for h in how.values() if h.get("at_a_time", 1) > 1]
    if not side:
        return ""
    most = max(h["at_a_time"] for h in side)
    threads = sorted({h["threads"] for h in side})
    return (f"{len(side)} run{'s' if len(side) > 1 else ''} trained up to {most} at a time, on "
            f"{'/'.join(map(str, threads))} torch thread{'s' if threads[-1] > 1 else ''} each (a run's seconds are "
            "its own, with another beside it)")


def thread_share(workers: int) -> int:
    """The torch threads each of ``workers`` runs side by side gets: this process's, shared out (at least 1)."""
    import torch

    return max(1, torch.get_num_threads() // workers)


def _train_quietly(tc: Any, resume: Path | None, progress: bool = False, threads: int | None = None) -> float:
    """Train one run (its lines to its log only); with ``threads``, on that many torch threads. Its seconds."""
    import torch

    from cnnlab.train.engine import Trainer

    if threads is not None:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    Trainer(tc, resume=resume, progress=progress, quiet=True).run()
    return time.perf_counter() - start


_STOP: Any = None          # in a worker process: set when the study stops (a run failed, or Ctrl-C)


def _worker_starts(stop: Any) -> None:
    global _STOP
    _STOP = stop


def _in_worker(work: Callable[..., Any], tc: Any, resume: Path | None, threads: int) -> Any:
    """``work(tc, resume, threads=threads)`` in a worker process, unless the study has stopped; an error that is not
    cnnlab's comes back as its text (an exception's class may not survive the trip between processes)."""
    import traceback

    if _STOP is not None and _STOP.is_set():
        return 0.0
    try:
        return work(tc, resume, threads=threads)
    except CnnlabError:
        raise
    except Exception as err:
        raise RuntimeError(f"{tc.out}: {type(err).__name__}: {err}\n{traceback.format_exc()}") from None


def _train_parallel(pending: list[tuple[str, Any, Path | None]], workers: int,
                    done: Callable[[int, str, Any, Path | None], None],
                    work: Callable[..., Any] = _train_quietly) -> None:
    """``work`` (training) for ``pending`` runs, ``workers`` at a time in fresh processes, the torch threads shared
    between them. A failure or Ctrl-C stops every worker at once (a run folder keeps its last checkpoint: a rerun
    resumes it)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    spawn = multiprocessing.get_context("spawn")
    stop = spawn.Event()
    pool = ProcessPoolExecutor(workers, mp_context=spawn, initializer=_worker_starts, initargs=(stop,))
    futures = {pool.submit(_in_worker, work, tc, resume, thread_share(workers)): (key, resume)
               for key, tc, resume in pending}
    try:
        for n, future in enumerate(as_completed(futures), 1):
            key, resume = futures[future]
            try:
                result = future.result()
            except BrokenProcessPool as err:
                raise CnnlabError(f"a process training this study's runs died ({key} was among those unfinished): "
                                  "killed by the system, e.g. out of memory with several runs at a time; run "
                                  "again to resume, with --jobs 1 for one run at a time") from err
            done(n, key, result, resume)
    except BaseException:
        stop.set()                                   # a run handed to a worker already returns at once
        for process in list((getattr(pool, "_processes", None) or {}).values()):   # no public way before 3.14
            process.terminate()
        raise
    finally:
        pool.shutdown(cancel_futures=True)


def result(folder: Path) -> dict[str, float]:
    """A finished run's test accuracy, best validation accuracy and training seconds (sum of its epochs)."""
    test = json.loads((folder / "test.json").read_text())
    with open(folder / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {"test_acc": test["test_acc"], "val_acc": max(float(r["val_acc"]) for r in rows),
            "train_s": sum(float(r["epoch_s"]) for r in rows), "epochs": len(rows)}


def result_seconds(folder: Path) -> float:
    """A finished run's training seconds: the sum of its epochs' (validation included, start-up and test not)."""
    with open(folder / "metrics.csv", newline="") as f:
        return sum(float(r["epoch_s"]) for r in csv.DictReader(f))


def spread(values: Iterable[float]) -> dict[str, Any]:
    """Median, lowest and highest of one arm's values over its seeds (and the values, in seed order)."""
    vals = [float(v) for v in values]
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "values": vals}


def pct(v: float) -> str:
    return f"{100 * v:.2f} %"


def secs(v: float) -> str:
    """Seconds with the digits that matter: ``0.14``, ``3.2``, ``41``."""
    return f"{v:.2f}" if v < 1 else f"{v:.1f}" if v < 10 else f"{v:.0f}"


def pct_spread(s: Mapping[str, Any]) -> str:
    """``93.12 % (92.80–93.40 %, 3 seeds)``; a single seed shows its value alone."""
    if len(s["values"]) == 1:
        return pct(s["median"])
    return f"{100 * s['median']:.2f} % ({100 * s['min']:.2f}–{100 * s['max']:.2f} %, {len(s['values'])} seeds)"


def verdict(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    """How arm ``a`` compares with ``b`` over seeds: ``"higher"``/``"lower"`` only when every seed of one is above
    every seed of the other (their ranges do not overlap) and there are at least three seeds; else ``"not shown"``."""
    if min(len(a["values"]), len(b["values"])) < 3:
        return "not shown"
    if a["min"] > b["max"]:
        return "higher"
    if a["max"] < b["min"]:
        return "lower"
    return "not shown"


def machine_line() -> str:
    """The CPU (model name), the torch threads and version a study ran with: its times mean nothing without."""
    import torch

    from cnnlab.machine import cpu_name

    return f"{cpu_name()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def shift_images(images: Any, dy: int, dx: int) -> Any:
    """(N, C, H, W) images with their content moved ``dy`` pixels down and ``dx`` right; zero fill."""
    import torch

    n, c, h, w = images.shape
    out = torch.zeros_like(images)
    if abs(dy) >= h or abs(dx) >= w:
        return out
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        images[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def seed_runs(base: Any, arms: Mapping[str, Mapping[str, Any]], seeds: Iterable[int], out: Path) -> dict[str, Any]:
    """One run per arm and seed (``ARM-sSEED`` under ``out/runs``): ``base``'s settings with the arm's own, the
    same seeds for every arm."""
    from dataclasses import replace

    from cnnlab.train.config import anchored

    base = replace(base, data=anchored(base.data) or base.data)     # as the engine saves it: a folder made absolute
    return {f"{arm}-s{seed}": resolved(replace(base, **dict(overrides), seed=seed,
                                               out=str(out / "runs" / f"{arm}-s{seed}")))
            for arm, overrides in arms.items() for seed in seeds}


def plan_spec_arms(cfg: ArmsConfig, arms: Iterable[str], write: Any) -> tuple[Any, dict[str, str], dict[str, Any]]:
    """(data, each arm's spec file, every run) of a study whose arms are networks: one spec per arm in
    ``out/specs/ARM.yaml``, written by ``write(folder, data)`` only after any existing run was checked."""
    from cnnlab.data import load_data
    from cnnlab.train.config import TrainConfig

    data = load_data(cfg.data, cfg.data_dir, seed=cfg.seeds[0])
    out = Path(cfg.out)
    specs = {arm: str(out / "specs" / f"{arm}.yaml") for arm in arms}
    base = TrainConfig(data=cfg.data, data_dir=cfg.data_dir, epochs=cfg.epochs, batch=cfg.batch)
    runs = seed_runs(base, {arm: {"model": spec} for arm, spec in specs.items()}, cfg.seeds, out)
    check_existing(runs)                 # a folder made with other settings is refused before any write
    write(out / "specs", data)
    return data, specs, runs


def check_existing(runs: Mapping[str, Any], check: Iterable[str] | None = None) -> None:
    """Refuse, before anything is written, a study folder whose runs were made with other settings."""
    check = list(check) if check is not None else None
    for tc in runs.values():
        if (Path(tc.out) / "config.json").is_file():
            check_same(Path(tc.out), tc, check)


def arm_results(runs: Mapping[str, Any], arms: Iterable[str], seeds: Iterable[int]) -> dict[str, dict[str, Any]]:
    """Each arm's test and validation accuracy, training seconds and seconds per epoch over its seeds, read back
    from its run folders."""
    seeds = list(seeds)
    out: dict[str, dict[str, Any]] = {}
    for arm in arms:
        rs = [result(Path(runs[f"{arm}-s{seed}"].out)) for seed in seeds]
        out[arm] = {"test_acc": spread(r["test_acc"] for r in rs), "val_acc": spread(r["val_acc"] for r in rs),
                    "train_s": spread(r["train_s"] for r in rs),
                    "epoch_s": spread(r["train_s"] / r["epochs"] for r in rs)}
    return out


def evaluate_on(folder: Path, images: Any, labels: Any) -> float:
    """Test accuracy of a run's best weights on the given (N, C, H, W) uint8 images, normalised as in training."""
    from cnnlab.data import Split
    from cnnlab.train.tasks.classification import evaluate

    import torch

    run = _opened(str(folder))
    channels_last = bool(run.config.channels_last)       # the layout it trained in: faster, the same accuracy
    model = run.model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    return float(evaluate(model, Split(images, labels), run.mean, run.std, "cpu", channels_last=channels_last)[1])


@functools.lru_cache(maxsize=2)
def _opened(folder: str) -> Any:
    from cnnlab.train.runs import open_run

    return open_run(Path(folder), "classification")


def shifted_accuracy(folder: Path, images: Any, labels: Any, shift: int) -> float:
    """Accuracy with every test image shifted by ``shift`` pixels, the mean over right, left, down and up."""
    if shift == 0:
        return evaluate_on(folder, images, labels)
    accs = [evaluate_on(folder, shift_images(images, dy * shift, dx * shift), labels)
            for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0))]
    return sum(accs) / len(accs)


def test_split(data: str, data_dir: str | None, seed: int) -> Any:
    """The test split a run of ``seed`` was tested on (data without an official test split, such as digits, draw
    theirs by the seed: a run is only ever measured on its own test images)."""
    return _loaded(data, data_dir, seed).test


@functools.lru_cache(maxsize=4)
def _loaded(data: str, data_dir: str | None, seed: int) -> Any:
    from cnnlab.data import load_data

    return load_data(data, data_dir, seed=seed)


def scene_augment(items: str) -> str:
    """The segmentation studies' augmentation for scenes of ``items``: ``flip``, but ``none`` for digits (a mirrored
    digit is another shape; the task would skip the flips anyway, and the run's record should say what it did)."""
    return "none" if items.lower() == "digits" else "flip"


def scene_folder(folder: Path, items: str, count: int, side: int, data_dir: str | None, objects: tuple[int, int] = (1, 3),
                 same_class: float = 0.0) -> Path:
    """A segmentation study's scenes (:mod:`cnnlab.data.scenes`), drawn once (seed 0) and written to ``folder``;
    items scaled with the canvas (24–36 px on 64). How they were drawn is recorded beside the folder
    (``scenes.json``): scenes drawn with other settings are refused, not reused."""
    from cnnlab.data.scenes import SceneConfig, make_scenes, write_scenes
    from cnnlab.files import atomic_write_text

    item_px = (max(2, round(side * 24 / 64)), max(2, round(side * 36 / 64)))
    drawn: dict[str, Any] = {"items": items, "count": count, "size": side, "item_px": list(item_px), "seed": 0}
    if tuple(objects) != (1, 3) or same_class:         # the older studies' records stay valid
        drawn.update(objects=list(objects), same_class=same_class)
    record = folder.parent / "scenes.json"
    if (folder / "classes.txt").is_file():
        saved = json.loads(record.read_text()) if record.is_file() else None
        if saved != drawn:
            raise CnnlabError(f"{folder}: scenes drawn with other settings ({saved}); give the study another --out "
                              "or the same options")
        return folder
    scenes = make_scenes(SceneConfig(source=items, count=count, size=(side, side), item_px=item_px, seed=0,
                                     data_dir=data_dir, objects=tuple(objects), same_class=same_class))
    written = write_scenes(scenes, folder)
    atomic_write_text(record, json.dumps(drawn))
    return written
