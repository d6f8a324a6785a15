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
