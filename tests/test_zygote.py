"""The tests' zygote (tests/zygote.py) gives what a real ``python -m cnnlab`` gives: the oracle is the real process."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.zygote import run_cnnlab


@pytest.mark.parametrize("argv", [["zoo", "list"], ["nosuch"], ["analyze", "resnet19"],
                                  ["ops", "conv1d", "--input", "1,2,3", "--kernel", "1,0,-1"]])
def test_a_fork_answers_as_a_real_process(argv):
    forked, real = run_cnnlab(*argv), run_cnnlab(*argv, fresh=True)
    assert (forked.returncode, forked.stdout, forked.stderr) == (real.returncode, real.stdout, real.stderr)


def test_working_folder_environment_limits_and_signals_reach_the_child(tmp_path: Path):
    (tmp_path / "net.yaml").write_text("input: [1, 8, 8]\nlayers:\n  - conv: {filters: 4, kernel: 3}\n")
    assert run_cnnlab("analyze", "net.yaml", cwd=tmp_path).returncode == 0       # a relative path, from cwd
    killed = run_cnnlab("train", "--epochs", "1", "--out", str(tmp_path / "run"), "--no-progress",
                        env={**os.environ, "CNNLAB_TEST_SIGKILL_AFTER_STEP": "2"})
    assert killed.returncode == -9 and (tmp_path / "run" / "config.json").is_file()
    # a 1-byte file-size limit: writing the run's first file fails in the child, not here
    p = run_cnnlab("train", "--epochs", "1", "--out", str(tmp_path / "small"), "--no-progress",
                   rlimits=[("RLIMIT_FSIZE", 1, 1)])
    assert p.returncode != 0
    with pytest.raises(subprocess.TimeoutExpired):
        run_cnnlab("train", "--epochs", "50", "--out", str(tmp_path / "slow"), "--no-progress", timeout=1)
    assert not (tmp_path / "slow" / "test.json").exists()                          # killed, not waited for
    assert run_cnnlab("zoo", "list").returncode == 0                               # the zygote goes on


def test_an_import_time_setting_takes_a_real_process(monkeypatch):
    import tests.zygote as zygote

    started = []
    monkeypatch.setattr(zygote, "_real", lambda *a: started.append(a) or subprocess.CompletedProcess([], 0, "", ""))
    run_cnnlab("zoo", "list", env={**os.environ, "OMP_NUM_THREADS": "1"})
    run_cnnlab("zoo", "list", env={**os.environ, "CNNLAB_JOIN_TIMEOUT": "5"})    # read while cnnlab runs: forked
    run_cnnlab("zoo", "list")                       # the zygote was started in another test: still forked
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", os.environ.get("TORCHINDUCTOR_CACHE_DIR", "/tmp/x"))
    run_cnnlab("zoo", "list")        # torch sets it in this process when the inductor loads: still forked
    assert len(started) == 1
    first = zygote._zygote
    monkeypatch.setenv("OMP_NUM_THREADS", "1")      # this process's own environment changed: a new zygote with it
    run_cnnlab("zoo", "list")
    assert len(started) == 1 and zygote._zygote is not first and zygote._zygote.env["OMP_NUM_THREADS"] == "1"


def test_a_hidden_package_cannot_be_imported_and_one_already_imported_cannot_be_hidden():
    p = run_cnnlab("analyze", "small_cnn", "--json", hide=("keras",))
    assert p.returncode == 0
    p = run_cnnlab("zoo", "list", hide=("torch",))
    assert p.returncode == 1 and "cannot be hidden" in p.stderr
