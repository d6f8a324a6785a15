"""Atomic file writes: a file is either the old one or the complete new one, never half-written."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from cnnlab.errors import CnnlabError
from cnnlab.text import printable


TMP_TAG = "cnnlab-tmp"       # in every temporary's name: .NAME.cnnlab-tmp-RRRRRRRRRRRR-CCCCCCCC
_TMP_NAME = re.compile(r"^\.(?P<name>.+)\.cnnlab-tmp-(?P<nonce>[0-9a-f]{12})-(?P<check>[0-9a-f]{8})$")


def _check(name: str, nonce: str) -> str:
    """The 8-hex mark that proves a temporary's name was made by :func:`temporary_name` (BLAKE2b, keyed)."""
    return hashlib.blake2b(f"{name}\0{nonce}".encode("utf-8", "surrogateescape"), digest_size=4,
                           key=TMP_TAG.encode()).hexdigest()


def temporary_name(name: str) -> str:
    """A temporary's name for a write to ``name``: a random nonce and a keyed mark of (name, nonce).

    No user chooses such a name, and a copy renamed by hand no longer carries a valid mark, so the sweep
    (:func:`_remove_stale_temporaries`) can prove a file is one of cnnlab's before it removes it.
    """
    nonce = secrets.token_hex(6)
    return f".{name}.cnnlab-tmp-{nonce}-{_check(name, nonce)}"


def is_cnnlab_temporary(name: str) -> bool:
    """Whether ``name`` is a temporary's name made by :func:`temporary_name` (its mark checks out)."""
    m = _TMP_NAME.match(name)
    return bool(m) and secrets.compare_digest(_check(m["name"], m["nonce"]), m["check"])


FIXES = {errno.ENOSPC: "the disk is full: free some space or choose another place",
         errno.EDQUOT: "your disk quota is used up: free some space or choose another place",
         errno.EROFS: "the file system is read-only: choose a folder you can write",
         errno.EACCES: "permission denied: choose a folder you can write",
         errno.EPERM: "permission denied: choose a folder you can write",
         errno.EFBIG: "the file would pass this process's file-size limit (ulimit -f): raise it or write less"}


class WriteError(CnnlabError):
    """A file could not be written (disk full, read-only, no permission); nothing half-written was left."""


def write_error(path: str | Path, err: OSError) -> WriteError:
    """The one-line error for a failed write to ``path``, naming the file and what to do."""
    fix = FIXES.get(err.errno or 0, f"{err.strerror or type(err).__name__}; check the folder")
    return WriteError(f"{printable(str(path))}: cannot write it ({fix}); nothing of yours was changed")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success fsync it and rename it over ``path``.

    If the body raises, the temporary file is removed and ``path`` is untouched. A write the system
    refuses (disk full, read-only, no permission) is a :class:`WriteError` naming ``path``.
    """
    path = Path(path)
    try:
        with _atomic_path(path) as tmp:
            yield tmp
    except OSError as err:
        raise write_error(path, err) from err


@contextlib.contextmanager
def _atomic_path(path: Path) -> Iterator[Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    tmp = path.parent / temporary_name(path.name)
    # O_EXCL | O_NOFOLLOW: a new file, never an existing one or a link planted under that name
    umask = os.umask(0)
    os.umask(umask)
    mode = path.stat().st_mode & 0o7777 if path.is_file() else 0o666 & ~umask
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    os.close(fd)
    os.chmod(tmp, mode)
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
    """Remove temporaries that cnnlab's own writes into ``path``'s folder left when killed before renaming.

    Only a file that cnnlab can prove it made is removed: its name carries a valid keyed mark
    (:func:`is_cnnlab_temporary`), it is a regular file (not a link: ``lstat``), owned by this user, and
    more than an hour old (a write still running is never that old). Anything else, whatever its name,
    is left alone.
    """
    folder = path.parent.resolve()
    if folder in _SWEPT:
        return
    _SWEPT.add(folder)
    now = time.time()
    for old in folder.glob(f".*.{TMP_TAG}-*"):
        if not is_cnnlab_temporary(old.name):
            continue
        with contextlib.suppress(OSError):
            st = old.lstat()
            if stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid() and now - st.st_mtime > STALE_AFTER_S:
                old.unlink()


def open_in_run(path: str | Path, flags: int = os.O_RDONLY) -> int:
    """``os.open`` of a file inside a run folder that never follows a symbolic link and takes only a regular
    file: a ``.lock``, ``log.txt``, ``metrics.csv`` or weights file planted as a link (which could make cnnlab
    write to, or the page serve, a file elsewhere) or as a FIFO (which would block forever) is refused in one
    line, its target untouched."""
    path = Path(path)
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise CnnlabError(f"{printable(str(path))}: is a symbolic link; cnnlab never reads or writes a run's "
                              f"files through a link (it would reach the link's target): remove it ('rm {path}')"
                              ) from None
        if err.errno == errno.ENXIO:     # a FIFO opened for writing with no reader
            raise CnnlabError(f"{printable(str(path))}: is not a regular file (a FIFO or device); remove it") from None
        if err.errno == errno.ENOENT:
            raise CnnlabError(f"{printable(str(path))}: no such file") from None
        raise CnnlabError(f"{printable(str(path))}: cannot open it ({err.strerror})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise CnnlabError(f"{printable(str(path))}: is not a regular file (a FIFO, device or folder); remove it")
    os.set_blocking(fd, True)
    return fd


def read_run_file(path: str | Path, max_bytes: int) -> bytes:
    """The bytes of a regular file inside a run folder (see :func:`open_in_run`), at most ``max_bytes``."""
    fd = open_in_run(path)
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > max_bytes:
            raise CnnlabError(f"{printable(str(path))}: {size:,} bytes, over the {max_bytes:,} a run's "
                              f"{Path(path).name} can hold; the run folder is damaged")
        return f.read(max_bytes + 1)


def make_folder(path: str | Path, what: str = "--out") -> Path:
    """``path`` as an existing folder (made with its parents when missing), or one line naming it and the fix."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise WriteError(f"{printable(str(path))}: exists and is not a folder; give {what} a folder (new or existing)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise write_error(path, err) from err
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))
