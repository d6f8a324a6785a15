"""The explore API (FastAPI TestClient): each endpoint equals the CLI's --json document; bad input is a 4xx line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from cnnlab.cli.main import main
from cnnlab.web.app import MAX_BODY, create_app

from tests.zygote import run_cnnlab

GERON = "examples/geron_ex2.yaml"


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app(GERON))


def cli_json(capsys, *args: str) -> dict:
    capsys.readouterr()
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_network_and_layer_equal_analyze_json(client, capsys):
    ref = cli_json(capsys, "analyze", GERON)
    assert client.get("/api/network").json() == ref
    for row in ref["layers"]:
        got = client.get(f"/api/layer?index={row['index']}").json()
        assert {k: got[k] for k in row} == row
        assert f"layer {row['index']} {row['name']}" in got["explain"]
    assert "(3×3×3 + 1) × 100 = 2,800" in client.get("/api/layer?index=1").json()["explain"]


def test_a_zoo_model_at_another_input_equals_analyze(client, capsys):
    ref = cli_json(capsys, "analyze", "resnet18", "--input", "3,64,64")
    assert client.get("/api/network?model=resnet18&input=3,64,64").json() == ref


def test_memory_and_fit_equal_the_cli(client, capsys):
    for batch, opt, prec in ((1, "sgd", "fp32"), (16, "adam", "bf16-amp")):
        ref = cli_json(capsys, "memory", GERON, "--batch", str(batch), "--optimizer", opt, "--precision", prec)
        got = client.get(f"/api/memory?batch={batch}&optimizer={opt}&precision={prec}").json()
        timeline = got["training"].pop("timeline")
        assert got == ref
        assert max(timeline) == ref["training"]["peak_bytes"]       # thinning keeps the peak
    ref = cli_json(capsys, "fit", GERON, "--budget", "200MB", "--batch", "64")
    assert client.get("/api/fit?budget=200MB&batch=64").json() == ref


def test_ops_equals_the_cli_and_the_book(client, capsys):
    body = {"op": "conv1d", "input": "1,2,3,4,5,6,7,8", "kernel": "-1,0,1", "padding": "same"}
    got = client.post("/api/ops", json=body).json()
    assert got["output"] == [2, 2, 2, 2, 2, 2, 2, -7]
    ref = cli_json(capsys, "ops", "conv1d", "--input", body["input"], "--kernel=-1,0,1", "--padding", "same", "--explain")
    assert got == ref
    pool = client.post("/api/ops", json={"op": "maxpool", "input": "[[1,2],[3,4]]", "size": "2"}).json()
    assert pool["output"] == [[4]]


@pytest.mark.parametrize("method, path, body, status, words", [
    ("get", "/api/layer?index=0", None, 404, "layer 0 does not exist; the layers are 1..3"),
    ("get", "/api/layer?index=x", None, 422, "index"),
    ("get", "/api/memory?batch=10000000", None, 422, "batch 10000000 is out of range"),
    ("get", "/api/memory?batch=-1", None, 422, "out of range"),
    ("get", "/api/memory?optimizer=lion", None, 422, "optimizer 'lion' is not one of"),
    ("get", "/api/fit?budget=lots", None, 422, "budget"),
    ("get", "/api/network?model=os:system", None, 404, "neither the target named on the command line nor a zoo"),
    ("get", "/api/network?model=/etc/passwd", None, 404, "nor a zoo name"),
    ("get", "/api/network?input=3,0,5", None, 422, "C,H,W"),
    ("get", "/api/run", None, 404, "no run folder was named"),
    ("get", "/api/run/image/0", None, 404, "no run folder"),
    ("post", "/api/ops", b"{not json", 400, "must be JSON"),
    ("post", "/api/ops", json.dumps([1, 2]).encode(), 400, "JSON object"),
    ("post", "/api/ops", json.dumps({"op": "rm"}).encode(), 400, "op must be one of"),
    ("post", "/api/ops", json.dumps({"op": "conv1d", "input": "1,2,x", "kernel": "1"}).encode(), 400, "x"),
    ("post", "/api/ops", json.dumps({"op": "conv1d", "input": "1,2", "kernel": "1,1,1"}).encode(), 400,
     "kernel size 3 is larger than the padded input"),
    ("post", "/api/ops", json.dumps({"op": "conv1d", "input": "1,2", "kernel": "1", "stride": "a"}).encode(), 400,
     "integer"),
    ("post", "/api/ops", json.dumps({"op": "conv1d", "input": [1, 2], "kernel": "1"}).encode(), 400, "as text"),
    ("post", "/api/ops", b"x" * (MAX_BODY + 1), 413, "over"),
    ("post", "/api/ops", b"[" * 30_000 + b"]" * 30_000, 400, "nested 30000 levels deep"),
    ("post", "/api/ops", b'{"a":' * 10_000 + b"1" + b"}" * 10_000, 400, "nested 10000 levels deep"),
    ("post", "/api/ops", json.dumps({"op": "maxpool", "input": "[" * 3000 + "1" + "]" * 3000, "size": "1"}).encode(),
     400, "nested more than 8 deep"),
    ("get", "/api/nothing-here", None, 404, "no such page or API: /api/nothing-here"),
    ("get", "/etc/passwd", None, 404, "no such page or API"),
    ("delete", "/api/info", None, 405, "DELETE is not allowed on /api/info"),
    ("get", "/api/ops", None, 405, "GET is not allowed on /api/ops"),
])
def test_bad_requests_get_a_4xx_json_line(client, method, path, body, status, words):
    r = client.request(method.upper(), path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    message = r.json()["error"]
    assert words in message and "\n" not in message and "Traceback" not in message


@pytest.mark.parametrize("suffix", [".json", ".npy"])
def test_the_ops_playground_reads_no_file_of_the_server(client, tmp_path, suffix):
    """Security: a path in an ops request once returned the file's numbers (200), echoed a non-numeric file's
    text (an api_key) in the 400, and told a caller which files exist. The page takes typed numbers only: the
    answer for an existing file of numbers, an existing secret and a missing file is the same refusal."""
    from cnnlab.text import excerpt

    numbers, secret = tmp_path / f"numbers{suffix}", tmp_path / f"secret{suffix}"
    if suffix == ".json":
        numbers.write_text("[[1, 2], [3, 4]]")
        secret.write_text('{"api_key": "sk-LIVE-0123456789"}')
    else:
        np.save(numbers, np.array([[1.0, 2.0], [3.0, 4.0]]))
        np.save(secret, np.array([[7.0, 7.0]]))
    answers = []
    for path in (numbers, secret, tmp_path / f"missing{suffix}"):
        for field in ("input", "kernel"):
            body = {"op": "conv2d", "input": "[[1,2],[3,4]]", "kernel": "[[1]]", field: str(path)}
            r = client.post("/api/ops", json=body)
            assert r.status_code == 400, r.text
            message = r.json()["error"]
            assert "sk-LIVE" not in message and "7.0" not in message and "is a file name, not numbers" in message
            answers.append(message.replace(excerpt(str(path)), "PATH"))
    assert len(set(answers)) == 2        # one answer per field, whatever the file


def test_an_error_never_echoes_more_than_a_short_excerpt(client):
    r = client.post("/api/ops", json={"op": "conv1d", "input": "1,2," + "x" * 20_000, "kernel": "1"})
    assert r.status_code == 400 and len(r.json()["error"]) < 400 and "x" * 100 not in r.json()["error"]


def test_the_page_and_its_assets_are_served_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and "cnnlab explore" in page.text
    for src in ("/static/app.js", "/static/style.css"):
        assert client.get(src).status_code == 200
    assert "http" not in page.text.replace("http://www.w3.org", "")          # no CDN, no remote asset


def test_a_bad_target_fails_before_serving():
    from cnnlab.errors import CnnlabError

    with pytest.raises(CnnlabError, match="unknown zoo model"):
        create_app("resnet19")


def test_the_command_refuses_a_busy_port_and_an_instance_run_in_one_line(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        p = run_cnnlab("explore", GERON, "--port", str(port), timeout=60)
    assert p.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in p.stderr and p.stderr.count("\n") == 1
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"config": {"task": "instance"}, "model": {"kind": "zoo",
                                                 "name": "maskrcnn"}, "data": {"shape": [1, 64, 64], "classes": ["a", "b"]}}))
    p = run_cnnlab("explore", str(run), timeout=60)
    assert p.returncode == 2 and "an instance-segmentation run" in p.stderr and p.stderr.count("\n") == 1, p.stderr


def test_requests_for_another_host_name_or_not_json_are_refused(client):
    r = client.get("/api/info", headers={"host": "evil.example:8765"})        # DNS rebinding
    assert r.status_code == 400
    r = client.post("/api/ops", content=b'{"op": "conv1d"}', headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "application/json" in r.json()["error"]
    r = client.get("/api/fit?budget=1e400")
    assert r.status_code == 422 and "too large" in r.json()["error"]


@pytest.mark.parametrize("task, name, options", [("classification", "lenet5", {}),
                                                  ("semantic", "unet", {"width": 4, "depth": 2})])
def test_a_run_is_analysed_with_its_own_options_and_classes(tmp_path, task, name, options):
    import torch

    from cnnlab.models import create_model

    run = tmp_path / "run"
    run.mkdir()
    doc = {"config": {"task": task}, "model": {"kind": "zoo", "name": name, "options": options},
           "data": {"shape": [1, 32, 32], "classes": ["a", "b", "c"]}}
    (run / "config.json").write_text(json.dumps(doc))
    got = TestClient(create_app(None, run)).get("/api/network").json()
    with torch.device("meta"):
        ref = create_model(name, num_classes=3, in_channels=1, input_size=32, **options) if task == "classification" \
            else create_model(name, num_classes=3, in_channels=1, **options)
    assert got["total_params"] == sum(p.numel() for p in ref.parameters())
    assert got["input_shape"] == [1, 32, 32]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("webrun") / "run"
    assert main(["train", "--epochs", "1", "--out", str(folder), "--no-progress"]) == 0
    return folder


def test_the_run_page_reads_no_file_through_a_link_in_the_run(digits_run, tmp_path):
    """A metrics.csv planted as a link once returned the linked file's text (200)."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(digits_run, run)
    secret = tmp_path / "cred"
    secret.write_text("dummyline\nAKIA-SECRET-KEY-123\n")
    (run / "metrics.csv").unlink()
    (run / "metrics.csv").symlink_to(secret)
    r = TestClient(create_app(None, run=str(run))).get("/api/run")
    assert r.status_code == 400 and "symbolic link" in r.json()["error"] and "AKIA" not in r.text


@pytest.mark.parametrize("content", [b"epoch,train_loss\n1," + b"9" * 200_000 + b"\n", b"epoch,train_loss\n1,\xff\xfe\n",
                                     b"epoch,x\n1,not-a-number\n"])
def test_a_damaged_metrics_file_is_a_4xx_line(digits_run, tmp_path, content):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(digits_run, run)
    (run / "metrics.csv").write_bytes(content)
    r = TestClient(create_app(None, run=str(run))).get("/api/run")
    assert r.status_code == 400 and "metrics.csv" in r.json()["error"]


def test_the_playground_bounds_its_work_and_its_trace(client):
    big = json.dumps([[1] * 64] * 64).replace(" ", "")
    kernel = json.dumps([[1] * 160] * 160).replace(" ", "")
    r = client.post("/api/ops", json={"op": "conv2d", "input": big, "kernel": kernel, "padding": "same"})
    assert r.status_code == 422 and "more than the page computes" in r.json()["error"]
    r = client.post("/api/ops", json={"op": "conv2d", "input": json.dumps([[1] * 40] * 40), "kernel":
                                      json.dumps([[1] * 20] * 20), "padding": "same"})
    assert r.status_code == 200 and len(r.content) < 20_000_000
    trace = r.json()["trace"]
    assert r.json()["trace_capped"] and len(trace) == 200_000 // 400          # 400 products per element
    assert sum(len(step["products"]) for step in trace) <= 200_000


@pytest.mark.parametrize("body, headers, status, words", [
    (b'{"op":"conv1d","op":"maxpool","input":"1,2","size":"1"}', {"content-type": "application/json"}, 400,
     "given twice"),
    (b'{"op":"maxpool","input":"1,2","size":"1"}', {"content-type": "APPLICATION/JSON"}, 200, ""),
    (b'{"op":"conv1d","input":"1,2","kernel":"1","flip":"no"}', {"content-type": "application/json"}, 422,
     "flip: true or false"),
])
def test_ops_bodies_are_read_strictly(client, body, headers, status, words):
    r = client.post("/api/ops", content=body, headers=headers)
    assert r.status_code == status, r.text
    if words:
        assert words in r.json()["error"]
