"""What binds a run's files together: its id in every file, and the digests of the split it was trained on.

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

import hashlib
from pathlib import Path
from typing import Any

import torch

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
    for name in ("labels", "masks"):
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
    if run_id is None:
        return
    found = meta.get("run_id") if isinstance(meta, dict) else None
    if found != run_id:
        other = f"run {str(found)[:16]}" if found else "no run (or an older cnnlab)"
        raise CnnlabError(f"{path}: belongs to {other}, not to this run ({run_id}); it was copied in from "
                          "another folder: restore this run's own file, or retrain")


def read_test_report(run: Path, doc: dict[str, Any]) -> dict[str, Any]:
    """The run's ``test.json``, checked to be this run's own (bounded in size and nesting)."""
    from cnnlab import jsonsafe

    path = Path(run) / "test.json"
    try:
        if path.stat().st_size > 64 << 20:
            raise ValueError("over 64 MiB")
        report = jsonsafe.loads(path.read_bytes(), 64)
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise CnnlabError(f"{path}: unreadable ({str(err)[:80]}); the run folder is damaged") from None
    if not isinstance(report, dict):
        raise CnnlabError(f"{path}: not a test report; the run folder is damaged")
    check_file_run(path, report, doc.get("run_id"))
    return report
