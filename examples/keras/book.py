"""The chapter's networks as the book writes them, in Keras 3 (Géron, Hands-On Machine Learning, chapter 14).

cnnlab reads them with Keras installed (``pip install -e ".[keras]"``;
cnnlab picks ``KERAS_BACKEND=torch`` unless you chose one)::

    cnnlab analyze examples/keras/book.py:exercise --batch 50 --explain
    cnnlab analyze examples/keras/book.py:resnet34
    cnnlab memory examples/keras/book.py:fashion_cnn --batch 64

or saved as a ``.keras`` file, read without Keras::

    KERAS_BACKEND=torch python -c "import examples.keras.book as b; b.exercise().save('ex2.keras')"
    cnnlab analyze ex2.keras --explain
"""

from functools import partial

import keras


def exercise() -> keras.Model:
    """Exercise 2: three 3×3 convolutions, stride 2, "same" padding, 100/200/400 maps, on 200×300 RGB images."""
    return keras.Sequential([
        keras.Input(shape=(200, 300, 3)),
        keras.layers.Conv2D(100, kernel_size=3, strides=2, padding="same", activation="relu", name="conv1"),
        keras.layers.Conv2D(200, kernel_size=3, strides=2, padding="same", activation="relu", name="conv2"),
        keras.layers.Conv2D(400, kernel_size=3, strides=2, padding="same", activation="relu", name="conv3"),
    ], name="geron_ex2")


DefaultConv2D = partial(keras.layers.Conv2D, kernel_size=3, padding="same", activation="relu",
                        kernel_initializer="he_normal")


def fashion_cnn() -> keras.Model:
    """The chapter's Fashion-MNIST CNN (about 92 % test accuracy in the book)."""
    return keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        DefaultConv2D(filters=64, kernel_size=7),
        keras.layers.MaxPool2D(),
        DefaultConv2D(filters=128),
        DefaultConv2D(filters=128),
        keras.layers.MaxPool2D(),
        DefaultConv2D(filters=256),
        DefaultConv2D(filters=256),
        keras.layers.MaxPool2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(units=128, activation="relu", kernel_initializer="he_normal"),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(units=64, activation="relu", kernel_initializer="he_normal"),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(units=10, activation="softmax"),
    ], name="fashion_cnn")


RConv2D = partial(keras.layers.Conv2D, kernel_size=3, strides=1, padding="same", kernel_initializer="he_normal",
                  use_bias=False)


class ResidualUnit(keras.layers.Layer):
    """The book's residual unit: a custom layer (cnnlab traces its ``call`` into Keras layers and ops)."""

    def __init__(self, filters: int, strides: int = 1, activation: str = "relu", **kwargs) -> None:
        super().__init__(**kwargs)
        self.activation = keras.activations.get(activation)
        self.main_layers = [
            RConv2D(filters, strides=strides),
            keras.layers.BatchNormalization(),
            self.activation,
            RConv2D(filters),
            keras.layers.BatchNormalization(),
        ]
        self.skip_layers = []
        if strides > 1:
            self.skip_layers = [
                RConv2D(filters, kernel_size=1, strides=strides),
                keras.layers.BatchNormalization(),
            ]

    def call(self, inputs):
        Z = inputs
        for layer in self.main_layers:
            Z = layer(Z)
        skip_Z = inputs
        for layer in self.skip_layers:
            skip_Z = layer(skip_Z)
        return self.activation(Z + skip_Z)


STAGES = [64] * 3 + [128] * 4 + [256] * 6 + [512] * 3   # ResNet-34: 3, 4, 6 and 3 residual units


def resnet34(size: int = 224, classes: int = 10) -> keras.Model:
    """The book's ResNet-34, built from its ResidualUnit layer (a .keras file of it needs the class: use this)."""
    model = keras.Sequential([
        keras.Input(shape=(size, size, 3)),
        RConv2D(64, kernel_size=7, strides=2),
        keras.layers.BatchNormalization(),
        keras.layers.Activation("relu"),
        keras.layers.MaxPool2D(pool_size=3, strides=2, padding="same"),
    ], name="resnet34")
    prev_filters = 64
    for filters in STAGES:
        strides = 1 if filters == prev_filters else 2
        model.add(ResidualUnit(filters, strides=strides))
        prev_filters = filters
    model.add(keras.layers.GlobalAvgPool2D())
    model.add(keras.layers.Flatten())
    model.add(keras.layers.Dense(classes, activation="softmax"))
    return model


def residual_unit(x, filters: int, strides: int = 1):
    """The same residual unit as a function of Keras tensors: a functional model saves it as plain layers."""
    z = RConv2D(filters, strides=strides)(x)
    z = keras.layers.BatchNormalization()(z)
    z = keras.layers.Activation("relu")(z)
    z = RConv2D(filters)(z)
    z = keras.layers.BatchNormalization()(z)
    skip = x
    if strides > 1:
        skip = RConv2D(filters, kernel_size=1, strides=strides)(x)
        skip = keras.layers.BatchNormalization()(skip)
    return keras.layers.Activation("relu")(keras.layers.Add()([z, skip]))


def resnet34_functional(size: int = 224, classes: int = 10) -> keras.Model:
    """ResNet-34 with the functional residual unit: its .keras file is read without Keras."""
    inputs = keras.Input(shape=(size, size, 3))
    x = RConv2D(64, kernel_size=7, strides=2)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.MaxPool2D(pool_size=3, strides=2, padding="same")(x)
    prev_filters = 64
    for filters in STAGES:
        x = residual_unit(x, filters, strides=1 if filters == prev_filters else 2)
        prev_filters = filters
    x = keras.layers.GlobalAvgPool2D()(x)
    outputs = keras.layers.Dense(classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="resnet34_functional")
