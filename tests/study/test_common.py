"""The honesty rules every study shares: spreads over seeds and when a difference may be claimed."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnlab.errors import CnnlabError
from cnnlab.study.common import pct_spread, spread, verdict


def test_a_difference_is_claimed_only_when_every_seed_is_on_one_side():
    a, b = spread([0.91, 0.92, 0.93]), spread([0.88, 0.89, 0.905])
    assert (verdict(a, b), verdict(b, a)) == ("higher", "lower")
    overlapping = spread([0.80, 0.95, 0.96])          # median above b's, one seed below b's best
    assert verdict(overlapping, b) == "not shown"
    two_seeds = (spread([0.99, 0.99]), spread([0.10, 0.10]))
    assert verdict(*two_seeds) == "not shown"         # fewer than three seeds: never a claim
    assert a["median"] == 0.92 and (a["min"], a["max"]) == (0.91, 0.93)


def test_a_spread_reads_as_median_and_range():
    assert pct_spread(spread([0.9, 0.95, 0.92])) == "92.00 % (90.00–95.00 %, 3 seeds)"
    assert pct_spread(spread([0.9])) == "90.00 %"


def test_a_refused_study_leaves_no_trace_and_a_resumed_one_keeps_its_mark(tmp_path):
    from cnnlab.study.common import STUDY_MARK, study_folder

    def refused(out):
        with pytest.raises(CnnlabError):
            with study_folder(out, "lrn"):
                raise CnnlabError("other settings")

    refused(tmp_path / "new")                         # made by the study, nothing else in it: removed
    assert not (tmp_path / "new").exists()
    with pytest.raises(CnnlabError):                  # made by the study, scenes drawn, then refused: removed
        with study_folder(tmp_path / "drawn", "lrn"):
            (tmp_path / "drawn" / "scenes").mkdir()
            raise CnnlabError("--batch too large")
    assert not (tmp_path / "drawn").exists()
    (tmp_path / "empty").mkdir()
    refused(tmp_path / "empty")                       # the user's empty folder: kept, unmarked
    assert list((tmp_path / "empty").iterdir()) == []
    with study_folder(tmp_path / "done", "lrn"):      # a study that planned: marked
        (tmp_path / "done" / "runs").mkdir()
    refused(tmp_path / "done")                        # refused later (other settings): its runs and mark stay
    assert (tmp_path / "done" / STUDY_MARK).is_file() and (tmp_path / "done" / "runs").is_dir()


def test_a_finished_report_is_not_replaced_by_one_over_fewer_seeds(tmp_path):
    import json

    from cnnlab.study.common import study_folder

    out = tmp_path / "study"
    with study_folder(out, "lrn", (0, 1, 2)):
        (out / "report.json").write_text(json.dumps({"config": {"seeds": [0, 1, 2]}}))
    with pytest.raises(CnnlabError, match=r"report is over seeds 0,1,2; --seeds 0 would replace it.* --seeds 0,1,2"):
        with study_folder(out, "lrn", (0,)):
            raise AssertionError("planning must not start")            # the refusal comes on entering
    for more in ((2, 1, 0), (0, 1, 2, 3)):               # the same seeds in another order, or more: resumed
        with study_folder(out, "lrn", more):
            planned = more
        assert planned == more
    assert (out / "report.json").is_file()


def test_a_study_trains_each_run_quietly_and_says_one_line_for_it(tmp_path, capsys):
    from cnnlab.study.common import run_all
    from cnnlab.train.config import TrainConfig

    runs = {f"small-s{s}": TrainConfig(data="digits", epochs=2, batch=64, train_size=128, seed=s,
                                       out=str(tmp_path / f"small-s{s}")) for s in (0, 1)}
    run_all(runs, progress=False, desc="mystudy")
    err = capsys.readouterr().err.splitlines()
    assert [line.split(" trained in ")[0] for line in err] == ["mystudy: run 1 of 2 (small-s0)",
                                                                 "mystudy: run 2 of 2 (small-s1)"]
    for key in runs:                                    # what the run would have said is in its log
        log = (tmp_path / key / "log.txt").read_text()
        assert "epoch 1: val acc" in log and "epoch 2: val acc" in log
    run_all(runs, progress=False, desc="mystudy")       # finished: nothing trained, nothing said
    assert capsys.readouterr().err == ""


def _probe(tc, resume, threads):
    """A stand-in for training a run, in a worker: its process id and torch threads; each leaves a mark, 'fail'
    fails after 3 s and 'slow' takes 30 s."""
    import os
    import time

    import torch

    Path(tc.out).mkdir(parents=True, exist_ok=True)
    (Path(tc.out) / "ran").write_text("")
    if tc.name == "fail":
        time.sleep(3)                                  # the other worker has started its run by then
        raise CnnlabError(f"{tc.out}: cannot be trained")
    if tc.name == "slow":
        time.sleep(30)
    torch.set_num_threads(threads)
    (Path(tc.out) / "finished").write_text("")
    return os.getpid(), torch.get_num_threads()


def test_parallel_runs_are_other_processes_on_their_thread_share_and_a_failure_stops_them_all(tmp_path):
    import os
    from types import SimpleNamespace

    from cnnlab.study.common import _train_parallel, thread_share

    def pending(*names):
        return [(n, SimpleNamespace(name=n.rstrip("0123456789"), out=str(tmp_path / n)), None) for n in names]

    seen = {}
    _train_parallel(pending("a", "b", "c"), 2, lambda n, key, result, resume: seen.update({key: result}),
                    work=_probe)
    assert sorted(seen) == ["a", "b", "c"]
    assert os.getpid() not in {pid for pid, _ in seen.values()} and len({pid for pid, _ in seen.values()}) <= 2
    assert {threads for _, threads in seen.values()} == {thread_share(2)}
    with pytest.raises(CnnlabError, match="fail: cannot be trained"):
        _train_parallel(pending("fail", "slow1", "slow2", "last"), 2, lambda *a: None, work=_probe)
    assert not (tmp_path / "last" / "ran").exists()       # never started, and the slow ones stopped, not waited for
    assert (tmp_path / "slow1" / "ran").exists() and not (tmp_path / "slow1" / "finished").exists()


def test_runs_trained_two_at_a_time_are_the_runs_trained_alone_on_their_thread_share(tmp_path, capsys):
    """workers=2: each run in its own process on 1 of the 2 torch threads. Oracle: the same run trained here, alone,
    on 1 thread — the same weights (deterministic on CPU); a run that fails says why in this process."""
    import torch
    from safetensors.torch import load_file

    from cnnlab.study.common import _train_quietly, parallel_note, run_all, trained_how
    from cnnlab.train.config import TrainConfig

    said_keys = ("small-s0", "small-s1")

    def runs(folder: Path, data: str = "digits") -> dict:
        return {f"small-s{s}": TrainConfig(data=data, epochs=1, batch=64, train_size=128, seed=s,
                                           out=str(folder / f"small-s{s}")) for s in (0, 1)}

    threads = torch.get_num_threads()
    try:
        run_all(runs(tmp_path / "parallel"), progress=False, desc="mystudy", workers=2, record=tmp_path / "how.json")
        said = sorted(line.split(" trained in ")[0].split(" (")[1] for line in capsys.readouterr().err.splitlines())
        assert said == ["small-s0)", "small-s1)"]
        share = max(1, threads // 2)
        assert trained_how(tmp_path / "how.json") == {k: {"at_a_time": 2, "threads": share} for k in said_keys}
        note = parallel_note(trained_how(tmp_path / "how.json"))
        assert note.startswith(f"2 runs trained up to 2 at a time, on {share} torch thread")
        alone = runs(tmp_path / "alone")["small-s1"]
        _train_quietly(alone, None, threads=max(1, threads // 2))
    finally:
        torch.set_num_threads(threads)
    a, b = (load_file(tmp_path / f / "small-s1" / "model.safetensors") for f in ("parallel", "alone"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(CnnlabError, match="no-such-folder"):
        run_all(runs(tmp_path / "bad", str(tmp_path / "no-such-folder")), progress=False, workers=2)
