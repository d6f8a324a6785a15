"""Predicted peak memory of a training step: invariants, exactness where kernels allocate nothing
hidden, the batch curve, and a real measurement to compare against."""

from __future__ import annotations

import pytest
import torch

from cnnlab.memory.measure import measure_memory
from cnnlab.memory.estimate import (
    CUDA_BLOCK,
    batch_model,
    cuda_block_bytes,
    estimate_memory,
)
from cnnlab.memory.step import StepConfig
from cnnlab.errors import CnnlabError
from cnnlab.models import create_model


def meta(name: str, **kw):
    with torch.device("meta"):
        return create_model(name, **kw)


def test_breakdown_adds_up_and_names_parameters_gradients_and_adam_state():
    est = estimate_memory(meta("lenet5"), (1, 32, 32), 8, optimizer="adam")
    param_bytes = 4 * 61_706
    for rep in (est.training, est.inference):
        assert sum(rep.breakdown.values()) == rep.peak_bytes
        assert rep.breakdown["parameters"] == param_bytes
    assert est.training.breakdown["optimizer_state"] == 2 * param_bytes + 4 * 10  # two moments + one float32 step counter per parameter tensor
    assert est.inference.breakdown["gradients"] == est.inference.breakdown["optimizer_state"] == 0
    assert est.inference.peak_bytes < est.training.peak_bytes
    sgd = estimate_memory(meta("lenet5"), (1, 32, 32), 8, optimizer="sgd")
    assert sgd.training.breakdown["optimizer_state"] == 0


def test_prediction_equals_a_real_measurement_for_a_dense_network():
    """An MLP's CPU kernels allocate nothing the fake run cannot see: prediction = measurement."""
    est = estimate_memory(meta("mlp"), (1, 28, 28), 32, optimizer="adam")
    torch.manual_seed(0)
    train, infer = measure_memory(create_model("mlp"), (1, 28, 28), 32, StepConfig("adam"))
    assert est.training.peak_bytes == pytest.approx(train, rel=0.005)
    assert est.inference.peak_bytes == pytest.approx(infer, rel=0.005)


def test_batch_curve_is_exact():
    curve = batch_model(meta("resnet18"), (3, 32, 32), optimizer="sgd-momentum")
    for b in (3, 7):
        direct = estimate_memory(meta("resnet18"), (3, 32, 32), b, "sgd-momentum", include_inference=False)
        assert curve.peak(b) == direct.training.peak_bytes
    budget = curve.peak(10) + 1
    assert curve.max_batch(budget) == 10


def test_cuda_counts_whole_512_byte_blocks_and_says_what_it_cannot_see():
    assert cuda_block_bytes(1) == CUDA_BLOCK and cuda_block_bytes(513) == 1024 and cuda_block_bytes(0) == 0
    est = estimate_memory(meta("lenet5"), (1, 32, 32), 4, device="cuda")
    assert est.training.peak_bytes % CUDA_BLOCK == 0
    assert any("CUDA context" in n for n in est.notes)


def test_the_users_module_is_left_untouched():
    model = create_model("lenet5")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    estimate_memory(model, (1, 32, 32), 4, optimizer="adam")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_bad_configuration_is_a_clear_error():
    with pytest.raises(CnnlabError, match="unknown optimizer 'rmsprop'"):
        StepConfig(optimizer="rmsprop")
    with pytest.raises(CnnlabError, match="unknown precision"):
        StepConfig(precision="fp8")


@pytest.mark.parametrize("name, size, batch, checkpointing", [
    ("resnet18", 32, 8, False),      # oneDNN buffers, strided and tiny-map convolutions included
    ("resnet18", 32, 8, True),
    ("vgg11", 32, 4, True),          # Sequential segments with in-place ReLUs
    ("efficientnet_b0", 32, 4, False),
    ("lenet5", 32, 8, False),        # single-channel input and 5x5 kernels on small maps (+48 % on AVX-512 once)
])
def test_cnn_prediction_matches_a_real_cpu_step(name, size, batch, checkpointing):
    from cnnlab.memory.checkpointing import checkpoint_segments

    channels = 1 if name == "lenet5" else 3
    kw = {} if name == "lenet5" else {"input_size": size}
    est = estimate_memory(meta(name, **kw), (channels, size, size), batch, "sgd-momentum",
                          checkpointing=checkpointing)
    torch.manual_seed(0)
    real = create_model(name, **kw)
    if checkpointing:
        checkpoint_segments(real)
    train, infer = measure_memory(real, (channels, size, size), batch,
                                  StepConfig("sgd-momentum", checkpointing=checkpointing))
    assert est.training.peak_bytes == pytest.approx(train, rel=0.01)
    assert est.inference.peak_bytes == pytest.approx(infer, rel=0.01)


def test_a_prediction_whose_peak_is_at_a_batch_norm_is_exact_to_the_byte():
    """In eval mode a CPU batch norm holds two per-channel temporaries (its folded scale and shift) while it
    runs: with the peak at the batch norm, the prediction matches the measured bytes exactly (it was 2 × 256 B
    low for ResNet-18's first one at batch 8). Oracle: the real step's allocations (profiler)."""
    torch.manual_seed(0)
    real = create_model("resnet18", input_size=224)
    est = estimate_memory(meta("resnet18", input_size=224), (3, 224, 224), 8, "sgd")
    _, infer = measure_memory(real, (3, 224, 224), 8, StepConfig("sgd"))
    assert est.inference.peak_bytes == infer


def test_kernels_the_rules_were_not_measured_on_are_flagged(monkeypatch):
    from cnnlab.memory.onednn import workspace

    native = estimate_memory(meta("lenet5"), (1, 32, 32), 4)
    assert any("unverified" in n for n in native.notes) == (not workspace.CpuKernels.current().verified)
    other = estimate_memory(meta("lenet5"), (1, 32, 32), 4, kernels=workspace.CpuKernels("neon", 4))
    note = next(n for n in other.notes if "unverified" in n)
    assert "neon" in note and f"{other.training.breakdown['kernel_workspace']:,} B" in note


AVX2_CHILD = """
import json, sys, torch
from cnnlab.memory.measure import measure_memory
from cnnlab.memory.step import StepConfig
from cnnlab.models import create_model
torch.set_num_threads(2); torch.manual_seed(0)
assert torch.backends.cpu.get_cpu_capability() == "AVX2"
print(json.dumps(measure_memory(create_model("resnet18", input_size=32), (3, 32, 32), 8, StepConfig("sgd"))))
"""


@pytest.mark.slow
def test_predicting_for_another_cpus_kernels_matches_a_step_run_on_them():
    """From any x86 machine: predict an AVX2 CPU's step, then run it on AVX2 kernels in a subprocess."""
    import json
    import os
    import subprocess
    import sys

    from cnnlab.memory.onednn.workspace import CpuKernels

    est = estimate_memory(meta("resnet18", input_size=32), (3, 32, 32), 8, "sgd", kernels=CpuKernels("avx2", 2))
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
    out = subprocess.run([sys.executable, "-c", AVX2_CHILD], env=env, capture_output=True, text=True, check=True)
    train, infer = json.loads(out.stdout.strip().splitlines()[-1])
    assert est.training.peak_bytes == pytest.approx(train, rel=0.01)
    assert est.inference.peak_bytes == pytest.approx(infer, rel=0.01)


@pytest.mark.parametrize("checkpointing", [False, True])
def test_counting_macs_does_not_change_the_memory_figure(checkpointing):
    kw = {"optimizer": "sgd", "checkpointing": checkpointing, "include_inference": False}
    without = estimate_memory(meta("resnet18", input_size=64), (3, 64, 64), 8, count_macs=False, **kw)
    counted = estimate_memory(meta("resnet18", input_size=64), (3, 64, 64), 8, count_macs=True, **kw)
    assert counted.training.peak_bytes == without.training.peak_bytes
    assert counted.training.breakdown == without.training.breakdown
    assert counted.step_macs > 3 * 2 * 8 * 35_000_000   # forward + ~2x backward of ~149 M MACs/image at 64 px


@pytest.mark.parametrize("name, optimizer, device, checkpointing", [
    ("resnet18", "sgd-momentum", "cpu", False),    # batch norm forward and backward: layouts remembered on meta
    ("efficientnet_b0", "adam", "cpu", False),     # squeeze-excite, SiLU, depthwise convolutions
    ("googlenet", "adamw", "cuda", False),         # concatenations; CUDA's foreach optimizer and 512-byte blocks
    ("vgg11", "sgd", "cpu", True),                 # checkpointed segments recompute in backward
    ("unet", "adam", "cpu", False),                # per-pixel targets, transposed convolutions
    ("vit", "adam", "cpu", False),                 # attention: meta's math path is not the CPU's flash kernel
])
def test_meta_step_allocates_exactly_what_the_fake_tensor_step_allocates(name, optimizer, device, checkpointing):
    """A float32 step runs on meta (fast); FakeTensorMode is the reference: every allocation must agree."""
    from cnnlab.memory.estimate import _as_meta, _run
    from cnnlab.fake import paused_gc

    shape = (3, 32, 32)
    if name == "vit":
        from torchvision.models import VisionTransformer

        with torch.device("meta"):
            net = VisionTransformer(image_size=32, patch_size=4, num_layers=2, num_heads=2, hidden_dim=32,
                                    mlp_dim=64, num_classes=10)
    else:
        net = _as_meta(meta(name, input_size=32) if name != "unet" else meta(name, in_channels=3, num_classes=4))
    cfg = StepConfig(optimizer, checkpointing=checkpointing, device=device)
    with paused_gc():
        fast = _run(net, shape, 3, cfg, count_macs=True)
        fake = _run(net, shape, 3, cfg, count_macs=True, fake=True)
    for a, b in ((fast.training, fake.training), (fast.inference, fake.inference)):
        assert a.timeline == b.timeline          # live bytes after every single allocation
        assert (a.peak_bytes, a.breakdown, a.phase, a.op) == (b.peak_bytes, b.breakdown, b.phase, b.op)
    assert fast.step_macs == fake.step_macs and fast.segments == fake.segments
