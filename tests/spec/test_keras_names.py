"""The book's words in a spec: a network written with Keras's names is the same network as cnnlab's spelling."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnlab.errors import SpecError
from cnnlab.spec import load_spec, parse_spec
from cnnlab.targets import resolve_target

ROOT = Path(__file__).resolve().parents[2]


def _spec(text: str, tmp_path: Path, name: str = "net.yaml"):  # type: ignore[no-untyped-def]
    path = tmp_path / name
    path.write_text(text)
    return load_spec(path)


def test_the_exercise_in_keras_words_is_the_exercise(tmp_path: Path) -> None:
    """What a learner tried (four refusals before) now reads, and is examples/geron_ex2.yaml exactly."""
    keras_words = _spec("""
input_shape: [200, 300, 3]
data_format: channels_last
layers:
  - type: Conv2D
    filters: 100
    kernel_size: 3
    strides: 2
    padding: same
    activation: relu
  - Conv2D: {filters: 200, kernel_size: 3x3, strides: [2, 2], padding: same, activation: relu}
  - conv2d: {filters: 400, kernel_size: 3, strides: 2, padding: same, activation: relu,
             kernel_initializer: he_normal}
""", tmp_path)
    ours = load_spec(ROOT / "examples" / "geron_ex2.yaml")
    assert keras_words.input_shape == ours.input_shape == (3, 200, 300)
    assert [layer.params(s) for layer, s in zip(keras_words.layers, keras_words.shapes)] == \
           [layer.params(s) for layer, s in zip(ours.layers, ours.shapes)] == [2_800, 180_200, 720_400]
    assert keras_words.shapes == ours.shapes


def test_every_keras_spelling(tmp_path: Path) -> None:
    spec = _spec("""
layers:
  - Conv2D: {filters: 8, kernel_size: 3, input_shape: [28, 28, 1], use_bias: false, activation: linear}
  - BatchNormalization: {momentum: 0.99, epsilon: 0.001}
  - Activation: {activation: relu}
  - MaxPool2D: {pool_size: 2}
  - DepthwiseConv2D: {kernel_size: 3, padding: same, dilation_rate: 2}
  - SeparableConv2D: {filters: 4, kernel_size: 3}
  - AveragePooling2D: {pool_size: 3, strides: 1, padding: same}
  - GlobalAvgPool2D
  - Dropout: {rate: 0.5}
  - Dense: {units: 10, activation: softmax}
""", tmp_path)
    assert spec.input_shape == (1, 28, 28)
    conv, bn, act, pool, dw, sep, avg, gap, drop, dense = spec.layers
    assert (conv.bias, conv.activation) == (False, "none")
    assert bn.momentum == pytest.approx(0.01) and bn.eps == 0.001     # Keras's 0.99 is PyTorch's 0.01
    assert act.function == "relu" and pool.size == (2, 2) and pool.step == (2, 2)
    assert dw.dilation == (2, 2) and sep.filters == 4 and avg.step == (1, 1)
    assert drop.rate == 0.5 and dense.units == 10
    assert spec.output_shape == (10,)


def test_input_as_keras_gives_it(tmp_path: Path) -> None:
    first_layer = _spec("layers:\n  - Input: {shape: [32, 48, 3]}\n  - Flatten\n", tmp_path)
    assert first_layer.input_shape == (3, 32, 48) and len(first_layer.layers) == 1
    chw = _spec("input_shape: [3, 32, 48]\ndata_format: channels_first\nlayers: [flatten]\n", tmp_path)
    assert chw.input_shape == (3, 32, 48)
    with pytest.raises(SpecError, match="not both"):
        parse_spec({"input": [3, 8, 8], "input_shape": [8, 8, 3], "layers": ["flatten"]})


def test_a_spec_without_input_takes_the_command_lines(tmp_path: Path) -> None:
    path = tmp_path / "noinput.yaml"
    path.write_text("layers:\n  - Conv2D: {filters: 100, kernel_size: 3, strides: 2, padding: same}\n")
    with pytest.raises(SpecError, match="or give --input C,H,W"):
        load_spec(path)
    target = resolve_target(str(path), (3, 200, 300))
    assert target.network.output_shape == (100, 100, 150)


def test_a_keras_name_cnnlab_does_not_have_says_so(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="Keras's names: Conv2D, MaxPool2D"):
        _spec("input: [1, 8, 8]\nlayers:\n  - Conv3D: {filters: 2}\n", tmp_path)
    with pytest.raises(SpecError, match="kernel_size.*|unknown field 'kernel_sise'"):
        _spec("input: [1, 8, 8]\nlayers:\n  - Conv2D: {filters: 2, kernel_sise: 3}\n", tmp_path)
