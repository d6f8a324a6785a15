"""Stochastic depth (Huang, Sun, Liu, Sedra & Weinberger, "Deep Networks with Stochastic Depth", 2016)."""

from __future__ import annotations

import torch
from torch import nn


class DropPath(nn.Module):
    """In training, zero a residual branch for a random ``p`` of the samples; scale the rest by ``1/(1-p)``.

    The same as ``torchvision.ops.StochasticDepth(p, "row")``, written out
    here because importing ``torchvision.ops`` costs about 2 s (it loads
    ``torch._dynamo``) and this is five lines. In eval mode it is the identity.
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:          # (B, ...)
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)  # one draw per sample
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"
