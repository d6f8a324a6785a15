"""open_run: the one way a saved run is reopened — its network and weights, its data, its predictions."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from cnnlab.errors import CnnlabError
from cnnlab.train.runs import open_run
from tests.zygote import run_cnnlab


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("runs") / "digits"
    run_cnnlab("train", "--epochs", "2", "--out", str(folder), "--no-progress", timeout=300).check_returncode()
    return folder


def test_the_network_carries_the_runs_best_weights(run_folder):
    run = open_run(run_folder)
    saved = load_file(str(run_folder / "model.safetensors"))
    assert run.task_name == "classification" and not run.model.training
    assert all(torch.equal(v, saved[k]) for k, v in run.model.state_dict().items())
    images = torch.randint(0, 256, (2, *run.shape), dtype=torch.uint8)
    manual = (images.float() / 255 - torch.tensor(run.doc["data"]["mean"]).view(1, -1, 1, 1)) \
        / torch.tensor(run.doc["data"]["std"]).view(1, -1, 1, 1)
    assert torch.allclose(run.normalise(images), manual)


def test_a_command_for_another_kind_of_run_names_the_right_commands(run_folder):
    with pytest.raises(CnnlabError, match="a classification run, not a semantic segmentation run; use 'cnnlab eval' "
                                          "/ 'cnnlab predict' for it"):
        open_run(run_folder, "semantic")


def test_eval_and_predict_agree_with_a_plain_forward_pass(run_folder):
    """Oracle: the confusion matrix and the probabilities computed here with torch alone."""
    from cnnlab.train.tasks.classification import evaluation_report, predict_top

    run = open_run(run_folder, "classification")
    data = run.load_data()
    with torch.no_grad():
        logits = run.model(run.normalise(data.test.images))
    truth, pred = data.test.labels, logits.argmax(1)
    confusion = [[int(((truth == i) & (pred == j)).sum()) for j in range(10)] for i in range(10)]
    report = evaluation_report(run, data)
    assert report["confusion"] == confusion
    assert report["accuracy"] == pytest.approx(float((pred == truth).float().mean()))
    assert report["confusion"] == json.loads((run_folder / "test.json").read_text())["confusion"]
    top = predict_top(run, data.test.images[0], 3)
    probs = torch.softmax(logits[0], 0)
    assert [t["class"] for t in top] == [run.classes[int(i)] for i in probs.topk(3).indices]
    assert [t["probability"] for t in top] == pytest.approx(probs.topk(3).values.tolist())


def test_without_weights_the_network_is_on_meta_for_analysis(run_folder):
    from cnnlab.fake import is_meta

    run = open_run(run_folder, weights=False)
    assert is_meta(run.model)
    target = run.target()
    assert target.input_shape == run.shape
