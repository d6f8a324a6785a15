"""Local response normalization as AlexNet's paper writes it (Krizhevsky et al., 2012, §3.3)."""

from __future__ import annotations

from torch import nn

from cnnlab.vocab import LRN_PAPER


def paper_lrn(size: int = LRN_PAPER["n"], alpha: float = LRN_PAPER["alpha"], beta: float = LRN_PAPER["beta"],
              k: float = LRN_PAPER["k"]) -> nn.LocalResponseNorm:
    """LRN with the paper's constants: ``b = a / (k + α Σ a²)^β`` over ``size`` neighbouring channels.

    PyTorch's ``nn.LocalResponseNorm`` divides ``alpha`` by ``size``
    (``b = a / (k + α/n Σ a²)^β``), so the paper's ``α = 10⁻⁴`` becomes
    ``alpha = size · 10⁻⁴`` here. AlexNet used ``k=2, n=5, α=10⁻⁴, β=0.75``
    and reported −1.4 % top-1 error from it; later work (VGG, §4.1) found no gain.
    """
    return nn.LocalResponseNorm(size, alpha=alpha * size, beta=beta, k=k)
