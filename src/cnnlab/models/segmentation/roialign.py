"""RoIAlign (He et al. 2017) as two matrix products: torchvision's arithmetic, 4–8× faster to train on CPU.

RoIAlign averages ``sampling_ratio²`` bilinear samples per output bin. Bilinear
interpolation is separable and the samples of a region form a product grid, so
a region's output is ``Ay · X · Axᵀ`` for its image's feature map ``X`` (H×W, per
channel), with ``Ay`` (bins × H) and ``Ax`` (bins × W) holding each bin's averaged
interpolation weights along one axis. Batched over a batch's images, that is two
``bmm`` calls whose backward is two more — where torchvision's CPU kernel walks
every sample of every channel of every region on one thread in its backward
(~30 % of a quick Mask R-CNN training step, measured: docs/benchmarks.md).

The weights follow torchvision's ``roi_align`` exactly (``aligned`` offsets, the
1-pixel minimum size of unaligned regions, samples past ``[-1, size]`` read as 0,
coordinates in ``[-1, 0)`` clamped to 0, the last row/column repeated past it);
tests/models/test_roialign.py checks outputs and gradients against it. Regions
are the boxes of torchvision's detection code, which carry no gradient here
either. An adaptive ``sampling_ratio`` (≤ 0: a per-region grid) is not separable
batch-wide and is left to torchvision's kernel.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops import roi_align as torchvision_roi_align
from torchvision.ops.poolers import _convert_to_roi_format, _filter_input, _setup_scales


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
    (image index, x1, y1, x2, y2): ``(R, C, *output_size)``, computed as ``Ay · X · Axᵀ`` per region."""
    if sampling_ratio <= 0:
        return torchvision_roi_align(x, rois, output_size, spatial_scale, sampling_ratio, aligned)
    (ph, pw), (n, c, h, w), r = output_size, x.shape, rois.shape[0]
    rois = rois.detach().to(x.dtype)
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (rois[:, i] * spatial_scale - offset for i in range(1, 5))
    width, height = x2 - x1, y2 - y1
    if not aligned:                                                        # torchvision's 1-pixel minimum
        width, height = width.clamp(min=1), height.clamp(min=1)
    ay = axis_weights(y1, height, ph, sampling_ratio, h)                   # (R, ph, H)
    ax = axis_weights(x1, width, pw, sampling_ratio, w)                    # (R, pw, W)
    image = rois[:, 0].long()
    slot = _slots(image, n)
    per_image = x.new_zeros(n, int(slot.max()) + 1 if r else 0, ph, h)     # each image's regions' Ay, padded
    per_image[image, slot] = ay
    rows = torch.bmm(per_image.flatten(1, 2), x.transpose(1, 2).reshape(n, h, c * w))  # (N, M·ph, C·W)
    rows = rows.view(n, -1, ph, c, w)[image, slot]                         # (R, ph, C, W)
    out = torch.bmm(rows.reshape(r, ph * c, w), ax.transpose(1, 2))        # (R, ph·C, pw)
    return out.view(r, ph, c, pw).transpose(1, 2).contiguous()


def _slots(image: Tensor, n: int) -> Tensor:
    """Each region's position among its image's regions (0, 1, … in the order given)."""
    order = torch.argsort(image, stable=True)
    counts = torch.bincount(image, minlength=n)
    first = torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    slot = torch.empty_like(image)
    slot[order] = torch.arange(image.numel(), device=image.device) - first
    return slot


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
