"""``cnnlab train --model model.keras``: fine-tuning from the file's weights, rebuilt from the run alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnlab.train.model import build_model
from tests.helpers import run

keras = pytest.importorskip("keras")


def test_the_network_starts_from_the_files_weights(tiny_keras: Path) -> None:
    """Before training, softmax of the network's logits equals the Keras model's softmax output."""
    model = keras.saving.load_model(tiny_keras, compile=False)
    net, info = build_model(str(tiny_keras), (1, 8, 8), 5)
    assert info["kind"] == "keras" and "softmax is left out" in info["head"]
    x = np.random.default_rng(0).uniform(0, 1, (3, 8, 8, 1)).astype("float32")
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    with torch.no_grad():
        got = torch.softmax(net.eval()(torch.from_numpy(x).permute(0, 3, 1, 2)), 1).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # ten classes: a new last layer of 10 units, the rest the file's
    net10, info10 = build_model(str(tiny_keras), (1, 8, 8), 10)
    assert "new last layer 'dense' for 10 classes (the file's has 5)" in info10["head"]
    assert torch.equal(net10.layers["conv2d"][0].weight, net.layers["conv2d"][0].weight)


@pytest.mark.slow
def test_train_eval_on_digits_and_rebuild_without_the_file(tiny_keras: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    model = tmp_path / "mine.keras"
    shutil.copy(tiny_keras, model)
    out = tmp_path / "run"
    code, _, err = run(capsys, "train", "--model", str(model), "--epochs", "2", "--out", str(out), "--no-progress",
                       "--lr", "0.01")
    assert code == 0, err
    log = (out / "log.txt").read_text()
    assert "new last layer 'dense' for 10 classes (the file's has 5)" in log
    acc = json.loads((out / "test.json").read_text())["test_acc"]
    assert acc > 0.5          # digits, 2 epochs: far above the 10 % of chance
    model.unlink()            # the run rebuilds its network from its own folder
    code, stdout, err = run(capsys, "eval", str(out))
    assert code == 0, err
    assert f"{acc:.4f}" in stdout
