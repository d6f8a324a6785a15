"""Atomic writes: the old file survives a failed write; a good write replaces it whole."""

from __future__ import annotations

import pytest

from cnnlab.files import atomic_path, atomic_write_bytes, atomic_write_text


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

    from cnnlab.files import STALE_AFTER_S, temporary_name

    target = tmp_path / "metrics.csv"
    stale, recent, other = (tmp_path / temporary_name("metrics.csv"), tmp_path / temporary_name("metrics.csv"),
                            tmp_path / temporary_name("log.txt"))
    for p in (stale, recent, other):
        p.write_text("half")
    old = time.time() - STALE_AFTER_S - 60
    for p in (stale, other):
        os.utime(p, (old, old))
    atomic_write_text(target, "epoch,acc\n")
    assert target.read_text() == "epoch,acc\n"
    assert not stale.exists() and not other.exists()  # killed writes' leftovers in this folder
    assert recent.exists()                            # a write in progress elsewhere keeps its temporary


USERS_OWN = [".thesis.20240101.tmp", ".report.backup01.tmp", ".metrics.csv.abc12345.tmp", ".notes.tmp",
             # cnnlab's pattern with a wrong mark (typed by hand, or a temporary renamed): not provably ours
             ".metrics.csv.cnnlab-tmp-0123456789ab-00000000", ".grid.png.cnnlab-tmp-0123456789ab-deadbeef"]


def test_the_sweep_never_removes_a_file_cnnlab_cannot_prove_it_made(tmp_path):
    """The issue's case: a user's '.thesis.20240101.tmp' beside --out was deleted. Old files of every user-like
    name, a link named like a genuine temporary, and its target all survive, byte for byte."""
    import os
    import time

    from cnnlab.files import STALE_AFTER_S, temporary_name

    target = tmp_path / "grid.png"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    victim = outside / "precious.txt"
    victim.write_bytes(b"user data")
    link = tmp_path / temporary_name("grid.png")
    link.symlink_to(victim)
    old = time.time() - 10 * STALE_AFTER_S
    for name in USERS_OWN:
        (tmp_path / name).write_bytes(name.encode())
        os.utime(tmp_path / name, (old, old))
    os.utime(link, (old, old), follow_symlinks=False)
    atomic_write_bytes(target, b"png")
    for name in USERS_OWN:
        assert (tmp_path / name).read_bytes() == name.encode(), name
    assert link.is_symlink() and victim.read_bytes() == b"user data"


def test_temporary_names_carry_a_mark_a_copy_cannot_keep():
    from cnnlab.files import is_cnnlab_temporary, temporary_name

    name = temporary_name("model.safetensors")
    assert is_cnnlab_temporary(name)
    assert not is_cnnlab_temporary(name.replace(".model.", ".other."))   # the mark covers the target's name
    assert not is_cnnlab_temporary(name[:-1] + ("0" if name[-1] != "0" else "1"))
