"""Keras 3 itself (PyTorch backend, no TensorFlow) is the oracle: every converted network has Keras's parameter
count, Keras's per-layer shapes (channels first) and Keras's outputs on the same input, within 1e-4."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras", reason="Keras 3 is a test extra: pip install -e '.[test]'")
from keras import layers as L  # noqa: E402

from cnnlab.analysis import analyze  # noqa: E402
from cnnlab.keras import load_keras, torch_shape  # noqa: E402
from cnnlab.keras.live import convert_model  # noqa: E402
from cnnlab.targets import resolve_target  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BOOK_PATH = ROOT / "examples" / "keras" / "book.py"


def _book():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("cnnlab_test_book", BOOK_PATH)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _randomize_statistics(model) -> None:  # type: ignore[no-untyped-def]
    """Moving means and variances away from 0 and 1, so a misplaced statistic changes the output."""
    rng = np.random.default_rng(0)
    for layer in _all_layers(model):
        if isinstance(layer, L.BatchNormalization):
            layer.moving_mean.assign(rng.normal(0, 0.5, layer.moving_mean.shape).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, layer.moving_variance.shape).astype("float32"))
            if layer.gamma is not None:
                layer.gamma.assign(rng.uniform(0.5, 1.5, layer.gamma.shape).astype("float32"))


def _all_layers(model):  # type: ignore[no-untyped-def]
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def kitchen_sink() -> keras.Model:
    """Every other 2-D layer cnnlab converts, with Keras's awkward cases: even kernels and strides under "same",
    a flatten that does not go into a dense layer, a dense layer on a feature map, a nested model."""
    inp = keras.Input((21, 18, 3))
    x = L.Rescaling(1 / 255.0, offset=-0.5)(inp)
    x = L.Normalization(mean=[0.1, -0.2, 0.3], variance=[1.5, 0.5, 2.0])(x)
    x = L.ZeroPadding2D(((1, 2), (0, 3)))(x)
    x = L.Conv2D(8, 4, strides=2, padding="same", dilation_rate=1)(x)
    x = L.LeakyReLU(negative_slope=0.1)(x)
    a = L.Conv2D(8, 3, padding="same", groups=2, activation="elu")(x)
    b = L.Conv2D(8, 3, padding="same", dilation_rate=2, activation="gelu")(x)
    x = L.Concatenate()([L.Subtract()([a, b]), L.Maximum()([a, b]), L.Average()([a, b])])
    x = L.BatchNormalization(center=False)(x)
    x = L.PReLU(shared_axes=[1, 2])(x)
    x = L.ReLU(max_value=4.0, threshold=0.1, negative_slope=0.05)(x)
    x = keras.ops.maximum(-0.5, x)                              # a constant first: a keras.ops node
    inner = keras.Sequential([L.DepthwiseConv2D(5, strides=2, padding="same", depth_multiplier=2),
                              L.BatchNormalization(scale=False), L.Activation("swish")], name="inner")
    x = inner(x)
    x = L.SpatialDropout2D(0.2)(x)
    x = L.Cropping2D(((1, 0), (0, 1)))(x)
    x = L.UpSampling2D(2)(x)
    x = L.AveragePooling2D(3, strides=2, padding="same")(x)
    x = L.MaxPooling2D(2, padding="same")(x)
    x = L.Dense(6, activation="tanh")(x)                       # per pixel, as Keras does on a feature map
    g = L.GlobalMaxPooling2D(keepdims=True)(x)
    x = L.Multiply()([x, g])
    flat = L.Flatten()(x)
    r = L.Reshape((6, -1))(flat)                               # Keras order: the flatten must stay Keras's
    r = L.Softmax(axis=1)(r)
    r = L.Flatten()(r)
    out = L.Dense(5, activation="sigmoid")(L.Concatenate()([r, L.GlobalAveragePooling2D()(x)]))
    return keras.Model(inp, out, name="kitchen_sink")


def sequence_model() -> keras.Model:
    """The 1-D forms: Conv1D (same, causal, strided), its pooling and global pooling."""
    inp = keras.Input((37, 4))
    x = L.Conv1D(8, 4, strides=2, padding="same", activation="relu")(inp)
    x = L.Conv1D(8, 3, padding="causal", dilation_rate=2)(x)
    x = L.SeparableConv1D(6, 3, padding="same")(x)
    x = L.DepthwiseConv1D(3, strides=2, padding="same", depth_multiplier=2)(x) / 3.0 - 1.5   # keras.ops nodes
    x = L.MaxPooling1D(3, strides=2, padding="same")(x)
    x = L.AveragePooling1D(2)(x)
    x = L.ZeroPadding1D(2)(x)
    out = L.Dense(3)(L.GlobalAveragePooling1D()(x))
    return keras.Model(inp, out, name="sequence")


APPLICATIONS = {   # keras.applications with weights=None, at small inputs (the parameter count does not change)
    "ResNet50": (64, 64, 3),
    "Xception": (71, 71, 3),
    "EfficientNetB0": (64, 64, 3),
}

KERAS_COUNTS = {"ResNet50": 25_636_712}   # keras.io/api/applications: 25.6 M parameters


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[object, Path]]:
    """Each network built in Keras (seeded), statistics randomised, saved as .keras."""
    keras.utils.set_random_seed(0)
    book = _book()
    folder = tmp_path_factory.mktemp("keras")
    models = {"exercise": book.exercise(), "fashion_cnn": book.fashion_cnn(),
              "resnet34": book.resnet34_functional(64), "kitchen_sink": kitchen_sink(), "sequence": sequence_model()}
    for name, shape in APPLICATIONS.items():
        models[name] = getattr(keras.applications, name)(weights=None, input_shape=shape)
    out = {}
    for name, model in models.items():
        _randomize_statistics(model)
        path = folder / f"{name}.keras"
        model.save(path)
        out[name] = (model, path)
    return out


def _keras_output(model, x: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    y = model(x, training=False)
    return keras.ops.convert_to_numpy(y)


def _ours(network: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    t = torch.from_numpy(x)
    t = t.permute(0, 3, 1, 2) if t.dim() == 4 else t.permute(0, 2, 1)
    with torch.no_grad():
        y = network.eval()(t)
    return (y.movedim(1, -1) if y.dim() > 2 else y).numpy()    # back to Keras's channels-last order


@pytest.mark.slow
@pytest.mark.parametrize("name", ["exercise", "fashion_cnn", "resnet34", "kitchen_sink", "sequence",
                                  *APPLICATIONS])
def test_parameters_shapes_and_outputs_equal_keras(saved, name: str) -> None:
    model, path = saved[name]
    converted = load_keras(path)
    total, trainable = converted.network.keras_count()
    assert total == model.count_params()
    assert trainable == sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    if name in KERAS_COUNTS:
        assert total == KERAS_COUNTS[name]
    # every layer's output shape, channels first
    report = analyze(converted.network, converted.input_shape)
    rows = {row.name: row.output_shape for row in report.layers}
    for layer in model.layers:
        if isinstance(layer, L.InputLayer):
            continue
        assert rows[layer.name] == torch_shape(tuple(layer.output.shape[1:])), layer.name
    # the outputs, same weights, same random input
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (2, *model.input_shape[1:])).astype("float32")
    if name == "kitchen_sink":
        x *= 255
    expected, got = _keras_output(model, x), _ours(converted.network, x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_the_books_residual_unit_is_traced_from_its_builder(tmp_path: Path) -> None:
    """The book's ResNet-34 made of its custom ResidualUnit layer: from the Python builder (Keras installed),
    the custom layer is traced into Keras layers and ops; the numbers equal Keras's."""
    keras.utils.set_random_seed(0)
    target = resolve_target(f"{BOOK_PATH}:resnet34")
    book = _book()
    model = book.resnet34()
    assert target.network.keras_count()[0] == model.count_params() == 21_306_826
    assert target.input_shape == (3, 224, 224)
    report = analyze(target.network, target.input_shape)
    assert report.total_params == sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert report.layers[-1].output_shape == (10,)
    # the outputs: the traced units compute what the book's ResidualUnit.call computes (statistics randomised)
    small = book.resnet34(64)
    _randomize_statistics(small)
    traced = convert_model(small, "book.py:resnet34").network
    x = np.random.default_rng(3).uniform(0, 1, (2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(_ours(traced, x), _keras_output(small, x), atol=1e-4, rtol=1e-4)


def test_a_custom_layer_in_a_keras_file_is_one_line(tmp_path: Path) -> None:
    book = _book()
    path = tmp_path / "r34.keras"
    book.resnet34(32).save(path)
    with pytest.raises(Exception) as err:
        load_keras(path)
    message = str(err.value)
    assert "residual_unit" in message and "ResidualUnit" in message and "custom layer" in message
    assert "\n" not in message


def test_keras_applications_builders_never_download(monkeypatch: pytest.MonkeyPatch) -> None:
    """keras.applications:ResNet50 as a TARGET is built with weights=None (its default would download)."""
    def no_download(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(keras.utils, "get_file", no_download)
    target = resolve_target("keras.applications:MobileNetV2")
    assert target.network.keras_count()[0] == keras.applications.MobileNetV2(weights=None).count_params()
    assert any("weights=None" in note for note in target.notes)


def test_a_model_of_any_size_takes_input_and_odd_graphs_are_one_line(tmp_path: Path) -> None:
    inp = keras.Input((None, None, 3))
    any_size = keras.Model(inp, L.GlobalAveragePooling2D()(L.Conv2D(4, 3, strides=2, padding="same")(inp)))
    any_size.save(tmp_path / "any.keras")
    with pytest.raises(Exception, match=r"takes inputs of any size \(\?×\?×3, channels last\); give one as --input"):
        load_keras(tmp_path / "any.keras")
    assert load_keras(tmp_path / "any.keras", (3, 45, 31)).network.keras_count()[0] == any_size.count_params()
    a, b = keras.Input((8, 8, 3)), keras.Input((8, 8, 3))
    keras.Model([a, b], L.Add()([a, b])).save(tmp_path / "two.keras")
    with pytest.raises(Exception, match="several inputs; cnnlab converts networks with one image input"):
        load_keras(tmp_path / "two.keras")


def test_a_custom_layer_that_cannot_be_traced_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "odd.py").write_text('''
import keras

class Peek(keras.layers.Layer):
    def call(self, x):
        if float(keras.ops.convert_to_numpy(keras.ops.sum(x))) > 0:   # reads a value: no graph
            return x
        return -x

def build():
    return keras.Sequential([keras.Input((4, 4, 1)), Peek(name="peek"), keras.layers.Flatten()])
''')
    with pytest.raises(Exception) as err:
        resolve_target(f"{tmp_path / 'odd.py'}:build")
    message = str(err.value)
    assert "the custom layer 'peek' (Peek) cannot be traced" in message and "\n" not in message


def test_a_training_step_moves_batch_norm_statistics_as_keras_does(tmp_path: Path) -> None:
    """Keras's momentum 0.99 keeps 99 % of the old average (PyTorch's momentum 0.01) and moves it with the biased
    batch variance; frozen (trainable=False) batch norm stays in inference mode while training."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((5, 4, 3))
    x = L.BatchNormalization(momentum=0.9, epsilon=0.01, name="bn")(inp)
    frozen = L.BatchNormalization(name="frozen")
    frozen.trainable = False
    out = frozen(L.Conv2D(2, 1)(x))
    model = keras.Model(inp, out)
    _randomize_statistics(model)
    model.save(tmp_path / "bn.keras")
    net = load_keras(tmp_path / "bn.keras").network.train()
    x = np.random.default_rng(2).normal(1.0, 2.0, (4, 5, 4, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(model(x, training=True))
    got = net(torch.from_numpy(x).permute(0, 3, 1, 2)).detach().movedim(1, -1).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    bn, bn_ours = model.get_layer("bn"), net.layers["bn"]
    np.testing.assert_allclose(bn_ours.running_mean.numpy(), keras.ops.convert_to_numpy(bn.moving_mean), atol=1e-6)
    np.testing.assert_allclose(bn_ours.running_var.numpy(), keras.ops.convert_to_numpy(bn.moving_variance), atol=1e-6)
    assert not net.layers["frozen"].training
