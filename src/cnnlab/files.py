"""Atomic file writes: a file is either the old one or the complete new one, never half-written."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success fsync it and rename it over ``path``.

    If the body raises, the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates 0600; give the file the mode an ordinary write would (or the old file's)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~umask)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


STALE_AFTER_S = 3600   # a temporary older than this was left by a write that was killed
_SWEPT: set[Path] = set()   # folders already cleaned in this process: one scan each, not one per write


def _remove_stale_temporaries(path: Path) -> None:
    """Temporaries that writes into ``path``'s folder left when killed before renaming: ``.NAME.XXXXXXXX.tmp``
    (mkstemp's 8 random characters) more than an hour old; a write still running is never that old."""
    folder = path.parent.resolve()
    if folder in _SWEPT:
        return
    _SWEPT.add(folder)
    now = time.time()
    for old in folder.glob(".*.tmp"):
        if len(old.name.split(".")[-2]) != 8:     # not one of ours: .NAME.XXXXXXXX.tmp
            continue
        with contextlib.suppress(OSError):
            if now - old.stat().st_mtime > STALE_AFTER_S:
                old.unlink()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))
