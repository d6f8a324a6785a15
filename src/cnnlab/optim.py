"""The one optimizer factory: what ``--optimizer NAME`` means in every command (see :mod:`cnnlab.vocab`)."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from cnnlab.errors import CnnlabError
from cnnlab.vocab import DEFAULT_LR, OPTIMIZERS


def create_optimizer(params: Iterable[torch.nn.Parameter] | Iterable[dict], name: str, lr: float | None = None,
                     weight_decay: float = 0.0, foreach: bool | None = None) -> torch.optim.Optimizer:
    """``torch.optim`` optimizer for ``name``; ``lr`` defaults to :data:`DEFAULT_LR`.

    ``foreach=None`` is PyTorch's default: the multi-tensor implementation on
    CUDA, a per-parameter loop on CPU (the foreach one allocates its
    temporaries for all parameters at once, which memory prediction models).
    """
    if name not in OPTIMIZERS:
        raise CnnlabError(f"unknown optimizer '{name}'; use one of {', '.join(OPTIMIZERS)}")
    lr = DEFAULT_LR[name] if lr is None else lr
    if name in ("sgd", "sgd-momentum", "nesterov"):
        momentum = 0.0 if name == "sgd" else 0.9
        return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=name == "nesterov",
                               weight_decay=weight_decay, foreach=foreach)
    cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    return cls(params, lr=lr, weight_decay=weight_decay, foreach=foreach)


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: weight decay on weights of ≥ 2 dimensions (convolution kernels, dense matrices) only.

    Biases and normalisation scales/shifts (1-D) are left undecayed, as the
    best recipes do (nanoGPT's ``configure_optimizers``, timm's
    ``param_groups_weight_decay``): shrinking a BatchNorm γ towards 0 only
    fights the layer's own normalisation.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
