"""Images of different sizes held as one tensor: each in the top-left corner of a shared canvas.

Real data sets mix sizes (Pascal VOC: 500×375, 375×500, 500×333, …) and a
segmentation label must never be resampled to make them agree. A split keeps its
images in an ``(N, C, H, W)`` canvas as large as its largest image, and each image's
own size in ``sizes`` ``(N, 2)`` (``None`` when every image fills the canvas, the
common case, which costs nothing). Masks are padded with 255 (ignore): the padding
is never in a loss or a metric. Image padding is set to the training images'
per-channel mean (:func:`fill_padding`), which standardises to 0 — what the
networks themselves pad with (:mod:`cnnlab.models.segmentation.base`).

A training batch is cropped to its largest image (``extent``), and the engine's
shuffled order is regrouped so that a batch holds images of one size where it can
(:func:`size_order`): on the mixed-size benchmark of ``docs/benchmarks.md`` this
was faster than padding random batches (the padded pixels are computed for
nothing). Evaluation runs each size apart (:func:`by_size`), so an image is
scored exactly as it is predicted alone.
"""

from __future__ import annotations

from typing import Any

import torch

from cnnlab import machine
from cnnlab.data.sources import DataError
from cnnlab.vocab import IGNORE_INDEX


def make_canvas(images: list[torch.Tensor], masks: list[torch.Tensor] | None, what: str
                ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``(images (N, C, H, W), masks (N, H, W) or None, sizes (N, 2) or None)`` from per-image tensors of one
    channel count; ``sizes`` is None when every image has the same size."""
    hw = [tuple(int(v) for v in x.shape[-2:]) for x in images]
    if len(set(hw)) <= 1:
        return torch.stack(images), None if masks is None else torch.stack(masks), None
    h, w = max(s[0] for s in hw), max(s[1] for s in hw)
    c = int(images[0].shape[0])
    need = len(images) * (c + (masks is not None)) * h * w
    machine.require_ram(need, f"{what}: {len(images):,} images of different sizes held on a {h}×{w} canvas",
                        "give --size H,W to resize them, or use fewer images", DataError)
    out = torch.zeros((len(images), c, h, w), dtype=torch.uint8)
    out_m = None if masks is None else torch.full((len(images), h, w), IGNORE_INDEX, dtype=torch.uint8)
    for i, (x, (ih, iw)) in enumerate(zip(images, hw)):
        out[i, :, :ih, :iw] = x
        if out_m is not None and masks is not None:
            out_m[i, :ih, :iw] = masks[i]
    return out, out_m, torch.tensor(hw, dtype=torch.int64)


def own_size(images: torch.Tensor, sizes: torch.Tensor | None, i: int) -> tuple[int, int]:
    """Image ``i``'s own (H, W)."""
    if sizes is None:
        return int(images.shape[-2]), int(images.shape[-1])
    return int(sizes[i, 0]), int(sizes[i, 1])


def extent(images: torch.Tensor, sizes: torch.Tensor | None, idx: torch.Tensor) -> tuple[int, int]:
    """The (H, W) that holds every image of ``idx``: the crop of the canvas a batch needs."""
    if sizes is None or idx.numel() == 0:
        return int(images.shape[-2]), int(images.shape[-1])
    top = sizes[idx].max(0).values
    return int(top[0]), int(top[1])


def by_size(sizes: torch.Tensor | None, n: int) -> list[torch.Tensor]:
    """The indices 0..n-1 grouped by image size (one group when every image has the same size)."""
    if sizes is None:
        return [torch.arange(n)]
    keys = sizes[:, 0] * (1 << 20) + sizes[:, 1]
    return [(keys == k).nonzero().flatten() for k in keys.unique()]


def size_order(order: torch.Tensor, sizes: torch.Tensor | None, batch: int) -> torch.Tensor:
    """The shuffled ``order`` regrouped so that consecutive batches hold images of one size where they can.

    Images are sorted by size (stable: the shuffle decides who shares a batch), cut into batches, and the
    batches put back in a shuffled order (each ranked by its earliest place in ``order``): a pure function
    of ``order``, so an interrupted run resumes with the same batches."""
    if sizes is None:
        return order
    cut = order.numel() - order.numel() % batch
    keep, tail = order[:cut], order[cut:]            # the engine drops the tail: a random set, as without grouping
    if keep.numel() == 0:
        return order
    keys = sizes[keep, 0] * (1 << 20) + sizes[keep, 1]
    grouped = keep[torch.sort(keys, stable=True).indices]
    position = torch.empty(int(order.max()) + 1, dtype=torch.int64)
    position[order] = torch.arange(order.numel())
    chunks = list(grouped.split(batch))
    rank = torch.tensor([int(position[c].min()) for c in chunks])
    return torch.cat([chunks[i] for i in rank.argsort().tolist()] + [tail])


def fill_padding(images: torch.Tensor, sizes: torch.Tensor | None, value: torch.Tensor) -> None:
    """Set every image's padding (outside its own size) to ``value`` (C,) uint8, in place."""
    if sizes is None:
        return
    for i, (h, w) in enumerate(sizes.tolist()):
        images[i, :, h:, :] = value.view(-1, 1, 1)
        images[i, :, :h, w:] = value.view(-1, 1, 1)


def pad_with_mean(data: Any, mean: torch.Tensor) -> None:
    """Set the canvas padding of every split of ``data`` (train, val, test) to the training mean pixel ``mean``
    ((1, C, 1, 1) in [0, 1]): standardised, the padding is 0, what the networks pad with themselves."""
    value = (mean.flatten() * 255).round().clamp(0, 255).to(torch.uint8)
    for split in (data.train, data.val, data.test):
        fill_padding(split.images, split.sizes, value)


def describe(images: torch.Tensor, sizes: torch.Tensor | None) -> str:
    """``'40×40'`` or ``'H 37–50, W 40–64'``: the sizes of a split's images."""
    if sizes is None:
        return f"{int(images.shape[-2])}×{int(images.shape[-1])}"
    lo, hi = sizes.min(0).values.tolist(), sizes.max(0).values.tolist()
    return f"H {lo[0]}–{hi[0]} × W {lo[1]}–{hi[1]} ({len(by_size(sizes, len(sizes)))} sizes)"
