"""Hypothesis strategies: random valid sequential specs covering every layer type."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from cnnlab.layers.activations import ACTIVATION_NAMES
from cnnlab.spec import parse_layer
from cnnlab.spec.layers import LAYER_TYPES, LayerProblem

IMAGE_ONLY = {"conv", "depthwise_conv", "separable_conv", "maxpool", "avgpool", "global_avgpool",
              "global_maxpool", "lrn"}


@st.composite
def layer_entry(draw: st.DrawFn, kind: str) -> Any:
    """One ``layers:`` entry of type ``kind`` with random fields."""
    small = st.integers(1, 4)
    pad = st.one_of(st.sampled_from(["same", "valid"]), st.integers(0, 2))
    act = st.sampled_from([a for a in ACTIVATION_NAMES if a != "softmax"])
    if kind == "conv":
        groups = draw(st.sampled_from([1, 1, 2]))
        return {"conv": {"filters": groups * draw(small), "kernel": draw(st.integers(1, 4)),
                         "stride": draw(st.integers(1, 3)), "padding": draw(pad),
                         "dilation": draw(st.integers(1, 2)), "groups": groups,
                         "bias": draw(st.booleans()), "activation": draw(act)}}
    if kind == "depthwise_conv":
        return {kind: {"kernel": [draw(st.integers(1, 3)), draw(st.integers(1, 3))],
                       "stride": draw(st.integers(1, 2)), "padding": draw(pad),
                       "depth_multiplier": draw(st.integers(1, 2)), "bias": draw(st.booleans())}}
    if kind == "separable_conv":
        return {kind: {"filters": draw(small), "kernel": draw(st.integers(1, 3)),
                       "stride": draw(st.integers(1, 2)), "padding": draw(pad),
                       "dilation": draw(st.integers(1, 2)), "activation": draw(act)}}
    if kind in ("maxpool", "avgpool"):
        return {kind: {"size": draw(st.integers(1, 3)), "stride": draw(st.integers(1, 3)),
                       "padding": draw(st.sampled_from(["same", "valid"]))}}
    if kind == "dense":
        return {"dense": {"units": draw(st.integers(1, 6)), "activation": draw(act),
                          "bias": draw(st.booleans())}}
    if kind == "dropout":
        return {"dropout": draw(st.floats(0, 0.9))}
    if kind == "lrn":
        return {"lrn": {"size": draw(st.integers(1, 5))}}
    if kind == "activation":
        return {"activation": draw(act)}
    return kind  # flatten, global pools, batchnorm


@st.composite
def specs(draw: st.DrawFn, must_have: str | None = None) -> dict[str, Any]:
    """A valid spec dict; ``must_have`` forces one layer of that type in."""
    shape: tuple[int, ...] = (draw(st.integers(1, 4)), draw(st.integers(3, 20)), draw(st.integers(3, 20)))
    input_shape = shape
    entries: list[Any] = []
    n_layers = draw(st.integers(1, 6))
    forced_at = draw(st.integers(0, n_layers - 1)) if must_have else -1
    for i in range(n_layers):
        kinds = [k for k in LAYER_TYPES if len(shape) == 3 or k not in IMAGE_ONLY]
        kind = must_have if i == forced_at else draw(st.sampled_from(kinds))
        if must_have in IMAGE_ONLY and i < forced_at:
            kinds = [k for k in kinds if k not in ("flatten", "global_avgpool", "global_maxpool")]
            kind = draw(st.sampled_from(kinds))
        if kind == "dense" and len(shape) == 3:
            entries.append("flatten")
            shape = (shape[0] * shape[1] * shape[2],)
        entry = draw(layer_entry(kind))
        layer = parse_layer(entry, i + 1)
        try:
            shape = layer.output_shape(shape)
        except LayerProblem:
            continue  # e.g. a kernel that does not fit what is left: skip this layer
        entries.append(entry)
    if not entries:
        entries.append("flatten")
    return {"input": list(input_shape), "layers": entries}
