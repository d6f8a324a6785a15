"""One vocabulary: an optimizer name means the same optimizer in train, memory and fit."""

from __future__ import annotations

import pytest
import torch

from cnnlab.memory.estimate import estimate_memory
from cnnlab.memory.step import make_optimizer as memory_optimizer
from cnnlab.models import create_model
from cnnlab.train import TrainConfig
from cnnlab.train import make_optimizer as train_optimizer
from cnnlab.vocab import OPTIMIZERS

EXPECTED = {  # torch class, momentum, nesterov, state tensors per parameter (besides step counters)
    "sgd": (torch.optim.SGD, 0.0, False, 0), "sgd-momentum": (torch.optim.SGD, 0.9, False, 1),
    "nesterov": (torch.optim.SGD, 0.9, True, 1), "adam": (torch.optim.Adam, None, None, 2),
    "adamw": (torch.optim.AdamW, None, None, 2),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_an_optimizer_name_is_the_same_optimizer_everywhere(name):
    cls, momentum, nesterov, buffers = EXPECTED[name]
    model = torch.nn.Linear(3, 2)
    for opt in (train_optimizer(model, TrainConfig(optimizer=name)), memory_optimizer(model, name)):
        assert type(opt) is cls
        if momentum is not None:
            assert opt.defaults["momentum"] == momentum and opt.defaults["nesterov"] == nesterov
    with torch.device("meta"):
        net = create_model("lenet5")
    est = estimate_memory(net, (1, 32, 32), 2, optimizer=name, include_inference=False)
    params = sum(p.numel() for p in net.parameters())
    tensors = len(list(net.parameters()))
    step_counters = 4 * tensors if cls is not torch.optim.SGD else 0    # Adam's float32 step, one per tensor
    assert est.training.breakdown["optimizer_state"] == buffers * 4 * params + step_counters


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_memory_predicts_the_optimizer_state_that_train_really_allocates(name):
    """Prediction vs the state of the training engine's own optimizer after a real step."""
    import torch.nn.functional as F

    from cnnlab.train.model import build_model

    torch.manual_seed(0)
    model, _ = build_model("small_cnn", (1, 28, 28), 10)
    opt = train_optimizer(model, TrainConfig(optimizer=name))
    assert [g["weight_decay"] for g in opt.param_groups] == [TrainConfig.weight_decay, 0.0]
    F.cross_entropy(model(torch.randn(4, 1, 28, 28)), torch.tensor([0, 1, 2, 3])).backward()
    opt.step()
    real = sum(t.numel() * t.element_size() for s in opt.state.values() for t in s.values()
               if isinstance(t, torch.Tensor))
    with torch.device("meta"):
        meta, _ = build_model("small_cnn", (1, 28, 28), 10)
    est = estimate_memory(meta, (1, 28, 28), 4, optimizer=name, include_inference=False)
    assert est.training.breakdown["optimizer_state"] == real
    predicted = memory_optimizer(meta, name)
    assert [(len(g["params"]), g["weight_decay"]) for g in predicted.param_groups] == \
        [(len(g["params"]), g["weight_decay"]) for g in opt.param_groups]


def test_weight_decay_costs_adam_a_gradient_copy_and_adamw_nothing():
    """Adam adds the decay to a copy of each gradient (torch.optim.adam: grad.add(param, alpha=wd)); AdamW decays
    the weight in place: the prediction must see the copy, the size of the largest parameter."""
    with torch.device("meta"):
        net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 512), torch.nn.ReLU(),
                                  torch.nn.Linear(512, 10))
    def peak(opt: str, wd: float) -> int:
        return estimate_memory(net, (3, 32, 32), 4, optimizer=opt, include_inference=False,
                               weight_decay=wd).training.peak_bytes
    assert peak("adam", 5e-4) - peak("adam", 0.0) == 4 * 3 * 32 * 32 * 512
    assert peak("adamw", 5e-4) == peak("adamw", 0.0)
