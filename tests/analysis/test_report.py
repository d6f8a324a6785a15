"""cnnlab.analyze: golden numbers, the JSON contract, and any nn.Module."""

from __future__ import annotations

import importlib

import pytest
import torch
import torchvision
from torch import nn

from cnnlab import analyze
from cnnlab.analysis.textbook import textbook_memory
from cnnlab.errors import ShapeError


def test_geron_golden(examples):
    r = analyze(examples / "geron_ex2.yaml", batch_size=50)
    assert r.total_params == r.trainable_params == 903_400
    assert [row.output_shape for row in r.layers] == [(100, 100, 150), (200, 50, 75), (400, 25, 38)]
    assert [row.output_bytes for row in r.layers] == [6_000_000, 3_000_000, 1_520_000]
    assert r.memory.param_bytes == 3_613_600
    assert r.memory.inference_pair == (1, 2)
    assert r.memory.inference_bytes == 12_613_600
    assert r.memory.training_bytes == 565_613_600


def test_json_contract(examples):
    d = analyze(examples / "geron_ex2.yaml", batch_size=50).to_dict()
    for key in ("input_shape", "batch_size", "dtype", "total_params", "trainable_params",
                "total_macs", "layers", "memory"):
        assert key in d
    assert d["input_shape"] == [3, 200, 300] and d["batch_size"] == 50 and d["dtype"] == "float32"
    assert d["layers"][0] == {"index": 1, "name": "conv_1", "type": "conv",
                              "output_shape": [100, 100, 150], "params": 2800, "macs": 40_500_000,
                              "output_bytes": 6_000_000, "receptive_field": [3, 3], "effective_stride": [2, 2],
                              "params_formula": "(3×3×3 + 1) × 100 = 2,800",
                              "macs_formula": "100×150×100 outputs × 3×3×3 = 40,500,000"}
    assert d["memory"]["textbook"]["inference_bytes"] == 12_613_600
    assert d["memory"]["textbook"]["training_bytes"] == 565_613_600
    assert all(isinstance(v, int) for v in d["memory"]["textbook"].values() if not isinstance(v, list))


@pytest.mark.parametrize("dtype,factor", [(torch.float16, 2), (torch.bfloat16, 2), (torch.float32, 4)])
def test_dtype_scales_bytes(examples, dtype, factor):
    r = analyze(examples / "geron_ex2.yaml", batch_size=50, dtype=dtype)
    assert r.memory.training_bytes == 565_613_600 // 4 * factor
    assert r.layers[0].output_bytes == 1_500_000 * factor


def test_built_spec_network_reports_by_spec_layer(examples):
    from cnnlab import build, load_spec

    r = analyze(build(load_spec(examples / "geron_ex2.yaml")), batch_size=50)
    assert [row.name for row in r.layers] == ["conv_1", "conv_2", "conv_3"]
    assert r.memory.training_bytes == 565_613_600


def test_input_override(examples):
    r = analyze(examples / "geron_ex2.yaml", input_shape=(3, 224, 224))
    assert r.layers[-1].output_shape == (400, 28, 28) and r.total_params == 903_400


def test_huge_batch_allocates_nothing(examples):
    # A real forward pass at this batch would need ~1.1 TB; the meta walk needs none.
    r = analyze(examples / "geron_ex2.yaml", batch_size=100_000)
    assert r.memory.training_bytes == 100_000 * 11_240_000 + 3_613_600


def test_any_module_resnet50():
    model = torchvision.models.resnet50()
    before = {k: v.clone() for k, v in list(model.state_dict().items())[:5]}
    model.train()
    r = analyze(model, (3, 224, 224), batch_size=8)
    assert r.total_params == 25_557_032
    assert sum(row.params for row in r.layers) == r.total_params  # rows add up to the total
    # The standard "4.1 GFLOPs" of ResNet-50 is really 4.09 G multiply-accumulates.
    assert round(r.total_macs / 1e9, 2) == 4.09
    assert r.layers[-1].output_shape == (1000,)
    assert model.training  # mode restored
    for k, v in before.items():  # weights untouched
        assert torch.equal(model.state_dict()[k], v)


def test_module_called_twice_counts_params_once():
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return self.fc(self.fc(x))

    r = analyze(Twice(), (4,))
    assert [row.params for row in r.layers] == [20, 0]
    assert [row.macs for row in r.layers] == [16, 16]
    assert r.total_params == 20
    assert r.outside_params == [] and r.outside_macs == 0


def test_the_networks_own_parameters_and_operations_count_in_the_totals():
    """A top-level weight used by a functional product in the network's own forward belongs to no row, nor
    does a module the forward never calls; the totals still count them. Oracle: arithmetic (x @ w: 16 × 8
    MACs per instance; Linear(8, 3): 24 + 3 parameters; the unused head's Linear(2, 2) and Linear(2, 1): 9)."""
    class OwnWeight(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(16, 8))
            self.fc = nn.Linear(8, 3)
            self.head = nn.Sequential(nn.Linear(3, 3))
            self.unused = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))

        def forward(self, x):
            return self.head(self.fc(x @ self.w))

    r = analyze(OwnWeight(), (16,), batch_size=4)
    assert [(row.name, row.params, row.macs) for row in r.layers] == [("fc", 27, 24), ("head.0", 12, 9)]
    assert r.outside_params == [("unused", 9, "module"), ("w", 128, "parameter")]
    assert r.outside_macs == 128 and r.total_macs == 128 + 24 + 9 and r.total_params == 27 + 12 + 9 + 128
    assert r.to_dict()["outside_rows"] == {"params": 137, "macs": 128, "groups": [
        {"name": "unused", "kind": "module", "params": 9}, {"name": "w", "kind": "parameter", "params": 128}]}


def test_a_timm_attention_block_s_products_count_in_the_total():
    """timm's Attention holds no parameters of its own (qkv and proj are its children), so its q·k and
    attention·v products happen outside every row. Oracle: PyTorch's FlopCounterMode over the whole
    forward, and the products by hand (2 · heads · N² · head_dim per instance)."""
    from timm.layers import Attention
    from torch.utils.flop_counter import FlopCounterMode

    net = nn.Sequential(Attention(64, num_heads=4))
    net[0].fused_attn = False                 # explicit products; the fused kernel is counted the same way
    r = analyze(net, (10, 64))
    with FlopCounterMode(display=False) as counter:
        net(torch.randn(1, 10, 64))
    assert r.total_macs == counter.get_total_flops() // 2
    assert r.outside_macs == 2 * 4 * 10 * 10 * 16
    assert sum(row.macs for row in r.layers) == 10 * 64 * 192 + 10 * 64 * 64       # qkv and proj


def test_module_with_wrong_input_is_a_clear_error():
    with pytest.raises(ShapeError, match=r"does not accept input \[1, 28, 28\] in layer 'conv1' "
                                         r"\(Conv2d\).*3 channels.*check --input"):
        analyze(torchvision.models.resnet18(), (1, 28, 28))


def test_module_needs_input_shape():
    with pytest.raises(ShapeError, match="give input_shape"):
        analyze(nn.Linear(3, 3))


def test_textbook_memory_pairs():
    m = textbook_memory([10, 50, 40, 60, 5], param_bytes=7, batch_size=3, bytes_per_element=4)
    assert m.inference_pair == (2, 3) and m.inference_bytes == 107
    assert m.training_bytes == 3 * 165 + 7
    single = textbook_memory([10], param_bytes=0, batch_size=2, bytes_per_element=4)
    assert single.inference_bytes == 10


def test_textbook_inference_for_a_mini_batch_is_the_exercise_answer(examples):
    """Exercise 2 asks for predicting a mini-batch of 50: 50 × (6,000,000 + 3,000,000) + 3,613,600 parameter bytes."""
    from cnnlab import analyze

    mem = analyze(str(examples / "geron_ex2.yaml"), batch_size=50).memory
    assert mem.batch_inference_bytes == 50 * (6_000_000 + 3_000_000) + 3_613_600 == 453_613_600
    assert mem.to_dict()["batch_inference_bytes"] == 453_613_600
    assert analyze(str(examples / "geron_ex2.yaml")).memory.batch_inference_bytes == mem.inference_bytes


def test_a_new_input_that_resizes_a_dense_layer_says_so():
    """The FCN exercise's point: convolutions keep their weights at any size, a flatten + dense does not."""
    import torch

    from cnnlab import analyze

    spec = {"input": [64, 7, 7], "layers": ["flatten", {"dense": {"units": 10}}]}
    same = analyze(spec)
    assert same.notes == []
    bigger = analyze(spec, (64, 14, 14))
    assert bigger.total_params == sum(p.numel() for p in torch.nn.Linear(64 * 14 * 14, 10).parameters())
    (note,) = bigger.notes
    assert "layer 2 (dense_1, dense) resized" in note and "31,370 -> 125,450" in note and "64×7×7" in note
    conv = {"input": [3, 32, 32], "layers": [{"conv": {"filters": 8, "kernel": 3}}]}
    assert analyze(conv, (3, 64, 64)).notes == []       # a convolution keeps its weights


@pytest.mark.parametrize("name, weights", [("resnet18", "ResNet18_Weights"), ("googlenet", "GoogLeNet_Weights"),
                                           ("mobilenet_v3_small", "MobileNet_V3_Small_Weights"),
                                           ("vit_b_16", "ViT_B_16_Weights"), ("convnext_tiny", "ConvNeXt_Tiny_Weights")])
def test_meta_walk_equals_the_fake_tensor_walk_and_torchvisions_published_operations(name, weights, monkeypatch):
    """The walk runs on meta twins of the weights. References: the FakeTensorMode walk, layer by layer,
    and torchvision's own GMACs and parameters for each model at 224×224 (its weights' metadata)."""
    walk_module = importlib.import_module("cnnlab.analysis.walk")  # the package exports a function of that name
    model = getattr(torchvision.models, name)()
    fast, outside = walk_module.walk(model, (3, 224, 224), 2)
    meta = getattr(torchvision.models, weights).DEFAULT.meta
    assert outside == 0                      # every operation of these networks is inside a module with a row
    assert round(sum(r.macs for r in fast) / 1e9, 3) == meta["_ops"]   # attention's products included
    own = sum(p.numel() for p in model.parameters(recurse=False))  # ViT's class token: the root has no row
    assert sum(r.params for r in fast) + own == meta["num_params"]
    report = analyze(model, (3, 224, 224))
    assert round(report.total_macs / 1e9, 3) == meta["_ops"]
    unrowed = {n: (count, kind) for n, count, kind in report.outside_params}   # ViT's class token; GoogLeNet's
    assert sum(r.params for r in report.layers) + sum(c for c, _ in unrowed.values()) == report.total_params
    # torchvision's published count leaves out GoogLeNet's auxiliary heads (used in training only)
    assert report.total_params - sum(c for k, (c, _) in unrowed.items() if k.startswith("aux")) == meta["num_params"]
    assert unrowed == ({"class_token": (768, "parameter")} if name == "vit_b_16" else
                       {"aux1": (3_188_968, "module"), "aux2": (3_191_016, "module")} if name == "googlenet" else {})

    def no_meta(*args, **kwargs):
        raise RuntimeError("meta refused")
    monkeypatch.setattr(walk_module, "_run_meta", no_meta)   # forces the FakeTensorMode path
    fake, fake_outside = walk_module.walk(model, (3, 224, 224), 2)
    assert fake_outside == 0
    strip = lambda rows: [(r.name, r.type, r.output_shape, r.params, r.trainable_params, r.macs,  # noqa: E731
                           r.output_elements) for r in rows]
    assert strip(fast) == strip(fake)


def test_a_forward_that_meta_cannot_run_is_walked_on_fake_tensors():
    class MakesItsOwnTensors(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(8, 3)

        def forward(self, x):
            scale = torch.ones(x.shape[-1])          # a CPU tensor: meta refuses to mix it in
            return self.fc(x * scale)

    r = analyze(MakesItsOwnTensors(), (8,), batch_size=4)
    assert [(row.name, row.output_shape, row.params, row.macs) for row in r.layers] == [("fc", (3,), 27, 24)]

    class AlsoATopLevelProduct(MakesItsOwnTensors):
        def forward(self, x):
            return super().forward(x) @ torch.ones(3, 5)      # 3 × 5 MACs per instance outside every row

    r = analyze(AlsoATopLevelProduct(), (8,), batch_size=4)        # the fake-tensor walk counts them too
    assert r.outside_macs == 15 and r.total_macs == 24 + 15
