"""Architecture remedies for a spec network that does not fit: a larger stride, or one layer fewer.

Géron's exercise lists them beside the cheaper remedies: they change the
model (retrain, accuracy risk), but they can shrink the activations — the
bulk of a CNN's training memory — by far more than anything else. For a spec
network every candidate is a real spec (re-validated: shapes must still work)
whose training step is predicted like any other, so the figure is the same
kind of figure as the rest of ``cnnlab fit``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from cnnlab.errors import CnnlabError
from cnnlab.spec import NetworkSpec

STRIDED = ("conv", "depthwise_conv", "separable_conv", "maxpool", "avgpool")
REMOVABLE = ("conv", "depthwise_conv", "separable_conv", "maxpool", "avgpool", "dense", "lrn")
WEIGHTED = ("conv", "depthwise_conv", "separable_conv", "dense")
FOLLOWERS = ("batchnorm", "activation")      # the separate layers that belong to the weighted layer before them


@dataclass
class Candidate:
    """One changed network and its predicted training peak."""

    kind: str                    # "larger stride" or "remove layer"
    layer: str                   # display name of the changed layer
    index: int                   # 1-based layer number in the spec
    change: str                  # e.g. "stride 2 -> 3"
    spec: NetworkSpec
    peak_bytes: int
    params: int
    layer_output: tuple[int, ...] | None   # the changed layer's new output shape (None when removed)
    output: tuple[int, ...]
    changed: tuple[int, ...] = ()          # 0-based spec layers restrided (one) or removed (one or two)

    def details(self, before: NetworkSpec) -> dict[str, Any]:
        return {"layer": self.layer, "layer_number": self.index, "change": self.change,
                "layer_output_shape": list(self.layer_output) if self.layer_output else None,
                "output_shape": list(self.output), "output_shape_before": list(before.output_shape),
                "params": self.params, "params_before": before.total_params(),
                "shapes": [list(s) for s in self.spec.shapes]}


def _variants(spec: NetworkSpec) -> list[tuple[str, int, str, NetworkSpec, tuple[int, ...] | None]]:
    names = spec.layer_names()
    out = []
    for i, layer in enumerate(spec.layers):
        if layer.TYPE in STRIDED:
            # a pool without an explicit stride steps by its window (its ``step``)
            sh, sw = getattr(layer, "step", None) or layer.stride  # type: ignore[attr-defined]
            changed = replace(layer, stride=(sh + 1, sw + 1))  # type: ignore[call-arg]
            new = _respec(spec, spec.layers[:i] + (changed,) + spec.layers[i + 1:])
            if new is not None:
                out.append(("larger stride", i, f"stride {sh} -> {sh + 1}" if sh == sw else
                            f"stride {sh}×{sw} -> {sh + 1}×{sw + 1}", new, new.shapes[i + 1]))
        if layer.TYPE in REMOVABLE and _can_remove(spec, i):
            gone = removal(spec, i)
            new = _respec(spec, tuple(x for k, x in enumerate(spec.layers) if k not in gone))
            if new is not None:
                out.append(("remove layer", i, f"remove {_removed_text(spec, gone)}", new, None))
    return out


def removal(spec: NetworkSpec, i: int) -> tuple[int, ...]:
    """The layers that go when layer ``i`` goes: a convolution or dense layer takes the batch norms and activations
    written after it as separate layers (Keras style) with it — left behind, they would normalise and rectify
    whatever came before (the raw image, for a first convolution)."""
    if spec.layers[i].TYPE not in WEIGHTED:
        return (i,)
    end = i + 1
    while end < len(spec.layers) and spec.layers[end].TYPE in FOLLOWERS:
        end += 1
    return tuple(range(i, end))


def _removed_text(spec: NetworkSpec, gone: tuple[int, ...]) -> str:
    names = spec.layer_names()
    first, rest = gone[0], gone[1:]
    return f"{names[first]} ({spec.layers[first].TYPE}" + (f", with {', '.join(names[k] for k in rest)})" if rest
                                                           else ")")


def _can_remove(spec: NetworkSpec, i: int) -> bool:
    """Every removable layer may go, except a dense output layer: it produces the classes."""
    return i < len(spec.layers) - 1 or spec.layers[i].TYPE != "dense"


def pair_candidates(spec: NetworkSpec, predict: Callable[[NetworkSpec], int], limit: int = 45) -> list[Candidate]:
    """Every valid removal of two layers (at most ``limit`` pairs, nearest first), best first.

    Géron's remedy is "remove one or more layers": when no single removal is
    enough, the best pair is the next answer.
    """
    names = spec.layer_names()
    singles = [i for i, layer in enumerate(spec.layers) if layer.TYPE in REMOVABLE and _can_remove(spec, i)]
    pairs = sorted(((a, b) for k, a in enumerate(singles) for b in singles[k + 1:]), key=lambda p: p[1] - p[0])
    found = []
    for a, b in pairs[:limit]:
        gone = removal(spec, a) + removal(spec, b)
        new = _respec(spec, tuple(layer for k, layer in enumerate(spec.layers) if k not in gone))
        if new is not None:
            found.append(Candidate("remove layers", f"{names[a]} and {names[b]}", a + 1,
                                   f"remove {_removed_text(spec, removal(spec, a))} and "
                                   f"{_removed_text(spec, removal(spec, b))}", new, predict(new), new.total_params(),
                                   None, new.output_shape, gone))
    return sorted(found, key=lambda c: c.peak_bytes)


def _respec(spec: NetworkSpec, layers: tuple) -> NetworkSpec | None:  # type: ignore[type-arg]
    """The spec with other layers, re-validated; ``None`` when its shapes no longer work."""
    try:
        return replace(spec, layers=layers)
    except CnnlabError:
        return None


def architecture_candidates(spec: NetworkSpec, predict: Callable[[NetworkSpec], int]) -> list[Candidate]:
    """Every valid one-layer stride increase and one-layer removal, with its predicted peak, best first."""
    names = spec.layer_names()
    found = []
    for kind, i, change, new, layer_out in _variants(spec):
        found.append(Candidate(kind, names[i], i + 1, change, new, predict(new), new.total_params(),
                               layer_out, new.output_shape, (i,) if kind == "larger stride" else removal(spec, i)))
    return sorted(found, key=lambda c: c.peak_bytes)


def gentlest_fitting(candidates: list[Candidate], usable: int) -> Candidate | None:
    """The candidate that fits ``usable`` bytes with the least change — the largest predicted peak within it (then
    the most parameters); the smallest peak when none fits; ``None`` for no candidate."""
    fitting = [c for c in candidates if c.peak_bytes <= usable]
    if fitting:
        return max(fitting, key=lambda c: (c.peak_bytes, c.params))
    return min(candidates, key=lambda c: c.peak_bytes, default=None)
