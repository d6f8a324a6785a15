"""RoIAlign (He et al. 2017) as matrix products: torchvision's arithmetic, 3–10× faster to train on small CPU maps.

RoIAlign averages ``sampling_ratio²`` bilinear samples per output bin. Bilinear
interpolation is separable and the samples of a region form a product grid, so
a region's output is ``Ay · X · Axᵀ`` for its image's feature map ``X`` (H×W, per
channel), with ``Ay`` (bins × H) and ``Ax`` (bins × W) holding each bin's averaged
interpolation weights along one axis: one ``mm`` per image and one ``bmm`` for the
batch, whose backward is as many more — where torchvision's CPU kernel walks
every sample of every channel of every region on one thread in its backward
(~30 % of a quick Mask R-CNN training step, measured: docs/benchmarks.md).

The weights follow torchvision's ``roi_align`` exactly (``aligned`` offsets, the
1-pixel minimum size of unaligned regions, samples past ``[-1, size]`` read as 0,
coordinates in ``[-1, 0)`` clamped to 0, the last row/column repeated past it);
tests/models/test_roialign.py checks outputs and gradients against it. Regions
are the boxes of torchvision's detection code, which carry no gradient here
either. Half-precision maps are pooled in float32 and cast back, as torchvision's
autocast wrapper does. Left to torchvision's kernel: an adaptive ``sampling_ratio``
(≤ 0: a per-region grid, not separable batch-wide), maps past
:data:`MAX_MAP_PIXELS` (the products grow with the map, its kernel does not) and
GPU tensors (its CUDA kernel runs in parallel).
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops import roi_align as torchvision_roi_align
from torchvision.ops.poolers import _convert_to_roi_format, _filter_input, _setup_scales

# the largest map (H·W) pooled as matrix products: the first product costs H·W·C per bin row where torchvision's
# kernel costs ~4·C per bin; forward + backward of 512 RoIs × 64 channels on 16 maps, 7×7 bins: 25 vs 116 ms at
# 16×16, 37 vs 121 at 32×32, 85 vs 130 at 48×48, 130 vs 140 at 64×64 (docs/benchmarks.md) — past 48×48, torchvision's
# one-thread kernel
MAX_MAP_PIXELS = 48 * 48


def axis_weights(start: Tensor, length: Tensor, bins: int, sampling: int, size: int) -> Tensor:
    """``(R, bins, size)``: each bin's mean bilinear weight on each of ``size`` pixels along one axis, for
    regions starting at ``start`` and ``length`` pixels long (both ``(R,)``, in feature-map pixels)."""
    steps = (torch.arange(bins * sampling, dtype=start.dtype, device=start.device) + 0.5) / sampling
    p = start[:, None] + steps[None] * (length / bins)[:, None]            # (R, bins·sampling) sample positions
    inside = ((p >= -1) & (p <= size)).to(start.dtype)                     # torchvision: 0 beyond a pixel outside
    p = p.clamp(min=0)
    low = p.floor().long()
    edge = low >= size - 1                                                 # at or past the last pixel: read it
    low = low.clamp(max=size - 1)
    high = torch.where(edge, low, low + 1)
    frac = torch.where(edge, torch.zeros_like(p), p - low.to(p.dtype))
    w = torch.zeros(start.shape[0], bins * sampling, size, dtype=start.dtype, device=start.device)
    w.scatter_add_(2, low[..., None], ((1 - frac) * inside)[..., None])
    w.scatter_add_(2, high[..., None], (frac * inside)[..., None])
    return w.view(-1, bins, sampling, size).mean(2)


def roi_align(x: Tensor, rois: Tensor, output_size: tuple[int, int], spatial_scale: float = 1.0,
              sampling_ratio: int = -1, aligned: bool = False) -> Tensor:
    """torchvision's :func:`~torchvision.ops.roi_align` for ``x`` ``(N, C, H, W)`` and ``rois`` ``(R, 5)`` rows of
    (image index, x1, y1, x2, y2): ``(R, C, *output_size)``, computed as ``Ay · X · Axᵀ`` per region on CPU maps
    of up to :data:`MAX_MAP_PIXELS` pixels. Half-precision maps are pooled in float32 and the result cast back, as
    torchvision's autocast wrapper does."""
    n, c, h, w = x.shape
    if sampling_ratio <= 0 or x.device.type != "cpu" or h * w > MAX_MAP_PIXELS:
        return torchvision_roi_align(x, rois, output_size, spatial_scale, sampling_ratio, aligned)
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    with torch.autocast("cpu", enabled=False):
        out = _separable(x.to(work), rois.detach().to(work), output_size, spatial_scale, sampling_ratio, aligned)
    return out.to(x.dtype)


def _separable(x: Tensor, rois: Tensor, output_size: tuple[int, int], spatial_scale: float, sampling: int,
               aligned: bool) -> Tensor:
    """:func:`roi_align`'s arithmetic: per image, its regions' ``Ay`` stacked times its map (one ``mm``), then each
    region's rows times its ``Axᵀ`` (one ``bmm``); regions come back in the order given."""
    (ph, pw), (n, c, h, w), r = output_size, x.shape, rois.shape[0]
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (rois[:, i] * spatial_scale - offset for i in range(1, 5))
    width, height = x2 - x1, y2 - y1
    if not aligned:                                                        # torchvision's 1-pixel minimum
        width, height = width.clamp(min=1), height.clamp(min=1)
    image = rois[:, 0].long()
    order = torch.argsort(image, stable=True)                              # regions grouped by image
    ay = axis_weights(y1[order], height[order], ph, sampling, h)           # (R, ph, H)
    ax = axis_weights(x1[order], width[order], pw, sampling, w)            # (R, pw, W)
    maps = x.transpose(1, 2).reshape(n, h, c * w)                          # each image's map as (H, C·W)
    counts = torch.bincount(image, minlength=n).tolist()
    starts = [0, *itertools.accumulate(counts)][:-1]
    rows = [ay[s:s + k].reshape(k * ph, h) @ maps[b] for b, (s, k) in enumerate(zip(starts, counts)) if k]
    rows = torch.cat(rows) if rows else x.new_zeros(0, c * w)              # (R·ph, C·W)
    out = torch.bmm(rows.view(r, ph * c, w), ax.transpose(1, 2))           # (R, ph·C, pw)
    return out.view(r, ph, c, pw).transpose(1, 2)[torch.argsort(order)].contiguous()


class SeparableMultiScaleRoIAlign(MultiScaleRoIAlign):
    """torchvision's :class:`~torchvision.ops.MultiScaleRoIAlign` (the same level mapping and scales) with each
    level pooled by :func:`roi_align` above."""

    def forward(self, x: dict[str, Tensor], boxes: list[Tensor], image_shapes: list[tuple[int, int]]) -> Tensor:
        features = _filter_input(x, self.featmap_names)
        if self.scales is None or self.map_levels is None:
            self.scales, self.map_levels = _setup_scales(features, image_shapes, self.canonical_scale,
                                                         self.canonical_level)
        rois = _convert_to_roi_format(boxes)
        size = tuple(self.output_size)
        if len(features) == 1:
            return roi_align(features[0], rois, size, self.scales[0], self.sampling_ratio)
        levels = self.map_levels(boxes)
        result = features[0].new_zeros((len(rois), features[0].shape[1], *size))
        for level, (feature, scale) in enumerate(zip(features, self.scales)):
            where = torch.where(levels == level)[0]
            if where.numel():
                result[where] = roi_align(feature, rois[where], size, scale, self.sampling_ratio).to(result.dtype)
        return result
