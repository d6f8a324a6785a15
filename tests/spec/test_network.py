"""Spec parsing and validation: every kind of bad input names its place and fix."""

from __future__ import annotations

import json

import pytest

from cnnlab.errors import SpecError
from cnnlab.spec import load_spec, parse_spec
from cnnlab.spec.layers import Conv, Dense, Dropout, Flatten


def test_geron_spec_loads(examples):
    spec = load_spec(examples / "geron_ex2.yaml")
    assert spec.input_shape == (3, 200, 300)
    assert [s for s in spec.shapes[1:]] == [(100, 100, 150), (200, 50, 75), (400, 25, 38)]
    assert spec.total_params() == 903_400
    assert spec.name == "geron_ex2"


def test_bare_names_shorthand_and_defaults():
    spec = parse_spec({"input": [1, 28, 28], "layers": [
        {"conv": {"filters": 8, "kernel": [3, 5]}}, "flatten", {"dropout": 0.25},
        {"dense": 10}, {"activation": "softmax"}]})
    conv, flat, drop, dense, act = spec.layers
    assert conv == Conv(filters=8, kernel=(3, 5))  # defaults: stride 1, valid, bias
    assert conv.padding == "valid" and conv.stride == (1, 1) and conv.bias
    assert isinstance(flat, Flatten) and isinstance(drop, Dropout) and drop.rate == 0.25
    assert isinstance(dense, Dense) and dense.units == 10
    assert act.function == "softmax"
    assert spec.shapes[1] == (8, 26, 24)
    assert spec.output_shape == (10,)
    assert spec.layer_names() == ["conv_1", "flatten_1", "dropout_1", "dense_1", "activation_1"]


def test_json_spec(tmp_path):
    path = tmp_path / "net.json"
    path.write_text(json.dumps({"input": [3, 32, 32], "layers": [
        {"conv": {"filters": 4, "kernel": 3, "padding": "same"}}, "global_avgpool"]}))
    spec = load_spec(path)
    assert spec.output_shape == (4,)


def test_with_input_revalidates(examples):
    spec = load_spec(examples / "geron_ex2.yaml").with_input((3, 224, 224))
    assert spec.shapes[-1] == (400, 28, 28)
    with pytest.raises(SpecError, match="input"):
        spec.with_input((3, 0, 4))


def err(write_spec, text: str) -> str:
    with pytest.raises(SpecError) as info:
        load_spec(write_spec(text))
    return str(info.value)


def test_malformed_yaml_names_line(write_spec):
    msg = err(write_spec, "input: [3, 32, 32]\nlayers:\n  - conv: {filters: 3, kernel: 3\n")
    assert "net.yaml" in msg and "line" in msg and "invalid YAML" in msg


def test_malformed_json_names_line(tmp_path):
    path = tmp_path / "net.json"
    path.write_text('{"input": [3, 8, 8], "layers": [}')
    with pytest.raises(SpecError, match=r"net.json: line 1, column \d+: invalid JSON"):
        load_spec(path)


def test_missing_file(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        load_spec(tmp_path / "nope.yaml")


def test_unknown_layer_type_suggests(write_spec):
    msg = err(write_spec, "input: [3, 32, 32]\nlayers:\n  - flatten\n  - dens: {units: 3}\n")
    assert "layer 2" in msg and "unknown layer type 'dens'" in msg and "did you mean 'dense'" in msg


def test_unknown_field_suggests(write_spec):
    msg = err(write_spec, "input: [3, 32, 32]\nlayers:\n  - conv: {filter: 3, kernel: 3}\n")
    assert "layer 1 (conv)" in msg and "unknown field 'filter'" in msg and "'filters'" in msg


def test_missing_required_field(write_spec):
    msg = err(write_spec, "input: [3, 32, 32]\nlayers:\n  - conv: {kernel: 3}\n")
    assert "layer 1 (conv): field 'filters': missing required field" in msg


@pytest.mark.parametrize("field,value", [("filters", 0), ("kernel", -3), ("stride", 0),
                                         ("kernel", "[0, 3]"), ("dilation", "true"), ("groups", -1)])
def test_non_positive_sizes(write_spec, field, value):
    base = {"filters": 4, "kernel": 3}
    base[field] = value
    body = ", ".join(f"{k}: {v}" for k, v in base.items())
    msg = err(write_spec, f"input: [3, 32, 32]\nlayers:\n  - conv: {{{body}}}\n")
    assert f"layer 1 (conv): field '{field}'" in msg and "positive" in msg


def test_bad_padding_and_activation(write_spec):
    msg = err(write_spec, "input: [3, 32, 32]\nlayers:\n  - conv: {filters: 4, kernel: 3, padding: full}\n")
    assert "field 'padding'" in msg and "'same', 'valid'" in msg
    msg = err(write_spec, "input: [3, 32, 32]\nlayers:\n  - conv: {filters: 4, kernel: 3, activation: rleu}\n")
    assert "field 'activation'" in msg and "relu" in msg


def test_kernel_larger_than_input_valid(write_spec):
    msg = err(write_spec, "input: [3, 8, 8]\nlayers:\n  - conv: {filters: 4, kernel: 3}\n"
                          "  - maxpool: {size: 2}\n  - conv: {filters: 4, kernel: 5}\n")
    assert "layer 3 (conv): field 'kernel'" in msg
    assert "larger than the input height 3" in msg and "padding: same" in msg


def test_kernel_larger_than_padded_input(write_spec):
    msg = err(write_spec, "input: [3, 4, 4]\nlayers:\n  - conv: {filters: 4, kernel: 7, padding: 1}\n")
    assert "padded to 6" in msg


def test_same_padding_never_too_small(write_spec):
    spec = load_spec(write_spec("input: [3, 4, 4]\nlayers:\n  - conv: {filters: 4, kernel: 7, padding: same}\n"))
    assert spec.output_shape == (4, 4, 4)


def test_pool_window_too_large(write_spec):
    msg = err(write_spec, "input: [3, 2, 2]\nlayers:\n  - maxpool: {size: 3}\n")
    assert "layer 1 (maxpool): field 'size'" in msg


def test_groups_must_divide_channels(write_spec):
    msg = err(write_spec, "input: [3, 8, 8]\nlayers:\n  - conv: {filters: 4, kernel: 3, groups: 2}\n")
    assert "layer 1 (conv): field 'groups'" in msg and "does not divide the 3 input channels" in msg
    msg = err(write_spec, "input: [4, 8, 8]\nlayers:\n  - conv: {filters: 3, kernel: 3, groups: 2}\n")
    assert "does not divide filters=3" in msg


def test_dense_on_feature_map(write_spec):
    msg = err(write_spec, "input: [3, 8, 8]\nlayers:\n  - dense: 10\n")
    assert "layer 1 (dense)" in msg and "add 'flatten'" in msg


def test_conv_on_vector(write_spec):
    msg = err(write_spec, "input: [3, 8, 8]\nlayers:\n  - flatten\n  - conv: {filters: 2, kernel: 1}\n")
    assert "layer 2 (conv)" in msg and "[C, H, W]" in msg


@pytest.mark.parametrize("text,needle", [
    ("layers:\n  - flatten\n", "missing 'input"),
    ("input: [3, 8]\nlayers:\n  - flatten\n", "field 'input'"),
    ("input: [3, 8, 8]\nlayers: []\n", "field 'layers'"),
    ("input: [3, 8, 8]\nlayer:\n  - flatten\n", "did you mean 'layers'"),
    ("- conv\n", "must be a mapping"),
    ("input: [3, 8, 8]\nlayers:\n  - {conv: {filters: 1, kernel: 1}, flatten: null}\n", "exactly one key"),
    ("input: [3, 8, 8]\nlayers:\n  - conv: 3\n", "takes a mapping of fields"),
    ("input: [3, 8, 8]\nlayers:\n  - dropout: 1.5\n", "field 'rate'"),
])
def test_structural_errors(write_spec, text, needle):
    assert needle in err(write_spec, text)


def test_error_is_one_line(write_spec):
    msg = err(write_spec, "input: [3, 8, 8]\nlayers:\n  - conv: {filters: 4, kernel: 9}\n")
    assert "\n" not in msg


def test_replaced_layers_get_fresh_shapes(examples):
    """``dataclasses.replace`` on a spec walks the new layers: shapes never go stale."""
    import dataclasses

    spec = load_spec(examples / "geron_ex2.yaml")
    shorter = dataclasses.replace(spec, layers=spec.layers[:2])
    assert len(shorter.shapes) == 3 and shorter.output_shape == spec.shapes[2]
    smaller = dataclasses.replace(spec, input_shape=(3, 100, 150))
    assert smaller.shapes[0] == (3, 100, 150) and smaller.output_shape != spec.output_shape
    import torch

    from cnnlab.spec import build
    out = build(smaller, device="meta")(torch.empty(1, 3, 100, 150, device="meta"))
    assert tuple(out.shape[1:]) == smaller.output_shape     # a real forward pass agrees
    with pytest.raises(ValueError):
        dataclasses.replace(spec, shapes=spec.shapes)


@pytest.mark.parametrize("shape, fixed", [([200, 300, 3], "[3, 200, 300]"), ([28, 28, 1], "[1, 28, 28]")])
def test_keras_order_input_is_an_error_that_shows_the_fix(write_spec, shape, fixed):
    """Géron's book writes Keras' (H, W, C): read silently as C, H, W it gave 1,080,700 parameters."""
    path = write_spec(f"input: {shape}\nlayers:\n  - conv: {{filters: 8, kernel: 3}}\n")
    with pytest.raises(SpecError, match=r"Keras' \[height, width, channels\]") as err:
        load_spec(path)
    assert f"input: {fixed}" in str(err.value) and "field 'input'" in str(err.value)
    assert load_spec(write_spec(f"input: {fixed}\nlayers:\n  - conv: {{filters: 8, kernel: 3}}\n", "ok.yaml"))
