"""The task-agnostic engine: schedule, parameter groups, prefetching, extension, the folder lock, a second task."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.optim import param_groups
from cnnlab.train import TrainConfig, Trainer, train
from cnnlab.train import engine as engine_module
from cnnlab.train.schedule import make_scheduler
from cnnlab.train.tasks import TASKS, Task
from tests.helpers import SMALL, same, torchrun_env, weights


@pytest.mark.parametrize("epochs,steps", [(3, 7), (15, 421), (1, 2), (2, 1)])
def test_the_schedule_is_pytorchs_one_cycle(epochs, steps):
    """Oracle: torch.optim.lr_scheduler.OneCycleLR (cos, pct_start 0.15, momentum not cycled)."""
    p = torch.nn.Parameter(torch.zeros(1))
    o_ref, o_ours = torch.optim.AdamW([p], lr=2e-3), torch.optim.AdamW([p], lr=2e-3)
    ref = torch.optim.lr_scheduler.OneCycleLR(o_ref, max_lr=2e-3, total_steps=epochs * steps, pct_start=0.15,
                                              cycle_momentum=False)
    ours = make_scheduler(o_ours, epochs, [], steps, 0.15)
    for i in range(epochs * steps):
        assert o_ours.param_groups[0]["lr"] == pytest.approx(o_ref.param_groups[0]["lr"], rel=1e-12, abs=1e-18)
        o_ref.step()
        o_ours.step()
        if i + 1 < epochs * steps:
            ref.step()
        ours.step()


def test_an_extension_starts_a_new_one_cycle_segment():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = make_scheduler(opt, 5, [3], 4, 0.25)     # 3 epochs, then 2 more, 4 steps each
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(1 / 25) and lrs[12] == pytest.approx(1 / 25)   # both segments warm up
    assert max(lrs[:12]) == pytest.approx(1.0) and max(lrs[12:]) == pytest.approx(1.0)
    assert lrs[11] < 1e-3 and lrs[19] < 1e-3                                      # and both decay


def test_weight_decay_only_on_weights_of_two_or_more_dimensions():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    decay, no_decay = param_groups(net, 0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert {id(p) for p in decay["params"]} == {id(net[0].weight), id(net[3].weight)}
    assert {id(p) for p in no_decay["params"]} == {id(net[0].bias), id(net[1].weight), id(net[1].bias),
                                                   id(net[3].bias)}


def test_prefetching_does_not_change_the_weights(tmp_path, monkeypatch):
    """Batches made in a thread (CUDA's way) or in line (CPU's) give the same weights."""
    cfg = dict(model=SMALL, epochs=1, batch=64, augment="strong", seed=2)
    a = train(TrainConfig(**cfg, out=str(tmp_path / "a")), progress=False)
    real, asked = engine_module.prefetch, []

    def the_other_way(make, steps, ahead):
        asked.append(ahead)
        return real(make, steps, not ahead)
    monkeypatch.setattr(engine_module, "prefetch", the_other_way)
    b = train(TrainConfig(**cfg, out=str(tmp_path / "b")), progress=False)
    assert asked == [False]            # on a CPU the engine makes batches between steps
    assert same(weights(a), weights(b))


def test_a_finished_run_is_extended_with_more_epochs(tmp_path):
    run = train(TrainConfig(model=SMALL, epochs=2, out=str(tmp_path / "r")), progress=False)
    with pytest.raises(CnnlabError, match="the run is complete"):
        train(TrainConfig(), resume=run, progress=False)
    with pytest.raises(CnnlabError, match="can only be extended"):
        train(TrainConfig(), resume=run, progress=False, epochs=1)
    train(TrainConfig(), resume=run, progress=False, epochs=3)
    doc = json.loads((run / "config.json").read_text())
    assert doc["config"]["epochs"] == 3 and doc["config"]["segments"] == [2]
    assert (run / "metrics.csv").read_text().strip().splitlines()[-1].startswith("3,")
    assert "extended to 3 epochs" in (run / "log.txt").read_text()


def test_a_folder_in_use_is_refused_and_released_after(tmp_path):
    import subprocess
    import sys

    folder = tmp_path / "r"
    folder.mkdir()
    holder = ("import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR); "
              "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)")
    owner = subprocess.Popen([sys.executable, "-c", holder, str(folder / engine_module.LOCK)], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert owner.stdout.readline().strip() == "locked"          # another live run holds the folder
        with pytest.raises(CnnlabError, match="another cnnlab train is using this folder"):
            train(TrainConfig(model=SMALL, epochs=1, out=str(folder)), progress=False)
    finally:
        owner.kill()
        owner.wait()
    assert sorted(p.name for p in folder.iterdir()) == [engine_module.LOCK]   # nothing written
    train(TrainConfig(model=SMALL, epochs=1, out=str(folder)), progress=False)   # the dead holder's lock is gone
    assert (folder / "test.json").is_file()


def test_two_runs_into_one_folder_at_once_one_wins_and_the_other_says_so(tmp_path):
    """Real concurrent processes (issue 18's lost run): exactly one run is written, the other exits 2."""
    import subprocess
    import sys

    argv = [sys.executable, "-m", "cnnlab", "train", "--model", SMALL, "--epochs", "1", "--no-progress", "--out",
            str(tmp_path / "r")]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert loser.strip().splitlines()[-1].startswith("cnnlab: error:") and "already holds a run" in loser or \
        "another cnnlab train" in loser
    assert json.loads((tmp_path / "r" / "test.json").read_text())["test_acc"] > 0.5
    assert (tmp_path / "r" / "log.txt").read_text().count("task classification") == 1


def test_a_run_stopped_after_its_last_checkpoint_only_writes_its_test_report(tmp_path):
    run = train(TrainConfig(model=SMALL, epochs=1, out=str(tmp_path / "r")), progress=False)
    (run / "test.json").unlink()                        # as if killed between the last checkpoint and the report
    train(TrainConfig(), resume=run, progress=False)
    assert json.loads((run / "test.json").read_text())["test_acc"] > 0.5


class MeanBrightness(Task):
    """A task the engine was not written for: regress each digit image's mean brightness."""

    name, metric, monitor = "mean-brightness", "mae", "val_neg_mae"

    def load_data(self) -> Any:
        from cnnlab.data import load_data

        return load_data("digits", seed=self.cfg.seed)

    def describe_data(self, data: Any) -> dict[str, Any]:
        return {"name": data.name, "shape": list(data.shape),
                "sizes": {"train": len(data.train), "val": len(data.val), "test": len(data.test)}}

    def build_model(self, data: Any, saved: dict[str, Any] | None = None) -> tuple[nn.Module, dict[str, Any]]:
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 1)), {"kind": "custom", "name": "linear"}

    def rebuild_model(self, doc: dict[str, Any]) -> nn.Module:
        return self.build_model(None)[0]

    def _xy(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = images.float() / 255
        return x, x.mean(dim=(1, 2, 3)).unsqueeze(1)

    def batch(self, split: Any, indices: torch.Tensor, rows: slice, generator: torch.Generator) -> Any:
        return self._xy(split.images[indices[rows]])

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(outputs, targets)

    def step_stats(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        return {"abs": float((outputs.detach() - targets).abs().sum())}

    def train_metrics(self, sums: dict[str, float], seen: float) -> dict[str, float]:
        return {"train_mae": sums["abs"] / seen}

    @torch.no_grad()
    def validate(self, model: nn.Module, split: Any, device: str) -> dict[str, float]:
        x, y = self._xy(split.images)
        mae = float((model(x) - y).abs().mean())
        return {"val_loss": float(F.mse_loss(model(x), y)), "val_mae": mae, "val_neg_mae": -mae}

    def test_report(self, folder: Path, model: nn.Module, data: Any, device: str, history: list) -> dict[str, Any]:
        report = {"test_mae": -self.validate(model, data.test, device)["val_neg_mae"]}
        (folder / "test.json").write_text(json.dumps(report))
        return report

    def summary(self, report: dict[str, Any]) -> str:
        return f"test MAE {report['test_mae']:.4f}"


def test_another_task_runs_through_the_same_engine(tmp_path, monkeypatch):
    monkeypatch.setitem(TASKS, MeanBrightness.name, MeanBrightness)
    cfg = TrainConfig(task="mean-brightness", epochs=20, batch=32, lr=0.03, optimizer="adam", weight_decay=0.0,
                      out=str(tmp_path / "r"))
    trainer = Trainer(cfg, progress=False)
    folder = trainer.run()
    rows = (folder / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,train_loss,train_mae,val_loss,val_mae,val_neg_mae,lr")
    data = trainer.data
    baseline = float((data.test.images.float().mean(dim=(1, 2, 3)) / 255
                      - data.train.images.float().mean() / 255).abs().mean())   # predict the training mean
    assert json.loads((folder / "test.json").read_text())["test_mae"] < baseline / 2


def test_weights_that_turn_nan_stop_the_run_before_they_are_saved(tmp_path, monkeypatch):
    real = Trainer.train_one_epoch

    def poisoned(self, epoch, bar=None):  # type: ignore[no-untyped-def]
        real(self, epoch, bar)
        if epoch == 1:
            with torch.no_grad():
                next(self.model.parameters()).view(-1)[0] = float("nan")

    monkeypatch.setattr(Trainer, "train_one_epoch", poisoned)
    with pytest.raises(CnnlabError, match="after epoch 2 tensor .* NaN or infinite values: the training diverged"):
        train(TrainConfig(model=SMALL, epochs=3, out=str(tmp_path / "r")), progress=False)
    from cnnlab.train.checkpoint import load_weights
    from cnnlab.train.model import build_model

    net, _ = build_model(SMALL, (1, 8, 8), 10)
    assert load_weights(tmp_path / "r" / "model.safetensors", net)["epoch"] == 1     # epoch 1's, still loadable


def test_checkpointing_trains_the_same_weights_and_running_statistics(tmp_path):
    """``--checkpointing`` only trades memory for recomputation: with dropout and batch norm (whose recomputed
    forward must not update the running statistics a second time) the run ends with the plain run's tensors."""
    cfg = dict(model="small_cnn", epochs=1, batch=64, augment="flip", seed=3, precision="fp32")
    plain = train(TrainConfig(**cfg, out=str(tmp_path / "plain")), progress=False)
    ck = train(TrainConfig(**cfg, checkpointing=True, out=str(tmp_path / "ck")), progress=False)
    a, b = weights(plain), weights(ck)
    assert any("running_mean" in k for k in a) and a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=k)
    assert "activation checkpointing: model (19 layers in 4 segments)" in (tmp_path / "ck" / "log.txt").read_text()
    assert json.loads((tmp_path / "ck" / "config.json").read_text())["config"]["checkpointing"] is True


def test_checkpointing_a_network_without_blocks_is_one_clear_error(tmp_path, write_spec):
    spec = write_spec("input: [1, 8, 8]\nlayers:\n  - flatten\n  - dense: {units: 10}\n")
    with pytest.raises(CnnlabError, match="--checkpointing: cnnlab finds no blocks to checkpoint"):
        train(TrainConfig(model=str(spec), epochs=1, checkpointing=True, out=str(tmp_path / "r")), progress=False)


LEAVER = """
import atexit, os, sys, torch, torch.distributed as tdist
out = open(sys.argv[1] + "/rank" + os.environ["RANK"], "w")       # one file each: the two stdouts interleave
atexit.register(lambda: out.write("left" if not tdist.is_initialized() else "still joined") and out.close())
from cnnlab.train.engine import dist_setup
d = dist_setup("cpu")
t = torch.ones(3)
tdist.all_reduce(t)
out.write(f"sum {int(t[0])} world {d.world}; ")
"""


def test_a_joined_process_leaves_the_group_before_the_interpreter_ends(tmp_path):
    """Gloo's threads left to interpreter shutdown abort the process now and then (pytorch/pytorch#190489):
    the group must be destroyed at exit. Oracle: torch.distributed.is_initialized seen by a hook that runs after
    cnnlab's (atexit is last in, first out, and this one is registered first)."""
    script = tmp_path / "leaver.py"
    script.write_text(LEAVER)
    torchrun = [sys.executable, "-m", "torch.distributed.run"]      # torchrun itself, always beside torch
    p = subprocess.run([*torchrun, "--standalone", "--nproc-per-node", "2", str(script), str(tmp_path)], capture_output=True,
                       text=True, env=torchrun_env(tmp_path), timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    for rank in (0, 1):
        assert (tmp_path / f"rank{rank}").read_text() == "sum 2 world 2; left"
