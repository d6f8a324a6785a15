"""--explain: golden text for the Géron exercise."""

from __future__ import annotations

import os
from pathlib import Path

import torchvision

from cnnlab import analyze
from cnnlab.analysis.explain import explain

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "geron_ex2_explain.txt"


def test_geron_explain_golden(examples):
    text = explain(analyze(examples / "geron_ex2.yaml", batch_size=50))
    if os.environ.get("CNNLAB_UPDATE_GOLDEN"):
        GOLDEN.write_text(text + "\n", encoding="utf-8")
    assert text + "\n" == GOLDEN.read_text(encoding="utf-8")


def test_explain_states_the_books_rounding(examples):
    text = explain(analyze(examples / "geron_ex2.yaml", batch_size=50))
    assert "(3×3×3 + 1) × 100 = 2,800" in text
    assert "layer 1 (conv_1) + layer 2 (conv_2) = 6,000,000 + 3,000,000" in text
    assert "12,613,600 B" in text and "565,613,600 B" in text
    assert "layer 3 1.52 MB → 1.5 MB" in text and "564.6 MB" in text
    assert "gradients" in text and "optimizer state" in text


def test_explain_any_module_uses_type_formulas():
    text = explain(analyze(torchvision.models.alexnet(), (3, 224, 224)))
    assert "(11×11×3 + 1) × 64 = 23,296" in text
    assert "(4096 + 1) × 1000 = 4,097,000" in text


def test_explain_prices_a_strided_convolution_in_place_of_each_pool():
    """Exercise 4: the parameters and MACs match a real nn.Conv2d measured by PyTorch's flop counter."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from cnnlab import analyze
    from cnnlab.analysis.explain import explain

    text = explain(analyze(Path(__file__).resolve().parents[2] / "src" / "cnnlab" / "train" / "small_cnn.yaml"))
    conv = torch.nn.Conv2d(32, 32, 2, 2)
    with FlopCounterMode(display=False) as counter:
        conv(torch.zeros(1, 32, 28, 28))
    params, macs = sum(p.numel() for p in conv.parameters()), counter.get_total_flops() // 2
    assert f"maxpool_1 (maxpool 2×2/2): 0 parameters; a convolution: (2×2×32 + 1) × 32 = {params:,} parameters" in text
    assert f"= {macs:,} MACs per instance" in text
