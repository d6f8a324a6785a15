"""Every zoo model: exact parameter counts, forward/backward, shapes, depth, minimum input."""

from __future__ import annotations

import pytest
import torch
import torchvision.models as tvm
from torch import nn

from cnnlab.analysis.depth import weight_depth
from cnnlab.errors import TargetError
from cnnlab.models import ZOO, create_model, get_entry, model_names

try:   # timm is the reference for SE-ResNet and Xception only: without it, skip those, test the rest
    import timm
except ImportError:  # pragma: no cover - the test extra installs it
    timm = None
NEEDS_TIMM = ("seresnet", "xception")


def _need_reference_library(name: str) -> None:
    if timm is None and name.startswith(NEEDS_TIMM):
        pytest.skip(f"{name}'s reference is timm's, which is not installed (pip install -e '.[test]')")


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def reference(name: str) -> nn.Module | None:
    """The reference implementation of a zoo name, built on the meta device (no weights)."""
    _need_reference_library(name)
    with torch.device("meta"):
        if name.startswith("seresnet"):
            return timm.create_model(name)
        if name == "xception":
            return timm.create_model("legacy_xception")
        if name == "googlenet":
            return tvm.googlenet(aux_logits=False, init_weights=False)
        if hasattr(tvm, name):
            return getattr(tvm, name)()
    return None


def meta_model(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return create_model(name, **kwargs)


# The published figures (1000 classes; LeNet-5 and the MLP: 10 classes).
PUBLISHED = {
    "alexnet": 61_100_840, "vgg16": 138_357_544, "googlenet": 6_624_904, "resnet50": 25_557_032,
    "efficientnet_b0": 5_288_548, "seresnet50": 28_088_024, "xception": 22_855_952,
    "lenet5": 61_706, "lenet5_relu": 61_706, "mlp": 266_610,
    "alexnet_paper": 62_378_344, "alexnet_paper_2gpu": 60_965_224, "resnet50_v1": 25_557_032,
    "googlenet_paper": 7_005_832,
}

# Weight layers on the deepest path: the number in the name, or the paper's count.
DEPTH = {
    "lenet5": 5, "alexnet": 8, "alexnet_paper": 8, "vgg11": 11, "vgg16_bn": 16, "vgg19": 19,
    "googlenet": 22, "resnet18": 18, "resnet34": 34, "resnet50": 50, "resnet152": 152,
    "seresnet50": 50, "xception": 37, "mlp": 3,
    "unet": 23,     # Ronneberger et al. 2015, §2: "In total the network has 23 convolutional layers"
    "fcn32s": 16,   # VGG-16's 13 convolutions + fc6, fc7 as convolutions + the score layer
}


@pytest.mark.parametrize("name", model_names("classification"))
def test_parameter_count_equals_reference_implementation(name: str) -> None:
    ours = n_params(meta_model(name))
    ref = reference(name)
    if ref is not None:
        assert ours == n_params(ref), ZOO[name].reference
    else:
        assert name in PUBLISHED, f"{name} has neither a reference library model nor a published figure"
    if name in PUBLISHED:
        assert ours == PUBLISHED[name]


def test_alexnet_paper_two_gpu_split_is_the_papers_60_million() -> None:
    from cnnlab.models.alexnet import alexnet_paper
    with torch.device("meta"):
        assert n_params(alexnet_paper(two_gpu=True)) == 60_965_224


@pytest.mark.parametrize("name", sorted(DEPTH))
def test_depth_counts_weight_layers_on_the_deepest_path(name: str) -> None:
    assert weight_depth(meta_model(name)) == DEPTH[name]


def _small_input_size(model) -> int:
    return max(model.min_input_size, 32)


SLOW = {"vgg16", "vgg16_bn", "vgg19", "vgg19_bn", "efficientnet_b5", "efficientnet_b6",
        "efficientnet_b7", "seresnet152", "resnet152", "alexnet_paper"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                  for n in model_names("classification")])
def test_forward_backward_on_cpu_reaches_every_parameter(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=7, in_channels=2)
    size = _small_input_size(model)
    x = torch.randn(2, 2, size, size)
    model.train()
    out = model(x)
    assert out.shape == (2, 7)
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"no gradient for {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("name", model_names("classification"))
def test_minimum_input_size_is_exact(name: str) -> None:
    model = meta_model(name).eval()
    c, s = model.in_channels, model.min_input_size
    assert model(torch.empty(1, c, s, s, device="meta")).shape == (1, model.num_classes)
    if s > 1:
        with pytest.raises(RuntimeError):
            model(torch.empty(1, c, s - 1, s - 1, device="meta"))


@pytest.mark.parametrize("name, features", [
    ("resnet50", (2048, 7, 7)), ("vgg16", (512, 7, 7)), ("googlenet", (1024, 7, 7)),
    ("efficientnet_b0", (1280, 7, 7)), ("alexnet", (256, 6, 6)), ("xception", (2048, 7, 7)),
])
def test_forward_features_returns_the_last_feature_map(name: str, features: tuple[int, ...]) -> None:
    model = meta_model(name).eval()
    fmap = model.forward_features(torch.empty(2, 3, 224, 224, device="meta"))
    assert tuple(fmap.shape) == (2, *features)
    assert model.forward_head(fmap).shape == (2, 1000)


def test_googlenet_auxiliary_classifiers_train_and_are_optional() -> None:
    torch.manual_seed(0)
    model = create_model("googlenet", num_classes=5)
    assert n_params(create_model("googlenet")) == 6_624_904
    from cnnlab.models.googlenet import googlenet
    model = googlenet(num_classes=5, aux_logits=True).train()
    logits, aux = model.forward_with_aux(torch.randn(2, 3, 64, 64))
    assert logits.shape == (2, 5) and [a.shape for a in aux] == [(2, 5), (2, 5)]
    (logits.sum() + 0.3 * sum(a.sum() for a in aux)).backward()
    assert all(p.grad is not None for p in model.parameters())
    with torch.device("meta"):
        assert n_params(googlenet(aux_logits=True)) == n_params(
            tvm.googlenet(aux_logits=True, init_weights=False))


def test_lenet5_c5_is_a_dense_layer_on_32x32_inputs() -> None:
    model = create_model("lenet5").eval()
    assert model.forward_features(torch.zeros(1, 1, 32, 32)).shape == (1, 120, 1, 1)
    assert model(torch.zeros(3, 1, 64, 48)).shape == (3, 10)


def test_create_model_adapts_channels_and_classes() -> None:
    model = meta_model("resnet18", num_classes=10, in_channels=1)
    assert model.stem[0][0].in_channels == 1 and model.fc.out_features == 10
    assert n_params(meta_model("mlp", in_channels=3, input_size=32)) == 3 * 32 * 32 * 300 + 300 + 30_100 + 1_010


def test_unknown_model_name_suggests_close_names() -> None:
    with pytest.raises(TargetError, match=r"unknown zoo model .resnet51. \(did you mean .*resnet50"):
        get_entry("resnet51")
    assert get_entry("ResNet-50").name == "resnet50"
    with pytest.raises(TargetError, match="num_classes"):
        create_model("lenet5", num_classes=0)


# The points Géron's chapter (and its exercise 6 answer) makes about each architecture
BOOK_POINTS = {
    "AlexNet": ["larger and deeper", "stacked directly on each other", "data augmentation", "dropout", "relu", "lrn"],
    "VGG": ["3×3", "deep"],
    "GoogLeNet": ["inception module", "1×1", "far fewer parameters", "global average pooling"],
    "ResNet": ["skip", "residual", "152"],
    "SE-ResNet": ["squeeze-and-excitation", "recalibrate", "channel"],
    "Xception": ["depthwise separable", "spatial and cross-channel", "fewer parameters"],
    "EfficientNet": ["compound scaling", "depth, width and resolution", "neural architecture search"],
}


@pytest.mark.parametrize("family", sorted(BOOK_POINTS))
def test_each_familys_line_states_the_books_points(family):
    lines = {e.innovation.lower() for e in ZOO.values() if e.family == family}
    assert lines
    for line in lines:
        missing = [p for p in BOOK_POINTS[family] if p not in line]
        assert not missing, f"{family}: '{line}' lacks {missing}"


def _macs(model: nn.Module, shape: tuple[int, int, int]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *shape, device="meta"))
    return counter.get_total_flops() // 2


def test_resnet50_v1_is_torchvisions_resnet50_with_the_stride_moved_to_the_first_1x1() -> None:
    """Oracle: torchvision's ResNet-50 with each strided bottleneck's stride moved by hand; the paper's 3.8 G."""
    with torch.device("meta"):
        ref = tvm.resnet50()
    for block in ref.modules():
        if type(block).__name__ == "Bottleneck" and block.conv2.stride == (2, 2):
            block.conv1.stride, block.conv2.stride = (2, 2), (1, 1)
    ours = meta_model("resnet50_v1")
    assert n_params(ours) == n_params(ref)
    assert _macs(ours, (3, 224, 224)) == _macs(ref, (3, 224, 224)) == 3_857_973_248
    assert _macs(meta_model("resnet50"), (3, 224, 224)) == 4_089_184_256


def test_googlenet_paper_has_5x5_kernels_where_torchvision_has_3x3() -> None:
    """Oracle: torchvision's GoogLeNet with each inception's "5×5" branch convolution widened to 5×5 by hand."""
    with torch.device("meta"):
        ref = tvm.googlenet(aux_logits=False, init_weights=False)
        for block in ref.modules():
            if type(block).__name__ == "Inception":
                conv = block.branch3[1].conv
                block.branch3[1].conv = nn.Conv2d(conv.in_channels, conv.out_channels, 5, padding=2, bias=False)
    ours = meta_model("googlenet_paper")
    assert n_params(ours) == n_params(ref) > n_params(meta_model("googlenet"))
    assert _macs(ours, (3, 224, 224)) == _macs(ref, (3, 224, 224))


@pytest.mark.parametrize("depth, width", [(18, 32), (50, 16)])
def test_a_narrower_resnet_is_the_papers_with_every_channel_count_scaled(depth, width):
    """Oracle: the paper's ResNet (width 64, torchvision's parameter count, tested above) with every channel count
    but the image's and the classes' times width/64, layer by layer; the same layers, nothing else changed."""
    from cnnlab.models.resnet import ResNet

    with torch.device("meta"):
        wide = dict(ResNet(depth, num_classes=10, in_channels=1).named_parameters())
        narrow = dict(ResNet(depth, num_classes=10, in_channels=1, width=width).named_parameters())
    assert narrow.keys() == wide.keys()
    for name, p in wide.items():
        keep = {1: 1} if name == "stem.0.0.weight" else {0: 10} if name.startswith("fc.") else {}
        want = [keep.get(d) if d in keep and n == keep[d] else n * width // 64 for d, n in enumerate(p.shape[:2])]
        assert list(narrow[name].shape) == want + list(p.shape[2:]), name
    with pytest.raises(ValueError, match="width must be a whole number"):
        ResNet(18, width=0)
