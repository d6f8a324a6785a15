"""Build a validated :class:`NetworkSpec` into a ``torch.nn.Module``."""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.spec.network import NetworkSpec


class SpecNet(nn.Module):
    """A sequential network built from a spec; one block per spec layer.

    ``blocks[i]`` implements spec layer ``i + 1`` (a convolution and its
    activation are one block, as in Keras), so analysis reports one row per
    spec layer.
    """

    def __init__(self, spec: NetworkSpec) -> None:
        super().__init__()
        self.spec = spec
        self.blocks = nn.ModuleList(
            layer.build(shape) for layer, shape in zip(spec.layers, spec.shapes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, *input_shape) -> (B, *output_shape)
        for block in self.blocks:
            x = block(x)
        return x

    def analysis_layers(self) -> list[tuple[str, str, nn.Module]]:
        """``(name, type, module)`` per spec layer: what ``analyze`` reports."""
        return [(name, layer.TYPE, block) for name, layer, block
                in zip(self.spec.layer_names(), self.spec.layers, self.blocks)]


def build(spec: NetworkSpec, device: torch.device | str | None = None) -> SpecNet:
    """Build ``spec``; ``device="meta"`` allocates no parameter memory."""
    if device is None:
        return SpecNet(spec)
    with torch.device(device):
        return SpecNet(spec)
