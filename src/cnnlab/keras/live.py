"""Keras installed: a Python builder's Keras model, converted through the same ``.keras`` reader.

The model is saved to a temporary ``.keras`` file and read back without
Keras, so a builder and a file give the same network. A custom layer (the
book's ``ResidualUnit``) has no graph in a file; here it can be traced: its
``call`` is run on a symbolic Keras tensor, which records the Keras layers and
``keras.ops`` it uses as a small functional model sharing its weights. That
model takes the custom layer's place before saving. A layer whose ``call``
cannot be traced (it reads values, or uses TensorFlow directly) is one line.
"""

from __future__ import annotations

import inspect
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from cnnlab.errors import TargetError

Shape = tuple[int, ...]


def prefer_torch_backend() -> None:
    """Keras 3 defaults to TensorFlow; cnnlab has PyTorch. Chosen before a user's module imports Keras."""
    if "keras" not in sys.modules:
        os.environ.setdefault("KERAS_BACKEND", "torch")


def is_keras_model(obj: object) -> bool:
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(obj, getattr(keras, "Model", ()))


def is_keras_builder(obj: Callable[..., Any]) -> bool:
    """A ``keras.applications`` builder (it takes ``weights=``; its default downloads ImageNet weights)."""
    module = getattr(obj, "__module__", "") or ""
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return False
    return module.startswith("keras") and "weights" in params


def _custom(layer: Any) -> bool:
    import keras

    return not type(layer).__module__.startswith("keras") and not isinstance(layer, keras.Model)


def _trace(layer: Any, target: str) -> Any:
    """A custom layer as a functional model of the layers and ops its ``call`` uses (weights shared)."""
    import keras

    try:
        inputs = keras.Input(batch_shape=tuple(layer.input.shape))
        outputs = layer.call(inputs)
        return keras.Model(inputs, outputs, name=layer.name)
    except Exception as err:  # noqa: BLE001 - whatever the user's call() raises on a symbolic tensor
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise TargetError(f"{target}: the custom layer '{layer.name}' ({type(layer).__name__}) cannot be traced "
                          f"({first}); build it from Keras layers and keras.ops only") from err


def inline_custom_layers(model: Any, target: str) -> Any:
    """``model`` with every custom layer replaced by its traced functional model (the same weights)."""
    import keras

    if not any(_custom(layer) for layer in model.layers):
        return model
    if type(model).__name__ not in ("Sequential", "Functional"):
        raise TargetError(f"{target}: a subclassed Keras model ({type(model).__name__}); build it with "
                          "keras.Sequential or the functional API (custom layers inside are fine)")
    try:
        return keras.models.clone_model(model, clone_function=lambda l: _trace(l, target) if _custom(l) else l)
    except TargetError:
        raise
    except Exception as err:  # noqa: BLE001 - Keras's own message, in one line
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise TargetError(f"{target}: cannot rebuild the model around its custom layers ({first})") from err


def convert_model(model: Any, target: str, input_shape: Shape | None = None):  # type: ignore[no-untyped-def]
    """A live Keras model -> :class:`cnnlab.keras.Converted` (saved to a temporary ``.keras``, read back)."""
    from cnnlab.keras import convert, read_keras

    model = inline_custom_layers(model, target)
    with tempfile.TemporaryDirectory(prefix="cnnlab-keras-") as folder:
        path = Path(folder) / "model.keras"
        try:
            model.save(path)
        except Exception as err:  # noqa: BLE001 - Keras refuses to serialize it
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            raise TargetError(f"{target}: Keras cannot save this model ({first})") from err
        keras_file = read_keras(path)
    converted = convert(replace(keras_file, path=target), input_shape)
    return replace(converted, name=str(getattr(model, "name", target.rpartition(":")[2])))
