"""RoIAlign as two matrix products: torchvision's ``roi_align`` is the oracle, in float64, outputs and gradients."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torchvision.ops import MultiScaleRoIAlign, roi_align as reference

from cnnlab.models.segmentation.roialign import SeparableMultiScaleRoIAlign, roi_align


def regions(n: int, count: int, side: float, seed: int) -> torch.Tensor:
    """(count, 5) rows of (image, x1, y1, x2, y2): boxes of every size, some past the map's border and some
    smaller than a pixel (where the unaligned form's 1-pixel minimum and the clamps apply)."""
    g = torch.Generator().manual_seed(seed)
    corner = torch.rand(count, 2, generator=g, dtype=torch.float64) * (side + 4) - 3
    size = torch.rand(count, 2, generator=g, dtype=torch.float64) ** 2 * side
    image = torch.randint(0, n, (count, 1), generator=g).double()
    return torch.cat([image, corner, corner + size], 1)


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling, out, scale", [(2, (7, 7), 0.25), (1, (14, 14), 0.5), (3, (5, 9), 1.0)])
def test_outputs_and_gradients_equal_torchvisions(aligned, sampling, out, scale):
    x = torch.randn(3, 4, 9, 13, dtype=torch.float64, requires_grad=True)
    rois = regions(3, 40, 13 / scale, seed=sampling)
    mine = roi_align(x, rois, out, scale, sampling, aligned)
    theirs = reference(x, rois, out, scale, sampling, aligned)
    torch.testing.assert_close(mine, theirs, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(theirs)
    torch.testing.assert_close(torch.autograd.grad(mine, x, grad)[0], torch.autograd.grad(theirs, x, grad)[0],
                               rtol=1e-12, atol=1e-12)


def test_an_image_with_no_region_and_no_region_at_all():
    x = torch.randn(4, 2, 6, 6, dtype=torch.float64)
    rois = torch.tensor([[2.0, 0.5, 1.0, 4.0, 5.5], [2.0, 1.0, 1.0, 2.0, 2.0], [0.0, 0.0, 0.0, 6.0, 6.0]],
                        dtype=torch.float64)
    torch.testing.assert_close(roi_align(x, rois, (3, 3), 1.0, 2), reference(x, rois, (3, 3), 1.0, 2))
    assert roi_align(x, rois[:0], (3, 3), 1.0, 2).shape == (0, 2, 3, 3)


def test_an_adaptive_sampling_ratio_is_torchvisions_own():
    x, rois = torch.randn(2, 3, 8, 8), regions(2, 10, 8, seed=5).float()
    torch.testing.assert_close(roi_align(x, rois, (4, 4), 1.0, -1), reference(x, rois, (4, 4), 1.0, -1))


def test_the_multiscale_pooler_maps_levels_as_torchvisions():
    # a pyramid of 4 levels (strides 4…32) for 512×512 images; boxes of 16 to 512 px reach every level
    torch.manual_seed(0)
    features = OrderedDict((str(i), torch.randn(2, 3, 512 >> (i + 2), 512 >> (i + 2), dtype=torch.float64,
                                                requires_grad=True)) for i in range(4))
    g = torch.Generator().manual_seed(1)
    boxes = []
    for _ in range(2):
        side = 2 ** (4 + 5 * torch.rand(40, 1, generator=g, dtype=torch.float64))
        corner = torch.rand(40, 2, generator=g, dtype=torch.float64) * (512 - side)
        boxes.append(torch.cat([corner, corner + side], 1))
    mine_pool, theirs_pool = SeparableMultiScaleRoIAlign(list(features), 7, 2), MultiScaleRoIAlign(list(features), 7, 2)
    mine = mine_pool(features, boxes, [(512, 512)] * 2)
    theirs = theirs_pool(features, boxes, [(512, 512)] * 2)
    assert set(theirs_pool.map_levels(boxes).tolist()) == {0, 1, 2, 3}
    torch.testing.assert_close(mine, theirs, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(theirs)
    for a, b in zip(torch.autograd.grad(mine, list(features.values()), grad),
                    torch.autograd.grad(theirs, list(features.values()), grad)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_half_precision_maps_are_pooled_in_float32_as_torchvisions_autocast_does():
    """bfloat16 maps, float32 boxes, under CPU autocast (bf16-amp): pooled in float32 and cast back, so within one
    bfloat16 rounding of the float32 result — box coordinates rounded to bfloat16 would be up to half a pixel off."""
    torch.manual_seed(0)
    x = torch.randn(2, 8, 24, 24)
    rois = regions(2, 60, 96, seed=3).float()
    exact = reference(x, rois, (7, 7), 0.25, 2, False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mine = roi_align(x.bfloat16(), rois, (7, 7), 0.25, 2)
    assert mine.dtype == torch.bfloat16
    torch.testing.assert_close(mine.float(), reference(x.bfloat16().float(), rois, (7, 7), 0.25, 2, False),
                               rtol=2 ** -7, atol=1e-6)
    assert (mine.float() - exact).abs().max() < 0.05


def test_one_level_and_maps_past_the_matrix_limit_are_torchvisions_numbers():
    from cnnlab.models.segmentation.roialign import MAX_MAP_PIXELS

    side = int(MAX_MAP_PIXELS ** 0.5) + 8                  # past the limit: torchvision's own kernel
    for size in (12, side):
        features = OrderedDict(p=torch.randn(2, 3, size, size, dtype=torch.float64))
        boxes = [regions(1, 20, 4 * size, seed=size)[:, 1:], regions(1, 5, 4 * size, seed=size + 1)[:, 1:]]
        mine = SeparableMultiScaleRoIAlign(["p"], 5, 2)(features, boxes, [(4 * size, 4 * size)] * 2)
        theirs = MultiScaleRoIAlign(["p"], 5, 2)(features, boxes, [(4 * size, 4 * size)] * 2)
        torch.testing.assert_close(mine, theirs, rtol=1e-12, atol=1e-12)
