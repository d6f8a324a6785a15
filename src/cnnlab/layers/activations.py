"""Activation functions by name, as specs and the zoo spell them."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

# One place that maps a spec's activation name to a torch module factory.
# Names follow Keras where they differ from PyTorch's class names ("swish").
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "mish": nn.Mish,
    "hard_swish": nn.Hardswish,
    "hard_sigmoid": nn.Hardsigmoid,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "softplus": nn.Softplus,
    "softmax": lambda: nn.Softmax(dim=1),
}

ACTIVATION_NAMES: tuple[str, ...] = ("none", *ACTIVATIONS)


def activation_name(value: object) -> str:
    """Validate an activation name (``none``, or Keras's ``linear``, means identity)."""
    if isinstance(value, str) and value.lower() == "linear":   # Keras's name for the identity
        return "none"
    if not isinstance(value, str) or value.lower() not in ACTIVATION_NAMES:
        raise ValueError(f"must be one of {', '.join(ACTIVATION_NAMES)} (got {value!r})")
    return value.lower()


def make_activation(name: str) -> nn.Module | None:
    """A fresh activation module, or ``None`` for ``none``."""
    return None if name == "none" else ACTIVATIONS[name]()
