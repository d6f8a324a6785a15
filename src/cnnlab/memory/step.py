"""One training step and one prediction, written once and run three ways.

``cnnlab train`` runs :func:`training_step` on every batch (with the task's
forward, loss and step statistics); the prediction (``cnnlab memory``) runs
the same function on fake tensors under an allocation tracker; ``--measure``
runs it on real tensors and reads the allocator. So prediction and training
can only differ where fake execution and real kernels allocate differently —
which is what the benchmark measures.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.losses import classification_loss, segmentation_loss
from cnnlab.optim import create_optimizer, param_groups
from cnnlab.precision import autocast, param_dtype
from cnnlab.vocab import DEFAULT_WEIGHT_DECAY, OPTIMIZERS, PRECISIONS


@dataclass(frozen=True)
class StepConfig:
    """What kind of training step to predict or measure."""

    optimizer: str = "sgd"
    precision: str = "fp32"
    checkpointing: bool = False
    device: str = "cpu"
    weight_decay: float = DEFAULT_WEIGHT_DECAY   # as `cnnlab train` applies it (≥ 2-D weights only)
    channels_last: bool = False       # NHWC model and batches, as `cnnlab train --channels-last` makes them

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise CnnlabError(f"unknown optimizer '{self.optimizer}'; use one of {', '.join(OPTIMIZERS)}")
        if self.precision not in PRECISIONS:
            raise CnnlabError(f"unknown precision '{self.precision}'; use one of {', '.join(PRECISIONS)}")
        if self.precision == "auto":      # a step runs one precision: cnnlab.precision.choose says which
            raise CnnlabError("precision 'auto' must be resolved first (cnnlab.precision.choose)")
        if self.device not in ("cpu", "cuda"):
            raise CnnlabError(f"unknown device '{self.device}'; use cpu or cuda")
        if not 0 <= self.weight_decay < float("inf"):
            raise CnnlabError(f"--weight-decay must be a finite number ≥ 0 (got {self.weight_decay})")

    @property
    def param_dtype(self) -> torch.dtype:
        return param_dtype(self.precision)

    def autocast(self) -> contextlib.AbstractContextManager:
        return autocast(self.precision, self.device)

    @property
    def memory_format(self) -> torch.memory_format:
        """The layout of the model's 4-D weights and of image batches."""
        return torch.channels_last if self.channels_last else torch.contiguous_format


def make_optimizer(model: nn.Module, name: str, foreach: bool | None = None,
                   weight_decay: float = DEFAULT_WEIGHT_DECAY) -> torch.optim.Optimizer:
    """The optimizer ``cnnlab train --optimizer NAME`` builds: the shared factory, the same parameter groups.

    Weight decay matters to memory: plain SGD and Adam add it to a copy of
    each gradient (a temporary the size of the parameter), AdamW decays in place.
    """
    return create_optimizer(param_groups(model, weight_decay), name, foreach=foreach)


def prime_optimizer(model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Create the optimizer's state (momentum, Adam moments, step counts) as a first step would.

    A step on all-zero gradients, then ``zero_grad(set_to_none=True)``: the
    state tensors exist, the gradients are gone, and the next real step is the
    steady state — without paying for a first forward and backward pass.
    """
    for p in model.parameters():
        if p.requires_grad:
            p.grad = torch.zeros_like(p)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)




def output_tensor(out: object) -> torch.Tensor:
    """The network's output, which must be a tensor (TypeError naming what it was otherwise)."""
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"the network's forward returned {type(out).__name__}, not a tensor; return the output "
                        "tensor from forward")
    return out


def loss_of(out: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """The loss ``cnnlab train`` trains with for this output: the classification task's cross-entropy for
    ``(N, classes)`` logits, the semantic task's per-pixel one for ``(N, classes, H, W)`` scores against
    ``(N, H, W)`` masks (255 ignored); the mean output otherwise (a network without a head)."""
    if target is None:
        return out.float().mean()
    return classification_loss(out, target) if target.dim() == 1 else segmentation_loss(out, target)


def target_shape(model: nn.Module, out_shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The shape of one sample's target: ``()`` for a class label, ``(H, W)`` for a segmentation
    network's mask, ``None`` when the output is not class scores (a backbone: the loss is its mean)."""
    if len(out_shape) == 2:
        return ()
    if len(out_shape) == 4 and getattr(model, "dense_prediction", False):
        return tuple(out_shape[2:])
    return None


def make_batch(target: tuple[int, ...] | None, input_shape: tuple[int, ...], batch: int, classes: int,
               dtype: torch.dtype, device: str, memory_format: torch.memory_format = torch.contiguous_format
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """An input batch (images in ``memory_format``) and integer targets of shape ``(batch, *target)`` (none for
    ``target=None``)."""
    x = torch.randn((batch, *input_shape), dtype=dtype, device=device)
    if x.dim() == 4:
        x = x.contiguous(memory_format=memory_format)
    y = torch.randint(0, classes, (batch, *target), device=device) if target is not None else None
    return x, y


def plain_forward(model: nn.Module, x: torch.Tensor, _targets: object) -> torch.Tensor:
    """The network's output for a batch (the targets are for tasks whose networks take them, Mask R-CNN's)."""
    return output_tensor(model(x))


def training_step(model: nn.Module, x: torch.Tensor, y: Any, optimizer: torch.optim.Optimizer, cfg: StepConfig,
                  phase: Callable[[str], None] = lambda _: None, *,
                  forward: Callable[[nn.Module, torch.Tensor, Any], Any] = plain_forward,
                  loss_fn: Callable[[Any, Any], torch.Tensor] = loss_of,
                  on_loss: Callable[[Any, torch.Tensor], None] | None = None,
                  scaler: torch.amp.GradScaler | None = None) -> None:
    """forward → loss → backward → optimizer step → ``zero_grad(set_to_none=True)``: the one training step.

    ``cnnlab train`` passes its task's ``forward`` and ``loss_fn``, an ``on_loss(outputs, loss)`` that
    records the step's statistics before the outputs are let go, and (fp16-amp) a gradient scaler;
    the memory predictor and ``--measure`` run it with the defaults, the same losses.
    """
    phase("forward")
    with cfg.autocast():
        out = forward(model, x, y)
        phase("loss")
        loss = loss_fn(out, y)
    if on_loss is not None:
        on_loss(out, loss)
    del out
    phase("backward")
    (scaler.scale(loss) if scaler is not None else loss).backward()
    del loss
    phase("optimizer step")
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    phase("zero_grad")
    optimizer.zero_grad(set_to_none=True)
    phase("done")


def inference_step(model: nn.Module, x: torch.Tensor, cfg: StepConfig,
                   phase: Callable[[str], None] = lambda _: None) -> torch.Size:
    """One prediction under ``torch.no_grad()`` (eval mode set by the caller); returns the output's shape."""
    phase("forward")
    with torch.no_grad(), cfg.autocast():
        out = output_tensor(model(x))
    shape = out.shape
    del out
    phase("done")
    return shape
