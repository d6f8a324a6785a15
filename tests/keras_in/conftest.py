"""Keras models saved as .keras files, shared by the Keras tests (Keras 3 with the PyTorch backend)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")


@pytest.fixture(scope="session")
def tiny_keras(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small Keras classifier for 8×8 gray images (digits), 5 classes, softmax head: a .keras file."""
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(6, 3, padding="same", activation="relu"),
        keras.layers.BatchNormalization(),
        keras.layers.MaxPool2D(),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.25),
        keras.layers.Dense(5, activation="softmax", name="dense"),   # named: Keras counts names per process
    ], name="tiny")
    path = tmp_path_factory.mktemp("tiny") / "tiny.keras"
    model.save(path)
    return path
