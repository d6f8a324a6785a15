"""The one optimizer factory: what ``--optimizer NAME`` means in every command (see :mod:`cnnlab.vocab`)."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from cnnlab.errors import CnnlabError
from cnnlab.vocab import OPTIMIZERS

DEFAULT_LR = {"sgd": 0.05, "sgd-momentum": 0.05, "nesterov": 0.05, "adam": 1e-3, "adamw": 1e-3}


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
