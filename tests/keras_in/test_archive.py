"""A .keras file read without Keras: hostile and odd files are one line naming the file and the fix."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from cnnlab.errors import TargetError
from cnnlab.keras import archive, load_keras
from tests.zygote import run_cnnlab


def _rewrite(src: Path, dst: Path, config=None, weights: bytes | None = None, extra: dict | None = None) -> Path:  # type: ignore[no-untyped-def]
    """A copy of ``src`` with its config and/or weights replaced."""
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    if config is not None:
        members["config.json"] = json.dumps(config).encode()
    if weights is not None:
        members["model.weights.h5"] = weights
    members.update(extra or {})
    with zipfile.ZipFile(dst, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return dst


def _config(path: Path) -> dict:
    with zipfile.ZipFile(path) as z:
        return json.loads(z.read("config.json"))


def _one_line(err: pytest.ExceptionInfo, *words: str) -> None:
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_not_a_zip_says_what_to_do(tmp_path: Path) -> None:
    legacy = tmp_path / "model.keras"
    with h5py.File(legacy, "w") as f:           # Keras 2's whole-model HDF5 saved under a .keras name
        f.attrs["model_config"] = "{}"
    with pytest.raises(TargetError) as err:
        load_keras(legacy)
    _one_line(err, "model.keras", "Keras 2", "model.save('model.keras')")
    (tmp_path / "text.keras").write_text("hello")
    with pytest.raises(TargetError) as err:
        load_keras(tmp_path / "text.keras")
    _one_line(err, "not a Keras 3 .keras file")


def test_missing_and_damaged_members(tiny_keras: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.keras"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("metadata.json", "{}")
    with pytest.raises(TargetError) as err:
        load_keras(empty)
    _one_line(err, "no config.json")
    broken = _rewrite(tiny_keras, tmp_path / "broken.keras", extra={"config.json": b"{not json"})
    with pytest.raises(TargetError) as err:
        load_keras(broken)
    _one_line(err, "config.json is not valid JSON")
    with pytest.raises(TargetError) as err:
        load_keras(_rewrite(tiny_keras, tmp_path / "w.keras", weights=b"garbage"))
    _one_line(err, "model.weights.h5")


def test_a_zip_bomb_stops_at_the_limit(tiny_keras: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A member that unpacks past its limit is refused: by its size, and, when its header lies about the size, by
    the read itself, which stops at the limit."""
    monkeypatch.setattr(archive, "MAX_CONFIG_BYTES", 10_000)
    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", b" " * 5_000_000)     # 5 MB of spaces: a few kB compressed
    with pytest.raises(TargetError) as err:
        load_keras(bomb)
    _one_line(err, "config.json", "more than cnnlab reads")
    # the same member with a forged size in its headers (local and central): only the read can tell
    raw = bytearray(bomb.read_bytes())
    five_mb = (5_000_000).to_bytes(4, "little")
    for at in [i for i in range(len(raw) - 3) if raw[i:i + 4] == five_mb]:
        raw[at:at + 4] = (100).to_bytes(4, "little")
    liar = tmp_path / "liar.keras"
    liar.write_bytes(bytes(raw))
    with pytest.raises(TargetError) as err:
        load_keras(liar)
    _one_line(err, "config.json")
    assert "more than" in str(err.value) or "cannot read" in str(err.value)


def test_hdf5_that_unpacks_past_its_size_or_links_back_is_refused(tiny_keras: Path, tmp_path: Path) -> None:
    def unwritten_giant(f: h5py.File) -> None:      # a chunked dataset never written: terabytes in a few bytes
        group = f["layers/conv2d/vars"]
        del group["0"]
        group.create_dataset("0", shape=(1 << 20, 1 << 20), dtype="f4", chunks=(16, 16))

    def twice(f: h5py.File) -> None:                # one dataset reached twice through a hard link
        group = f["layers/conv2d/vars"]
        del group["1"]
        group["1"] = group["0"]

    for name, change, words in (("giant", unwritten_giant, "unpacks to"), ("twice", twice, "twice")):
        path = _rewrite(tiny_keras, tmp_path / f"{name}.keras", weights=_weights_with(tiny_keras, change))
        with pytest.raises(TargetError) as err:
            load_keras(path)
        _one_line(err, words)


@pytest.mark.parametrize("edit, words", [
    (lambda c: c["config"]["layers"][1]["config"].pop("filters"), "has a config cnnlab cannot read"),
    (lambda c: c["config"]["layers"].insert(1, "not a layer"), "config.json is not a model config cnnlab reads"),
    (lambda c: c["config"]["layers"][0]["config"].update(batch_shape="8x8"), "config.json is not a model config"),
])
def test_a_config_keras_would_not_write_is_one_line(tiny_keras: Path, tmp_path: Path, edit, words: str) -> None:  # type: ignore[no-untyped-def]
    config = _config(tiny_keras)
    edit(config)
    with pytest.raises(TargetError) as err:
        load_keras(_rewrite(tiny_keras, tmp_path / "odd.keras", config=config))
    _one_line(err, words)


def _weights_with(tiny_keras: Path, change) -> bytes:  # type: ignore[no-untyped-def]
    with zipfile.ZipFile(tiny_keras) as z:
        data = z.read("model.weights.h5")
    buffer = io.BytesIO(data)
    with h5py.File(buffer, "r+") as f:
        change(f)
    return buffer.getvalue()


def test_weights_that_point_outside_the_file_are_refused(tiny_keras: Path, tmp_path: Path) -> None:
    """HDF5 can link to another file or keep a dataset's bytes in an external file: on the page's server that
    would read the server's files. Neither is followed."""
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(54, dtype=np.float32).tobytes())

    def external_link(f: h5py.File) -> None:
        group = f["layers/conv2d/vars"]
        del group["0"]
        group["0"] = h5py.ExternalLink(str(tmp_path / "other.h5"), "/data")

    def external_storage(f: h5py.File) -> None:
        group = f["layers/conv2d/vars"]
        del group["0"]
        group.create_dataset("0", shape=(3, 3, 1, 6), dtype="f4", external=[(str(secret), 0, 216)])

    for name, change in (("link", external_link), ("storage", external_storage)):
        path = _rewrite(tiny_keras, tmp_path / f"{name}.keras", weights=_weights_with(tiny_keras, change))
        with pytest.raises(TargetError) as err:
            load_keras(path)
        _one_line(err, "cnnlab reads only the weights stored in the file")


def test_config_and_weights_that_disagree(tiny_keras: Path, tmp_path: Path) -> None:
    config = _config(tiny_keras)
    config["config"]["layers"][1]["config"]["filters"] = 7          # the file's kernel has 6 filters
    with pytest.raises(TargetError) as err:
        load_keras(_rewrite(tiny_keras, tmp_path / "f.keras", config=config))
    _one_line(err, "layer 'conv2d' (Conv2D)", "kernel")


@pytest.mark.parametrize("layer, words", [
    ({"module": "keras.layers", "class_name": "Lambda", "config": {"name": "lam", "function": "x"}},
     ["layer 'lam' (Lambda)", "does not convert", "docs/keras.md"]),
    ({"module": "my_layers", "class_name": "Mine", "registered_name": "Custom>Mine", "config": {"name": "mine"}},
     ["layer 'mine'", "custom layer", "Custom>Mine", "does not run code"]),
    ({"module": "keras.layers", "class_name": "Conv2D", "config": {"name": "cf", "filters": 2, "kernel_size": [3, 3],
                                                                   "data_format": "channels_first"}},
     ["layer 'cf' (Conv2D)", "channels_first"]),
])
def test_a_layer_cnnlab_does_not_convert_is_one_line_naming_it(tiny_keras: Path, tmp_path: Path, layer: dict,
                                                               words: list[str]) -> None:
    config = _config(tiny_keras)
    config["config"]["layers"].insert(2, layer)
    with pytest.raises(TargetError) as err:
        load_keras(_rewrite(tiny_keras, tmp_path / "x.keras", config=config))
    _one_line(err, *words)


def test_read_without_keras_importable(tiny_keras: Path, tmp_path: Path) -> None:
    """The no-Keras path: Keras made unimportable in cnnlab's process; analyze, memory and fcn convert work."""
    keras = pytest.importorskip("keras")
    expected = keras.saving.load_model(tiny_keras, compile=False).count_params()
    p = run_cnnlab("analyze", str(tiny_keras), "--json", hide=("keras",))
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["keras"]["count_params"] == expected
    assert doc["input_shape"] == [1, 8, 8]
    p = run_cnnlab("memory", str(tiny_keras), "--batch", "4", hide=("keras",))
    assert p.returncode == 0, p.stderr
    p = run_cnnlab("fcn", "convert", str(tiny_keras), "--out", str(tmp_path / "fcn"), hide=("keras",))
    assert p.returncode == 0, p.stderr
    assert "equals the classifier's" in p.stdout
    assert json.loads((tmp_path / "fcn" / "fcn.json").read_text())["source"]["target"] == str(tiny_keras)
    # and a model file that is not there is one line
    p = run_cnnlab("analyze", str(tmp_path / "nope.keras"))
    assert p.returncode == 2 and "no such file" in p.stderr and "Traceback" not in p.stderr
