"""The explore page in a real headless Chromium (Playwright's Python API driving Debian's chromium).

Skipped where no Chromium is installed: ``apt-get install -y chromium`` (or set CNNLAB_CHROMIUM to a
Chromium/Chrome binary). ``playwright install`` (a browser download) is not needed. Screenshots go
to the test's temporary folder, or to CNNLAB_SCREENSHOTS when set (docs/explore.md's come from there).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.zygote import run_cnnlab

CHROMIUM = os.environ.get("CNNLAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: apt-get install -y chromium (Debian) or set "
                                                "CNNLAB_CHROMIUM=/path/to/chrome to run the browser test"),
]
GERON = "examples/geron_ex2.yaml"


def cli_json(*args: str) -> dict:
    p = run_cnnlab(*args, "--json")
    p.check_returncode()
    return json.loads(p.stdout)


@contextmanager
def serve(target: str | None = None, run: Path | None = None) -> Iterator[str]:
    import uvicorn

    from cnnlab.web.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(target, run), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture()
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("CNNLAB_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def open_page(browser, url: str):
    """The page loaded; ``page.errors`` collects every console error and uncaught exception from then on."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    t0 = time.perf_counter()
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=30000)
    return page, time.perf_counter() - t0


def visit_every_tab(page) -> None:
    """Each tab opened and its content drawn; no console error on the way."""
    page.click("nav button[data-view='memory']")
    page.wait_for_selector("#mem-curve polyline", timeout=60000)
    page.click("nav button[data-view='ops']")
    page.wait_for_selector("#op-output .out-cell")
    page.click("nav button[data-view='run']")
    page.wait_for_selector("#run-none:not([hidden]), #run-body:not([hidden])")
    page.click("nav button[data-view='zoo']")
    page.wait_for_selector("#zoo-chart rect", timeout=60000)
    page.click("nav button[data-view='network']")
    assert page.errors == []


def check_layer(page, ref: dict, index: int) -> None:
    page.click(f"#layers tr[data-index='{index}']")
    page.wait_for_selector("#layer-detail:not([hidden])")
    page.wait_for_function(f"document.querySelector('#detail-title').textContent.startsWith('layer {index}:')")
    row = ref["layers"][index - 1]
    assert page.inner_text("#detail-shape") == "×".join(map(str, row["output_shape"]))
    assert page.inner_text("#detail-params") == f"{row['params']:,}"
    assert page.inner_text("#detail-bytes") == f"{row['output_bytes']:,}"
    assert page.inner_text("#detail-macs") == f"{row['macs']:,}"
    assert f"layer {index} {row['name']}" in page.inner_text("#detail-explain")


def test_network_view_matches_analyze_for_geron_and_resnet18(browser, shots):
    with serve(GERON) as url:
        page, _ = open_page(browser, url)
        ref = cli_json("analyze", GERON)
        assert page.locator("#layers tbody tr").count() == len(ref["layers"])
        check_layer(page, ref, 2)
        # the drawing: a chain, one block per layer (and the input), a block opens the same derivation
        assert page.get_attribute("#drawing", "data-kind") == "chain"
        assert page.locator("#drawing g.layer").count() == len(ref["layers"])
        page.click("#drawing g[data-index='3']")
        page.wait_for_function("document.querySelector('#detail-title').textContent.startsWith('layer 3:')")
        assert "(3×3×200 + 1) × 400 = 720,400" in page.inner_text("#detail-explain")
        tip = page.text_content("#drawing g[data-index='3'] title")
        assert "400×25×38" in tip and "receptive field 15×15, stride 8×8" in tip
        page.screenshot(path=str(shots / "network_geron.png"), full_page=True)
        page.select_option("#model", "resnet18")
        ref18 = cli_json("analyze", "resnet18")
        page.wait_for_function(f"document.querySelectorAll('#layers tbody tr').length === {len(ref18['layers'])}")
        check_layer(page, ref18, 5)
        # the graph: ResNet-18's 8 residual connections, each a join of two edges with its skip drawn as an arc
        page.wait_for_selector("#drawing[data-kind='graph'] g.join")
        assert page.locator("#drawing g.join").count() == 8
        for k in range(1, 9):
            assert page.locator(f"#drawing [data-to='join-{k}']").count() == 2
        assert page.locator("#drawing path.skip").count() == 8
        assert page.locator("#drawing g.layer").count() == len(ref18["layers"])
        page.locator("#drawing").screenshot(path=str(shots / "network_resnet18.png"))
        assert page.errors == []


def test_memory_slider_matches_memory_json_and_the_playground_the_book(browser, shots):
    with serve(GERON) as url:
        page, _ = open_page(browser, url)
        page.click("nav button[data-view='memory']")
        page.wait_for_selector("#mem-peak[data-batch='32']")
        page.eval_on_selector("#batch", "e => { e.value = 8; e.dispatchEvent(new Event('change')); }")
        page.wait_for_selector("#mem-peak[data-batch='8']")
        ref = cli_json("memory", GERON, "--batch", "8")
        assert page.inner_text("#mem-peak") == f"{ref['training']['peak_bytes']:,}"
        assert page.locator("#mem-legend span").count() == sum(v > 0 for v in ref["training"]["breakdown"].values())
        page.fill("#budget", "100MB")
        page.click("#fit")
        page.wait_for_selector("#fit-max")
        fit = cli_json("fit", GERON, "--budget", "100MB", "--batch", "8")
        assert f"largest batch that fits: {fit['max_batch']};" in page.inner_text("#fit-max")
        page.screenshot(path=str(shots / "memory_geron.png"), full_page=True)

        page.click("nav button[data-view='ops']")               # the book's 1-D example, computed on load
        assert json.loads(page.inner_text("#op-result-json")) == [2, 2, 2, 2, 2, 2, 2, -7]
        assert page.inner_text("#op-trace") == "y[0] = 0×(-1) + 1×0 + 2×1 = 2"
        for _ in range(7):                                       # step the animation to the last output cell
            page.click("#anim-next")
        assert page.inner_text("#op-trace") == "y[7] = 7×(-1) + 8×0 + 0×1 = -7"
        assert [c.inner_text() for c in page.query_selector_all("#op-padded .hot")] == ["7", "8", "0"]
        assert page.get_attribute("#op-output .current", "data-c") == "7"
        page.click("#anim-prev")
        assert page.inner_text("#op-trace") == "y[6] = 6×(-1) + 7×0 + 8×1 = 2"
        page.screenshot(path=str(shots / "ops_conv1d.png"))
        page.click("#anim-play")                                  # playing moves on by itself
        page.wait_for_function("!document.querySelector('#op-trace').textContent.startsWith('y[6]')")
        page.click("#anim-play")
        page.select_option("#op-example", label="max pool 2×2")
        page.wait_for_function("document.querySelector('#op-trace').textContent === 'y[0, 0] = max(1, 2, 4, 5) = 5'")
        assert sorted(c.inner_text() for c in page.query_selector_all("#op-padded .hot")) == ["1", "2", "4", "5"]
        page.select_option("#op-example", label="local response normalization across 4 channels")
        page.wait_for_selector("#op-padded figure:nth-child(4)")
        page.click("#anim-next")                                  # channel 1: channels 0, 1 and 2 are summed
        assert [c.get_attribute("data-ch") for c in page.query_selector_all("#op-padded .hot")] == ["0", "1", "2"]
        assert page.errors == []


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("explore") / "run"
    run_cnnlab("train", "--epochs", "1", "--out", str(run), "--no-progress").check_returncode()
    return run


def test_a_run_shows_curves_confusion_prediction_and_feature_maps(browser, shots, trained_run):
    with serve(None, trained_run) as url:
        page, _ = open_page(browser, url)
        page.click("nav button[data-view='run']")
        page.wait_for_selector("#features img.feature-map")
        test = json.loads((trained_run / "test.json").read_text())
        assert f"test accuracy {100 * test['test_acc']:.2f} %" in page.inner_text("#run-summary")
        assert page.locator("#run-confusion td").count() == 10 * 10
        assert page.locator("#run-top li").count() == 5
        convs = page.locator("#features figure").count()
        assert convs >= 3                                        # small_cnn: convolutions and poolings
        assert page.eval_on_selector("#features img.feature-map", "e => e.naturalWidth") > 0
        page.fill("#image-index", "3")
        page.dispatch_event("#image-index", "change")
        page.wait_for_function("document.querySelector('#run-image').src.endsWith('/api/run/image/3')")
        page.screenshot(path=str(shots / "run_digits.png"), full_page=True)
        assert page.locator("#run-confusion th", has_text="0 0").count() == 0    # digits: '0', not '0 0'
        visit_every_tab(page)
        page.click("nav button[data-view='zoo']")
        assert page.locator("#zoo-chart rect").count() == page.locator("#zoo-table tbody tr").count()
        names = page.locator("#zoo-chart text").all_text_contents()
        assert {"resnet50", "googlenet", "lenet5"} <= set(names)
        page.locator("#zoo-chart").screenshot(path=str(shots / "zoo_chart.png"))


def test_resnet50_page_load_time_is_reported(browser, shots, capsys):
    with serve("resnet50") as url:
        page, seconds = open_page(browser, url)
        assert page.locator("#layers tbody tr").count() > 50
    with capsys.disabled():
        print(f"\nexplore: resnet50 page load (navigation to the filled layer table) {seconds:.2f} s")
    (shots / "resnet50_load_seconds.txt").write_text(f"{seconds:.3f}\n")


@pytest.mark.parametrize("target, shape", [(GERON, None), ("googlenet", None),
                                           ("torchvision.models:resnet18", (3, 64, 64))])
def test_every_tab_of_every_target_kind_without_a_console_error(browser, target, shape):
    """A spec, a zoo DAG and a module:callable (the run is in the run test): every tab, no console error."""
    import uvicorn

    from cnnlab.web.app import create_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(target, None, shape), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        page, _ = open_page(browser, f"http://127.0.0.1:{port}/")
        kind = page.get_attribute("#drawing", "data-kind")
        assert kind == ("chain" if target == GERON else "graph")
        if target == "googlenet":           # inception modules: four branches concatenated, nine times
            assert page.locator("#drawing g.join").count() == 9
        visit_every_tab(page)
    finally:
        server.should_exit = True
        thread.join(10)
