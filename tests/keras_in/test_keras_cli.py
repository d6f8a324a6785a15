"""The Keras side of the command line and the page: --compare-keras, --explain, the explore API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cnnlab.web.app import create_app
from tests.helpers import run

keras = pytest.importorskip("keras")


def test_compare_keras_agrees_layer_by_layer(tiny_keras: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run(capsys, "analyze", str(tiny_keras), "--compare-keras")
    assert code == 0, err
    # by hand: conv 3×3×1×6 + 6 = 60; BN 4×6 = 24; conv 3×3×6×8 + 8 = 440; dense 4×4×8×5 + 5 = 645
    assert "all 7 layers agree; count_params: Keras 1,169, cnnlab 1,169 (equal;" in out
    code, out, _ = run(capsys, "analyze", str(tiny_keras), "--compare-keras", "--json")
    doc = json.loads(out)
    compare = doc["keras"]["compare"]
    model = keras.saving.load_model(tiny_keras, compile=False)
    assert compare["keras_count_params"] == model.count_params() == doc["keras"]["count_params"]
    assert [r["name"] for r in compare["layers"]] == [layer.name for layer in model.layers]
    assert all(r["agrees"] for r in compare["layers"])
    code, _, err = run(capsys, "analyze", "small_cnn", "--compare-keras")
    assert code == 2 and "--compare-keras takes a Keras model" in err


def test_explain_writes_the_books_derivation_for_a_keras_model(tiny_keras: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run(capsys, "analyze", str(tiny_keras), "--explain")
    assert code == 0, err
    assert "layer 1 conv2d (conv): (3×3×1 + 1) × 6 = 60" in out
    assert "[same: ceil(in/stride): ceil(8/1) = 8, ceil(8/1) = 8]" in out
    assert "Keras input (None, 8, 8, 1) is channels last" in out


def test_the_page_shows_the_same_document(tiny_keras: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(capsys, "analyze", str(tiny_keras), "--json")
    client = TestClient(create_app(str(tiny_keras)))
    assert client.get("/api/network").json() == json.loads(out)


def test_a_keras_models_merge_layers_are_drawn_as_joins(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    from cnnlab.analysis import analyze
    from cnnlab.analysis.drawing import draw_svg
    from cnnlab.keras import load_keras

    L = keras.layers
    inp = keras.Input((8, 8, 1))
    a = L.Conv2D(4, 3, padding="same")(inp)
    b = L.Conv2D(4, 1)(inp)
    x = L.Concatenate()([L.Add()([a, b]), a])
    keras.Model(inp, L.Dense(2)(L.Flatten()(x))).save(tmp_path / "m.keras")
    net = load_keras(tmp_path / "m.keras")
    report = analyze(net.network, net.input_shape)
    root = ET.fromstring(draw_svg(report))
    joins = [g for g in root.iter("{http://www.w3.org/2000/svg}g") if "join" in (g.get("class") or "").split()]
    types = {row.index: row.type for row in report.layers}
    assert sorted(types[int(g.get("data-index"))] for g in joins) == ["Add", "Concatenate"]   # clickable rows
