"""Our readable models *are* the reference networks: load the reference's weights, get its outputs.

The parameters and buffers are registered in the same order as in torchvision
or timm, so a reference state dict copies over by position; in eval mode the
two networks then compute the same logits. This checks the whole wiring
(strides, paddings, pooling, where the activations and shortcuts are), which
an equal parameter count alone does not.
"""

from __future__ import annotations

import pytest
import torch
import torchvision.models as tvm
from torch import nn

from cnnlab.models import create_model

try:   # timm is the reference for SE-ResNet and Xception only: without it, skip those, test the rest
    import timm
except ImportError:  # pragma: no cover - the test extra installs it
    timm = None


def copy_by_position(src: nn.Module, dst: nn.Module) -> None:
    src_state, dst_state = list(src.state_dict().values()), dst.state_dict()
    assert len(src_state) == len(dst_state)
    new = {}
    for (key, ours), theirs in zip(dst_state.items(), src_state):
        assert ours.shape == theirs.shape, key
        new[key] = theirs
    dst.load_state_dict(new)


def randomize_batch_norm(model: nn.Module, eps: float = 1e-3) -> None:
    """Non-trivial running statistics (fresh ones are 0 and 1) and one ε for both networks."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eps = eps
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


CASES = {
    "alexnet": (lambda: tvm.alexnet(), 64),
    "vgg11_bn": (lambda: tvm.vgg11_bn(), 32),
    "googlenet": (lambda: tvm.googlenet(aux_logits=False, init_weights=True), 64),
    "resnet18": (lambda: tvm.resnet18(), 64),
    "resnet50": (lambda: tvm.resnet50(), 64),
    "seresnet50": (lambda: timm.create_model("seresnet50"), 64),
    "xception": (lambda: timm.create_model("legacy_xception"), 71),
    "efficientnet_b0": (lambda: tvm.efficientnet_b0(), 64),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_reference_weights_give_reference_outputs(name: str) -> None:
    if timm is None and name in ("seresnet50", "xception"):
        pytest.skip(f"{name}'s reference is timm's, which is not installed (pip install -e '.[test]')")
    torch.manual_seed(0)
    build_ref, size = CASES[name]
    ref = build_ref().eval()
    ours = create_model(name).eval()
    randomize_batch_norm(ref)
    copy_by_position(ref, ours)
    for m in ours.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eps = 1e-3
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        expected, got = ref(x), ours(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
