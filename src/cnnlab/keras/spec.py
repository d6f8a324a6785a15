"""A Sequential Keras model as a cnnlab spec, where every layer has a spec twin.

``cnnlab analyze --explain`` writes its derivation from spec layers (the
parameter formula ``(3×3×3 + 1) × 100``, the padding rule ``ceil(200/2)``).
A Keras ``Sequential`` model of Conv2D, DepthwiseConv2D, SeparableConv2D,
pooling, Flatten, Dense, Dropout, BatchNormalization and Activation layers is
such a spec, under the Keras layers' own names; any other model keeps the
module rows of its :class:`~cnnlab.keras.graph.KerasNetwork`.
"""

from __future__ import annotations

from typing import Any

from cnnlab.errors import CnnlabError
from cnnlab.layers.activations import ACTIVATION_NAMES
from cnnlab.spec import NetworkSpec
from cnnlab.spec import layers as S

# Keras activations with the same meaning under the spec's name ("leaky_relu" is not: Keras's slope is 0.2)
SAME_ACTIVATIONS = (set(ACTIVATION_NAMES) - {"leaky_relu", "none"}) | {"linear"}


def _act(value: Any) -> str:
    if not isinstance(value, str) or value not in SAME_ACTIVATIONS:
        raise ValueError(value)
    return "none" if value == "linear" else value


def _pair(value: Any) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _spec_layer(kind: str, c: dict[str, Any]) -> S.LayerSpec:   # noqa: C901 - one branch per layer kind
    name = str(c["name"])
    if kind in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D"):
        conv = {"kernel": _pair(c.get("kernel_size")), "stride": _pair(c.get("strides", 1)),
                "padding": str(c.get("padding", "valid")), "dilation": _pair(c.get("dilation_rate", 1)),
                "bias": bool(c.get("use_bias", True)), "activation": _act(c.get("activation", "linear"))}
    if kind == "Conv2D":
        return S.Conv(name=name, filters=int(c["filters"]), groups=int(c.get("groups", 1) or 1), **conv)
    if kind == "DepthwiseConv2D":
        return S.DepthwiseConv(name=name, depth_multiplier=int(c.get("depth_multiplier", 1)), **conv)
    if kind == "SeparableConv2D":
        return S.SeparableConv(name=name, filters=int(c["filters"]), depth_multiplier=int(c.get("depth_multiplier", 1)),
                               **conv)
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        cls = S.MaxPool if kind.startswith("Max") else S.AvgPool
        size = _pair(c.get("pool_size", 2))
        return cls(name=name, size=size, stride=_pair(c.get("strides") or size), padding=str(c.get("padding", "valid")))
    if kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D") and not c.get("keepdims"):
        return (S.GlobalAvgPool if "Average" in kind else S.GlobalMaxPool)(name=name)
    if kind == "Flatten":
        return S.Flatten(name=name)
    if kind == "Dense":
        return S.Dense(name=name, units=int(c["units"]), bias=bool(c.get("use_bias", True)),
                       activation=_act(c.get("activation", "linear")))
    if kind == "Dropout" and c.get("noise_shape") is None:
        return S.Dropout(name=name, rate=float(c.get("rate", 0.0)))
    if (kind == "BatchNormalization" and c.get("center", True) and c.get("scale", True)
            and c.get("axis", -1) in (-1, 3, [3])):
        return S.BatchNorm(name=name, eps=float(c.get("epsilon", 1e-3)), momentum=1 - float(c.get("momentum", 0.99)))
    if kind == "Activation":
        return S.Activation(name=name, function=_act(c.get("activation")))
    if kind == "ReLU" and not c.get("max_value") and not c.get("negative_slope") and not c.get("threshold"):
        return S.Activation(name=name, function="relu")
    raise ValueError(kind)


def spec_twin(kind: str, config: dict[str, Any], in_shape: tuple[int, ...]) -> S.LayerSpec | None:
    """The spec layer a Keras layer is (same parameters and shape on ``in_shape``), or ``None``."""
    try:
        twin = _spec_layer(kind, config)
        twin.output_shape(in_shape)
        return twin
    except (ValueError, KeyError, TypeError, CnnlabError, S.LayerProblem):
        return None


def as_spec(config: dict[str, Any], input_shape: tuple[int, ...], source: str) -> NetworkSpec | None:
    """The spec of a Sequential Keras model (``config.json``'s content), or ``None`` when a layer has no twin."""
    if config.get("class_name") != "Sequential" or len(input_shape) != 3:
        return None
    entries = [e for e in (config.get("config") or {}).get("layers", []) if e.get("class_name") != "InputLayer"]
    try:
        layers = tuple(_spec_layer(str(e.get("class_name")), e.get("config") or {}) for e in entries)
        return NetworkSpec(input_shape=tuple(input_shape), layers=layers,
                           name=str((config.get("config") or {}).get("name", "keras")), source=source)
    except (ValueError, KeyError, TypeError, CnnlabError):
        return None
