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
