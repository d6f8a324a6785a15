"""Checkpoint segments never start with an in-place layer, and checkpointed models compute the same thing."""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.memory.checkpointing import checkpoint_segments, segment_bounds


def test_segments_start_after_in_place_layers():
    layers = [nn.Conv2d(3, 3, 3), nn.ReLU(inplace=True), nn.Conv2d(3, 3, 3), nn.ReLU(inplace=True),
              nn.Conv2d(3, 3, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2), nn.Conv2d(3, 3, 1), nn.ReLU()]
    starts = segment_bounds(layers, 3)
    assert starts[0] == 0 and starts == sorted(set(starts))
    assert not any(getattr(layers[s], "inplace", False) for s in starts)


def test_checkpointed_sequential_gives_the_same_output_and_gradients():
    torch.manual_seed(0)
    net = nn.Sequential(*[m for _ in range(4) for m in (nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(inplace=True))])
    ref = nn.Sequential(*[m for _ in range(4) for m in (nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(inplace=True))])
    ref.load_state_dict(net.state_dict())
    assert checkpoint_segments(net)
    x = torch.randn(2, 4, 8, 8)
    net(x).sum().backward()
    ref(x).sum().backward()
    for a, b in zip(net.parameters(), ref.parameters()):
        torch.testing.assert_close(a.grad, b.grad)


def test_a_spec_network_is_checkpointed_in_segments_and_its_peak_predicted_as_measured():
    """small_cnn's layers are leaves of a ModuleList: they run as √19 ≈ 4 segments; the prediction of the
    checkpointed step is the allocator's measurement of a real one, and lower than without."""
    from cnnlab.memory import estimate_memory
    from cnnlab.memory.measure import measure_memory
    from cnnlab.memory.step import StepConfig
    from cnnlab.packaged import PACKAGED_SPECS
    from cnnlab.spec import build, load_spec

    spec = load_spec(PACKAGED_SPECS["small_cnn"])
    plain = estimate_memory(build(spec, device="meta"), (1, 28, 28), 32, optimizer="adam",
                            include_inference=False).training.peak_bytes
    est = estimate_memory(build(spec, device="meta"), (1, 28, 28), 32, optimizer="adam", checkpointing=True,
                          include_inference=False)
    assert est.checkpointed == ["model (19 layers in 4 segments)"]
    torch.manual_seed(0)
    net = build(spec)
    assert checkpoint_segments(net)
    measured, _ = measure_memory(net, (1, 28, 28), 32, StepConfig("adam", checkpointing=True))
    assert est.training.peak_bytes < 0.85 * plain
    assert abs(measured - est.training.peak_bytes) <= 0.01 * measured


def test_recomputation_leaves_batch_norm_statistics_as_one_forward_does():
    """A checkpointed block's recomputed forward runs its batch norms in training mode again: their running
    statistics and counts must end as a plain network's (torch's checkpoint alone updates them twice)."""
    import copy

    from torchvision.models.resnet import BasicBlock

    torch.manual_seed(0)
    plain = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), BasicBlock(8, 8), BasicBlock(8, 8), nn.Flatten())
    ck = copy.deepcopy(plain)
    assert checkpoint_segments(ck) == ["1", "2"]
    x = torch.randn(4, 3, 8, 8)
    for _ in range(2):
        plain(x).square().sum().backward()
        ck(x).square().sum().backward()
    for (name, a), (_, b) in zip(plain.named_buffers(), ck.named_buffers()):
        torch.testing.assert_close(a, b, msg=name)
    for a, b in zip(plain.parameters(), ck.parameters()):
        torch.testing.assert_close(a.grad, b.grad)
    assert all(m.momentum == 0.1 for m in ck.modules() if isinstance(m, nn.BatchNorm2d))
