"""FCN-32s/16s/8s and U-Net: the papers' sizes, outputs at the input's size, bilinear upsampling, clear size errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision.models as tvm

from cnnlab.errors import TargetError
from cnnlab.models import create_model, model_names
from cnnlab.models.segmentation.fcn import BilinearUp, VGGBackbone, learned_up


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_the_semantic_zoo_names():
    assert model_names("semantic") == ["fcn32s", "fcn16s", "fcn8s", "unet"]


def test_fcn_backbone_is_vgg16s_convolutional_part():
    with torch.device("meta"):
        assert n_params(VGGBackbone(3, 64, norm=False)) == n_params(tvm.vgg16().features) == 14_714_688


def test_fcn32s_has_the_papers_134_million_parameters():
    # Long et al. 2015, Table 1: FCN-VGG16, 134 M parameters (fc6 as a 7×7 convolution, fc7 1×1, 21 VOC classes)
    with torch.device("meta"):
        n = n_params(create_model("fcn32s", num_classes=21, in_channels=3, norm=False))
    assert round(n / 1e6) == 134
    # the skips add only 1×1 score layers and 2× upsamplers
    with torch.device("meta"):
        n8 = n_params(create_model("fcn8s", num_classes=21, in_channels=3, norm=False))
    assert n8 - n == (512 * 21 + 21) + (256 * 21 + 21) + 2 * (21 * 21 * 4 * 4)


def test_unet_has_the_channels_of_the_papers_figure_1():
    # Ronneberger et al. 2015, Fig. 1: 3×3 conv pairs at 64, 128, 256, 512, 1024 channels, 2×2 up-convolutions
    # halving the channels, a 1×1 output layer; 1 input channel, 2 classes. Counted here from the figure.
    def conv(i: int, o: int, k: int) -> int:
        return i * o * k * k + o

    widths = [64, 128, 256, 512, 1024]
    down = conv(1, 64, 3) + conv(64, 64, 3) + sum(conv(a, b, 3) + conv(b, b, 3) for a, b in zip(widths, widths[1:]))
    up = sum(conv(b, a, 2) + conv(b, a, 3) + conv(a, a, 3) for a, b in zip(widths, widths[1:]))
    with torch.device("meta"):
        assert n_params(create_model("unet", norm=False)) == down + up + conv(64, 2, 1) == 31_030_658


@pytest.mark.parametrize("name, options", [("fcn32s", {"width": 4}), ("fcn16s", {"width": 4}),
                                           ("fcn8s", {"width": 4}), ("fcn8s", {"backbone": "resnet18"}),
                                           ("unet", {"width": 4, "depth": 3})])
def test_output_is_per_pixel_scores_at_the_input_size_and_every_parameter_learns(name, options):
    torch.manual_seed(0)
    model = create_model(name, num_classes=5, in_channels=2, **options).train()
    x = torch.randn(2, 2, 64, 96)
    out = model(x)
    assert out.shape == (2, 5, 64, 96)
    F.cross_entropy(out, torch.randint(0, 5, (2, 64, 96))).backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []


def test_the_papers_bilinear_deconvolution_equals_interpolation_away_from_the_border():
    from cnnlab.models.segmentation.fcn import bilinear_kernel

    x = torch.randn(2, 3, 6, 5)
    for f in (2, 8, 32):
        deconv = F.conv_transpose2d(x, bilinear_kernel(3, f), stride=f, padding=f // 2, groups=3)
        ref = F.interpolate(x, scale_factor=f, mode="bilinear", align_corners=False)
        assert deconv.shape == ref.shape == BilinearUp(3, f)(x).shape
        assert torch.allclose(deconv[..., f:-f, f:-f], ref[..., f:-f, f:-f], atol=1e-5)
    up = learned_up(3)                                    # the learned 2× step starts as that deconvolution
    assert torch.allclose(up(x)[..., 2:-2, 2:-2], BilinearUp(3, 2)(x)[..., 2:-2, 2:-2], atol=1e-6)


def test_fcn_skips_start_at_zero_so_fcn8s_starts_as_a_coarse_net():
    torch.manual_seed(0)
    model = create_model("fcn8s", num_classes=3, in_channels=1, width=4)
    assert model.score_pool3.weight.abs().sum() == 0 and model.score_pool4.weight.abs().sum() == 0
    assert [n for n, _ in model.named_parameters() if "up_final" in n] == []        # fixed, not learned


@pytest.mark.parametrize("name, multiple", [("fcn8s", 32), ("fcn32s", 32), ("unet", 16)])
@pytest.mark.parametrize("h, w", [(40, 40), (50, 37), (33, 64)])
def test_any_size_is_padded_to_the_output_stride_and_cropped_back(name, multiple, h, w):
    """Oracle: the same network on the input zero-padded by hand (torch's F.pad) to the next multiple of its
    output stride, its scores cut back to H×W: identical; a multiple goes through unpadded."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=3, in_channels=1, width=4).eval()
    x = torch.randn(2, 1, h, w)
    ph, pw = -(-h // multiple) * multiple - h, -(-w // multiple) * multiple - w
    with torch.no_grad():
        out = model(x)
        by_hand = model(torch.nn.functional.pad(x, (0, pw, 0, ph)))[..., :h, :w]
    assert out.shape == (2, 3, h, w)
    assert torch.equal(out, by_hand)
    assert model.pad_input(torch.zeros(1, 1, multiple, 2 * multiple))[1] is None


def test_unknown_builder_options_are_named():
    with pytest.raises(TargetError, match="unet has no option 'backbone'"):
        create_model("unet", backbone="resnet18")
    with pytest.raises(TargetError, match="not a ResNet"):
        create_model("fcn8s", backbone="vgg16")


def test_memory_prediction_counts_the_per_pixel_target():
    from cnnlab.memory.estimate import estimate_memory

    with torch.device("meta"):
        model = create_model("unet", num_classes=4, in_channels=1, width=4, depth=2)
    report = estimate_memory(model, (1, 32, 32), 8, "adam")
    # the input category holds the float batch and the int64 per-pixel target (8×32×32 each)
    assert report.training.breakdown["input"] == 8 * 32 * 32 * 4 + 8 * 32 * 32 * 8


@pytest.mark.parametrize("name, options", [("unet", {"width": 16, "depth": 3}), ("fcn8s", {"width": 4})])
def test_predicted_training_peak_is_within_3_percent_of_the_measured_one(name, options):
    from cnnlab.memory.measure import measure_memory
    from cnnlab.memory.estimate import estimate_memory
    from cnnlab.memory.step import StepConfig

    torch.manual_seed(0)
    model = create_model(name, num_classes=11, in_channels=1, **options)
    predicted = estimate_memory(model, (1, 64, 64), 16, "adam", include_inference=False).training.peak_bytes
    measured, _ = measure_memory(model, (1, 64, 64), 16, StepConfig("adam"))
    assert abs(predicted - measured) / measured < 0.03


@pytest.mark.parametrize("side, kernel", [(64, 3), (128, 5), (224, 7), (512, 7)])
def test_segment_train_sizes_fc6_to_the_pool5_map(side, kernel):
    from cnnlab.train.tasks.semantic import build_semantic_model

    with torch.device("meta"):
        model, info = build_semantic_model("fcn8s", (1, side, side), 3, {"width": 4})
    assert model.classifier[0][0].kernel_size == (kernel, kernel) and info["options"]["fc_kernel"] == kernel
