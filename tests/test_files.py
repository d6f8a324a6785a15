"""Atomic writes: the old file survives a failed write; a good write replaces it whole."""

from __future__ import annotations

import pytest

from cnnlab.files import atomic_path, atomic_write_text


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out" / "a.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["a.txt"]


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("precious")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash in the middle")
    assert target.read_text() == "precious"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_new_files_get_the_usual_permissions_and_old_files_keep_theirs(tmp_path):
    import os
    import stat
    umask = os.umask(0o022)
    try:
        new = tmp_path / "new.txt"
        atomic_write_text(new, "x")
        assert stat.S_IMODE(new.stat().st_mode) == 0o644
        old = tmp_path / "old.txt"
        old.write_text("x")
        old.chmod(0o600)
        atomic_write_text(old, "y")
        assert stat.S_IMODE(old.stat().st_mode) == 0o600
    finally:
        os.umask(umask)


def test_a_killed_writes_temporary_is_removed_by_the_next_write_but_a_recent_one_is_not(tmp_path):
    import os
    import time

    from cnnlab.files import STALE_AFTER_S

    target = tmp_path / "metrics.csv"
    stale, recent, other, users = (tmp_path / ".metrics.csv.abc12345.tmp", tmp_path / ".metrics.csv.def45678.tmp",
                                   tmp_path / ".log.txt.k2j3h4g5.tmp", tmp_path / ".notes.tmp")
    for p in (stale, recent, other, users):
        p.write_text("half")
    old = time.time() - STALE_AFTER_S - 60
    for p in (stale, other, users):
        os.utime(p, (old, old))
    atomic_write_text(target, "epoch,acc\n")
    assert target.read_text() == "epoch,acc\n"
    assert not stale.exists() and not other.exists()  # killed writes' leftovers in this folder
    assert recent.exists()                            # a write in progress elsewhere keeps its temporary
    assert users.exists()                             # not named like ours: not ours to remove
