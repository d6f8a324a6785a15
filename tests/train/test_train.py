"""Training runs: determinism, crash-safe resume after SIGKILL, safe checkpoints, torchrun/DDP, the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from cnnlab.cli.main import main
from cnnlab.errors import CnnlabError
from cnnlab.train.checkpoint import CheckpointError, load_state
from cnnlab.train import KILL_HOOK, TrainConfig, train
from tests.helpers import SMALL, TINY, make_folder, same, torchrun_env, weights
from tests.zygote import run_cnnlab



def test_same_seed_same_weights_and_the_run_folder(tmp_path):
    cfg = dict(model=SMALL, epochs=2, batch=64, augment="basic", seed=5)
    a = train(TrainConfig(**cfg, out=str(tmp_path / "a")), progress=False)
    b = train(TrainConfig(**cfg, out=str(tmp_path / "b")), progress=False)
    assert same(weights(a), weights(b))
    for name in ("config.json", "metrics.csv", "model.safetensors", "last.safetensors", "state.safetensors",
                 "curves.png", "confusion.png", "log.txt", "test.json"):
        assert (a / name).is_file(), name
    rows = (a / "metrics.csv").read_text().strip().splitlines()
    assert rows[0].startswith("epoch,train_loss") and len(rows) == 3
    assert json.loads((a / "test.json").read_text())["test_acc"] > 0.5


def test_sigkill_mid_epoch_then_resume_gives_the_uninterrupted_weights(tmp_path):
    common = ["train", "--model", SMALL, "--epochs", "2", "--batch", "64", "--augment", "strong",
              "--checkpoint-every", "7", "--no-progress"]
    ref = run_cnnlab(*common, "--out", str(tmp_path / "ref"), fresh=True)   # an interpreter of its own
    assert ref.returncode == 0, ref.stderr
    assert "epoch 1/2: val acc" in ref.stderr and "epoch 2/2: val acc" in ref.stderr   # quiet, not silent
    listed = ref.stdout.rsplit("run folder:", 1)[1]
    assert all(p.name in listed for p in (tmp_path / "ref").iterdir() if not p.name.startswith("."))   # every file
    env = {**os.environ, KILL_HOOK: "25"}       # epoch 2 of 20 steps each, 4 steps after the checkpoint at 21
    killed = run_cnnlab(*common, "--out", str(tmp_path / "run"), env=env)
    assert killed.returncode == -9                # really SIGKILLed
    assert not (tmp_path / "run" / "test.json").exists()
    resumed = run_cnnlab("train", "--resume", str(tmp_path / "run"), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed at epoch 2, step 1" in (tmp_path / "run" / "log.txt").read_text()
    assert same(weights(tmp_path / "ref"), weights(tmp_path / "run"))


def test_a_corrupted_checkpoint_is_a_clear_error_and_is_left_as_it_was(tmp_path):
    run = train(TrainConfig(model=SMALL, epochs=1, out=str(tmp_path / "r")), progress=False)
    state = run / "state.safetensors"
    raw = state.read_bytes()
    state.write_bytes(raw[: len(raw) // 2])
    before = state.read_bytes()
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        train(TrainConfig(), resume=run, progress=False)
    assert state.read_bytes() == before
    model = torch.nn.Linear(2, 2)
    with pytest.raises(CheckpointError):
        load_state(state, model, torch.optim.SGD(model.parameters(), lr=0.1), None)


def test_resuming_a_finished_run_says_so_and_touches_nothing(tmp_path, capsys):
    run = train(TrainConfig(model=SMALL, epochs=1, out=str(tmp_path / "r")), progress=False)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "the run is complete (1 of 1 epochs" in err and "--epochs" in err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_an_existing_run_is_never_overwritten_and_resume_needs_a_run(tmp_path):
    run = train(TrainConfig(model=SMALL, epochs=1, out=str(tmp_path / "r")), progress=False)
    before = (run / "model.safetensors").read_bytes()
    with pytest.raises(CnnlabError, match="already holds a run"):
        train(TrainConfig(model=SMALL, epochs=1, out=str(run)), progress=False)
    assert (run / "model.safetensors").read_bytes() == before
    with pytest.raises(CnnlabError, match="not a cnnlab run folder"):
        train(TrainConfig(), resume=tmp_path, progress=False)


@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None,
                    reason="torchrun not installed next to this Python")
def test_torchrun_two_processes_match_one_process(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    # float32: DDP equals one process to rounding; bfloat16 products (the default on a CPU that has them) round
    # differently once the batch is split across processes and threads
    args = ["train", "--model", str(spec), "--epochs", "2", "--batch", "32", "--precision", "fp32", "--no-progress"]
    one = run_cnnlab(*args, "--out", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr
    torchrun = str(Path(sys.executable).parent / "torchrun")
    two = subprocess.run([torchrun, "--nproc-per-node", "2", "-m", "cnnlab", *args, "--out", str(tmp_path / "two")],
                         capture_output=True, text=True, env=torchrun_env(tmp_path))
    assert two.returncode == 0, two.stderr[-3000:]
    assert same(weights(tmp_path / "one"), weights(tmp_path / "two"), atol=1e-5)
    assert (tmp_path / "two" / "log.txt").read_text().count("epoch 2:") == 1     # only rank 0 writes


def test_eval_and_predict(tmp_path, capsys):
    """eval and predict against an independent evaluation: the weights file read directly, sklearn's metrics."""
    from safetensors.torch import load_file
    from sklearn.metrics import confusion_matrix, precision_score, recall_score

    from cnnlab.data import load_data
    from cnnlab.train.model import build_model

    run = train(TrainConfig(model=SMALL, epochs=2, out=str(tmp_path / "r")), progress=False)
    assert main(["eval", str(run), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    cfg = json.loads((run / "config.json").read_text())
    net, _ = build_model(SMALL, tuple(cfg["data"]["shape"]), 10)
    net.load_state_dict(load_file(run / "model.safetensors"))
    net.eval()
    mean = torch.tensor(cfg["data"]["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(cfg["data"]["std"]).view(1, -1, 1, 1)
    test = load_data("digits", seed=0).test
    with torch.no_grad():
        pred = net((test.images.float() / 255 - mean) / std).argmax(1)
    y, p = test.labels.numpy(), pred.numpy()
    assert doc["confusion"] == confusion_matrix(y, p, labels=range(10)).tolist()    # rows: true classes
    assert doc["precision"] == pytest.approx(precision_score(y, p, average=None, labels=range(10), zero_division=0))
    assert doc["recall"] == pytest.approx(recall_score(y, p, average=None, labels=range(10), zero_division=0))
    assert doc["accuracy"] == pytest.approx((y == p).mean())

    img = tmp_path / "seven.png"
    pixels = test.images[0, 0].numpy()
    Image.fromarray(pixels, "L").save(img)
    bad = tmp_path / "bad.png"
    bad.write_text("nope")
    assert main(["predict", str(run), str(img), str(bad), "--top", "2", "--json"]) == 1   # one of two unreadable
    out, err = capsys.readouterr()
    doc = json.loads(out)
    with torch.no_grad():
        prob = torch.softmax(net((test.images[:1].float() / 255 - mean) / std), 1)[0]
    top = prob.topk(2)
    got = doc["predictions"][0]["top"]
    assert [t["class"] for t in got] == [cfg["data"]["classes"][int(i)] for i in top.indices]
    assert [t["probability"] for t in got] == pytest.approx(top.values.tolist(), abs=1e-6)
    assert doc["failed"][0]["image"] == str(bad)
    assert err.count("\n") == 1 and err.startswith(f"cnnlab: error: {bad}: ") and err.count(str(bad)) == 1, err
    assert "the other images were predicted" in err
    assert main(["predict", str(run), str(bad)]) == 2                        # nothing could be read
    assert main(["predict", str(run), str(img)]) == 0


def test_augment_preview_writes_a_png(tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["augment", "preview", "--data", "digits", "--preset", "strong", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv, needle", [
    (["train", "--model", "nosuchnet"], "nosuchnet"),
    (["train", "--data", "cifar"], "unknown data set 'cifar'"),
    (["train", "--model", "lenet5"], "--size 32,32"),
    (["train", "--lr", "-1"], "--lr must be in"),
    (["train", "--val-fraction", "2"], "between 0 and 1"),
    (["train", "--seed", "200000000000000"], "--seed must be between 0 and 4294967295"),
    (["train", "--device", "cuda"], None),
    (["eval", "/nonexistent-run"], "not a cnnlab run folder"),
])
def test_bad_input_is_one_line_exit_2(argv, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code = main([*argv, "--out", str(tmp_path / "o")] if argv[0] == "train" else argv)
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert needle is None or needle in err
    assert not (tmp_path / "o" / "model.safetensors").exists()


def test_the_default_run_folder_never_collides(tmp_path):
    from cnnlab.cli.engine import _fresh_folder

    base = tmp_path / "runs" / "small_cnn-digits"
    assert _fresh_folder(str(base)) == str(base)
    base.mkdir(parents=True)
    (base / "config.json").write_text("{}")
    assert _fresh_folder(str(base)) == f"{base}-2"


def test_a_quiet_run_still_says_that_files_were_left_out(tmp_path, capsys):
    from cnnlab.train.config import TrainConfig
    from cnnlab.train.engine import Trainer

    make_folder(tmp_path / "imgs", classes=("cat", "dog"), per_class=12, size=(8, 8), mode="L")
    cfg = dict(model=str(_tiny_spec(tmp_path)), data=str(tmp_path / "imgs"), epochs=1, batch=4)
    Trainer(TrainConfig(**cfg, out=str(tmp_path / "a")), progress=False, quiet=True).run()
    assert capsys.readouterr().err == ""                     # nothing to warn about: silent
    (tmp_path / "imgs" / "cat" / "broken.png").write_bytes(b"not a png")
    Trainer(TrainConfig(**cfg, out=str(tmp_path / "b")), progress=False, quiet=True).run()
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "1 left out (listed in log.txt)" in err[0]


def test_the_console_names_skipped_images_and_eval_labels_the_confusion_matrix(tmp_path, capsys):

    make_folder(tmp_path / "imgs", classes=("cat", "dog"), per_class=12, size=(8, 8), mode="L")
    (tmp_path / "imgs" / "cat" / "broken.png").write_bytes(b"not a png")
    assert main(["train", "--model", str(_tiny_spec(tmp_path)), "--data", str(tmp_path / "imgs"), "--epochs", "1",
                 "--batch", "4", "--no-progress", "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "skipped 1 unreadable or missing image" in out and "log.txt" in out
    assert main(["eval", str(tmp_path / "r")]) == 0
    rows = capsys.readouterr().out.split("confusion matrix")[1].splitlines()
    assert any(" cat " in r for r in rows) and any(" dog " in r for r in rows)


def _tiny_spec(tmp_path: Path) -> Path:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    return spec


@pytest.mark.parametrize("name", ["model.safetensors", "state.safetensors"])
def test_a_flipped_byte_a_relabelled_dtype_or_nan_weights_are_refused(tmp_path, name, capsys):
    """Checksums written with every file: silent corruption becomes a one-line error naming the file."""
    import struct

    run = train(TrainConfig(model=SMALL, epochs=1, out=str(tmp_path / "r")), progress=False)
    capsys.readouterr()
    path = run / name
    good = path.read_bytes()
    header_len = struct.unpack("<Q", good[:8])[0]
    flipped = bytearray(good)
    flipped[8 + header_len + 100] ^= 0x01                      # one bit inside the tensor data
    relabelled = good.replace(b'"dtype":"F32"', b'"dtype":"I32"', 1)
    assert relabelled != good
    argv = ["eval", str(run)] if name == "model.safetensors" else ["train", "--resume", str(run), "--epochs", "2"]
    for damaged in (bytes(flipped), relabelled):
        path.write_bytes(damaged)
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.splitlines() == [err] and str(path) in err
        assert path.read_bytes() == damaged                   # left as it was
    path.write_bytes(good)
    assert main(["eval", str(run), "--json"]) == 0
    capsys.readouterr()


def test_nan_weights_are_refused(tmp_path):
    from cnnlab.train.checkpoint import load_weights, save_weights

    net = torch.nn.Linear(3, 2)
    with torch.no_grad():
        net.weight[0, 0] = float("nan")
    save_weights(tmp_path / "w.safetensors", net)
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        load_weights(tmp_path / "w.safetensors", torch.nn.Linear(3, 2))


def test_a_run_killed_before_its_first_checkpoint_resumes_from_the_start(tmp_path):
    common = ["train", "--model", SMALL, "--epochs", "1", "--batch", "64", "--no-progress"]
    ref = run_cnnlab(*common, "--out", str(tmp_path / "ref"), fresh=True)   # an interpreter of its own
    assert ref.returncode == 0, ref.stderr
    killed = run_cnnlab(*common, "--out", str(tmp_path / "run"), env={**os.environ, KILL_HOOK: "3"})
    assert killed.returncode == -9 and not (tmp_path / "run" / "state.safetensors").exists()
    resumed = run_cnnlab("train", "--resume", str(tmp_path / "run"), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    log = (tmp_path / "run" / "log.txt").read_text()
    assert "no checkpoint was written before the run stopped: starting again from step 0" in log
    assert (tmp_path / "run" / "config.json").is_file() and (tmp_path / "run" / "test.json").is_file()
    assert same(weights(tmp_path / "ref"), weights(tmp_path / "run"))


def test_eval_json_has_null_not_nan_for_a_class_never_predicted(tmp_path, capsys, monkeypatch):
    from cnnlab.train.tasks import classification

    run = train(TrainConfig(model=SMALL, epochs=1, out=str(tmp_path / "r")), progress=False)
    real = classification.evaluate

    def only_zeros(model, split, *args, **kwargs):   # a model that always answers class 0
        loss, _, preds = real(model, split, *args, **kwargs)
        zeros = torch.zeros_like(preds)
        return loss, float((zeros == split.labels).float().mean()), zeros

    monkeypatch.setattr(classification, "evaluate", only_zeros)
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0

    def no_nan(token: str) -> None:
        raise AssertionError(f"invalid JSON constant {token}")

    doc = json.loads(capsys.readouterr().out, parse_constant=no_nan)
    assert doc["precision"][1] is None and doc["recall"][1] == 0.0 and doc["precision"][0] is not None


def test_an_out_that_is_a_file_is_one_line_and_untouched(tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    assert main(["train", "--out", str(target), "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and "is a file, not a folder" in err and target.read_text() == "mine"


def test_mirror_tta_averages_the_probabilities_of_an_image_and_its_mirror_image():
    from cnnlab.train.tasks.classification import class_log_probs

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 5, 3)).eval()
    x = torch.randn(5, 1, 8, 7)
    plain = class_log_probs(model, x)
    with torch.no_grad():                                   # the arithmetic by hand: a mean of two softmaxes
        by_hand = (model(x).softmax(1) + model(torch.flip(x, dims=[3])).softmax(1)) / 2
    assert torch.allclose(class_log_probs(model, x, "flip").exp(), by_hand, atol=1e-6)
    assert not torch.allclose(plain.exp(), by_hand, atol=1e-3)           # the model is not mirror-symmetric
    # mirroring the input cannot change a mirror-averaged prediction (a flip along the wrong axis would)
    assert torch.allclose(class_log_probs(model, x, "flip"), class_log_probs(model, x.flip(-1), "flip"), atol=1e-6)


def test_tta_flip_in_train_and_eval_and_refused_for_digits(tmp_path, capsys):

    make_folder(tmp_path / "imgs", classes=("cat", "dog"), per_class=12, size=(8, 8), mode="L")
    assert main(["train", "--model", str(_tiny_spec(tmp_path)), "--data", str(tmp_path / "imgs"), "--epochs", "1",
                 "--batch", "4", "--no-progress", "--tta", "flip", "--out", str(tmp_path / "r")]) == 0
    assert "mirror-image test-time augmentation" in capsys.readouterr().out
    report = json.loads((tmp_path / "r" / "test.json").read_text())
    assert report["tta"] == "flip"
    assert main(["eval", str(tmp_path / "r"), "--json"]) == 0                  # the run's own TTA by default
    flip = json.loads(capsys.readouterr().out)
    assert flip["tta"] == "flip" and flip["accuracy"] == report["test_acc"] and flip["loss"] == pytest.approx(
        report["test_loss"])
    assert main(["eval", str(tmp_path / "r"), "--json", "--tta", "none"]) == 0
    assert json.loads(capsys.readouterr().out)["tta"] == "none"
    assert main(["train", "--epochs", "1", "--tta", "flip", "--no-progress", "--out", str(tmp_path / "d")]) == 2
    assert "the classes of digits change when mirrored" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
