"""A Keras classifier trained on PyTorch: ``cnnlab train --model model.keras``.

The network starts from the file's weights (fine-tuning; a new last layer when
the data has another number of classes). The engine's loss is cross-entropy
on logits, so the last Dense layer's softmax is left out while training, as
PyTorch classifiers are written. A run keeps the model's config and the shapes
of its variables, so it is rebuilt from its own folder (the checkpoint holds
the values), without the ``.keras`` file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from cnnlab.errors import CnnlabError, TargetError
from cnnlab.keras.archive import read_keras, weight_shapes, zero_weights
from cnnlab.keras.graph import KerasNetwork, build_network, read_graph, torch_shape

Shape = tuple[int, ...]


def _head(net: KerasNetwork) -> str:
    key = next((k for out, k, _ in net.plan if out == net.output_key), None)
    if key is None or net.kinds[key] != "Dense" or not isinstance(_linear(net.layers[key]), nn.Linear):
        raise CnnlabError(f"{net.keras_name}: the last layer must be a Dense layer on a vector (the classifier); "
                          f"it is {net.kinds.get(key or '', '?')}")
    return key


def _linear(module: nn.Module) -> nn.Module:
    return module[0] if isinstance(module, nn.Sequential) else module


def adapt_head(net: KerasNetwork, classes: int) -> str:
    """Logits for ``classes`` classes: the last Dense layer without its activation, new when the count differs.
    Returns what was done, for the run's log."""
    key = _head(net)
    linear = _linear(net.layers[key])
    dropped = isinstance(net.layers[key], nn.Sequential)
    if linear.out_features != classes:
        net.layers[key] = nn.Linear(linear.in_features, classes, bias=linear.bias is not None)
        what = f"new last layer '{net.names[key]}' for {classes} classes (the file's has {linear.out_features})"
    else:
        net.layers[key] = linear
        what = f"the file's weights, last layer '{net.names[key]}' included"
    return what + ("; its softmax is left out (the loss takes logits)" if dropped else "")


def keras_classifier(model: str, shape: Shape, classes: int, keras_text: str | None = None
                     ) -> tuple[nn.Module, dict[str, Any]]:
    """``(network, info)`` for training: from the ``.keras`` file, or rebuilt from a run's ``keras_text``."""
    if keras_text is not None:
        saved = json.loads(keras_text)
        config, shapes = saved["config"], saved["shapes"]
        net = build_network(config, zero_weights(shapes), model, shape)
    else:
        keras_file = read_keras(model)
        config, shapes = keras_file.config, weight_shapes(keras_file.weights)
        own = read_graph(config, model).keras_input
        if own is not None and len(own) == 3 and own[-1] is not None and own[-1] != shape[0]:
            raise CnnlabError(f"{model}: the model takes {own[-1]}-channel images, the data has {shape[0]} channels")
        try:
            net = build_network(config, keras_file.weights, model, shape)
        except TargetError as err:
            if own is not None and None not in own and tuple(torch_shape(own)) != tuple(shape):
                h, w = own[0], own[1]
                raise CnnlabError(f"{model} was built for {h}×{w} images and does not fit the data's {shape[1]}×"
                                  f"{shape[2]} ({str(err).split(': ', 1)[-1]}); resize the data with --size {h},{w}"
                                  ) from err
            raise
    head = adapt_head(net, classes)
    text = json.dumps({"config": config, "shapes": shapes})
    return net, {"kind": "keras", "name": Path(model).stem, "source": model, "keras_text": text, "head": head}
