"""Augmentation presets, applied to a whole uint8 batch at once with per-image random parameters.

``none``    nothing.
``flip``    horizontal flip where the data allows it, nothing else (no resampling at all).
``shift``   shift only, up to 30 % of the size either way (8 pixels of 28), nearest-neighbour, no flip:
            the translation augmentation of the CNN-vs-dense study.
``basic``   shift up to 10 % of the size; horizontal flip where the data allows it.
``strong``  random resized crop (70–100 % of the area, aspect 0.85–1.18), rotation up to ±10°,
            shift up to 10 %, brightness and contrast ±30 %; horizontal flip where the data allows it.
``erase``   horizontal flip where the data allows it, and random erasing (Zhong et al., AAAI 2020): with
            chance 0.5 one rectangle of 2–33 % of the image, aspect 0.3–3.3, filled with random values
            (each channel its own: the paper's best fill; torchvision's ``RandomErasing`` has the same
            ranges). A segmentation mask's erased pixels are ignored by the loss.

How: the geometric steps of one image compose into one 2×3 affine matrix
(flip → shift → rotation → crop, in the inverse direction that sampling
needs), and one ``torch.nn.functional.grid_sample`` call (zero fill, as
``torchvision.transforms.v2.RandomAffine`` fills) warps the whole batch —
nearest-neighbour for ``basic`` (torchvision's ``RandomAffine`` default: a
shifted image stays as sharp as the test images; bilinear sub-pixel shifts
blur every training image, and measurably cost test accuracy), bilinear for
``strong``, whose crops rescale (``RandomResizedCrop``'s default); brightness multiplies, contrast blends with each image's mean grey
level, as torchvision's ``ColorJitter`` does. One batched call instead of a
Python loop over images costs ~1 ms per 128 Fashion-MNIST images instead of
~100 ms.

Randomness comes only from the ``torch.Generator`` passed in, never from
torch's global generator: the training engine seeds one per global step, so
the augmented batch at step k is the same whether or not the run was
interrupted, and it can be prepared in a background thread while the
previous step computes (dropout's draws on the global generator are not
disturbed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cnnlab.errors import CnnlabError
from cnnlab.vocab import AUGMENT_PRESETS

PRESETS = AUGMENT_PRESETS


@dataclass(frozen=True)
class Augment:
    """Random geometric and photometric changes of a batch; ranges are those of the preset."""

    size: tuple[int, int]                 # (H, W) of the images
    flip: bool                            # horizontal flips allowed (not for digits)
    shift: float = 0.1                    # largest shift, a fraction of the size
    degrees: float = 0.0                  # largest rotation either way
    crop_scale: tuple[float, float] = (1.0, 1.0)    # area kept by the random resized crop
    crop_ratio: tuple[float, float] = (1.0, 1.0)    # its aspect ratio (width / height)
    jitter: float = 0.0                   # brightness and contrast factors in [1 - jitter, 1 + jitter]
    mode: str = "nearest"                 # grid_sample's interpolation: nearest keeps shifted pixels sharp
    erase: float = 0.0                    # chance of one randomly erased rectangle per image

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None, first: int = 0,
                 total: int | None = None) -> torch.Tensor:
        """Augmented copy of ``images`` (N, C, H, W) uint8, each image with its own draw.

        ``first``/``total``: the images are rows ``first … first + N`` of a batch
        of ``total`` (a torchrun process's slice): draws are made for the whole
        batch, so every process count gives each image the same transformation.
        """
        return self.warp(images, None, generator, first, total)[0]

    def warp(self, images: torch.Tensor, masks: torch.Tensor | None, generator: torch.Generator | None = None,
             first: int = 0, total: int | None = None, fill: int = 255) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Augmented copies of ``images`` and of their ``masks`` (N, H, W) uint8 class indices, if given.

        Each mask moves exactly as its image (the same matrix), sampled
        nearest-neighbour so class indices stay class indices; pixels that
        come from outside the image get ``fill`` (255: ignored by the loss,
        as torchvision's segmentation references pad masks). Photometric
        changes touch the images only.
        """
        n = images.shape[0]
        total = n if total is None else total
        rows = slice(first, first + n)
        if n == 0:
            return images.clone(), None if masks is None else masks.clone()
        x = images.float()
        theta = self.matrices(total, generator, tuple(images.shape[-2:]))[rows]   # this batch's H, W
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode=self.mode, padding_mode="zeros", align_corners=False)
        if masks is not None:      # shift by one so that zero padding marks "outside"
            m = F.grid_sample(masks.float().add(1).unsqueeze(1), grid, mode="nearest", padding_mode="zeros",
                              align_corners=False).squeeze(1)
            masks = torch.where(m == 0, float(fill), m - 1).to(torch.uint8)
        if self.jitter:
            brightness = self._uniform(total, 1 - self.jitter, 1 + self.jitter, generator)[rows].view(n, 1, 1, 1)
            contrast = self._uniform(total, 1 - self.jitter, 1 + self.jitter, generator)[rows].view(n, 1, 1, 1)
            x = (x * brightness).clamp_(0, 255)
            grey = x.mean(dim=(1, 2, 3), keepdim=True)       # torchvision: mean of the greyscale image
            x = ((x - grey) * contrast + grey).clamp_(0, 255)
        if self.erase:
            erased, noise = self.erasing(total, tuple(x.shape[1:]), generator)
            erased, noise = erased[rows], noise[rows]
            x = torch.where(erased[:, None], noise, x)
            if masks is not None:
                masks = masks.masked_fill(erased, fill)
        return x.round_().to(torch.uint8), masks

    def erasing(self, n: int, shape: tuple[int, ...], generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Random erasing for ``n`` images of ``shape`` (C, H, W): (which pixels are erased (n, H, W) bool, the
        random values 0–255 that fill them (n, C, H, W) float, each channel its own). torchvision's ``RandomErasing`` ranges: area 2–33 %,
        aspect 0.3–3.3 (log-uniform); a rectangle larger than the image is cut to it (torchvision redraws)."""
        _, h, w = shape
        on = torch.rand(n, generator=generator) < self.erase
        area = self._uniform(n, 0.02, 0.33, generator) * (h * w)
        ratio = self._uniform(n, math.log(0.3), math.log(3.3), generator).exp()
        eh = (area * ratio).sqrt().round().clamp(1, h)
        ew = (area / ratio).sqrt().round().clamp(1, w)
        top = (torch.rand(n, generator=generator) * (h - eh + 1)).floor()
        left = (torch.rand(n, generator=generator) * (w - ew + 1)).floor()
        ys, xs = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
        inside = ((ys >= top.view(n, 1, 1)) & (ys < (top + eh).view(n, 1, 1))
                  & (xs >= left.view(n, 1, 1)) & (xs < (left + ew).view(n, 1, 1)))
        noise = torch.randint(0, 256, (n, *shape), generator=generator).float()
        return inside & on.view(n, 1, 1), noise

    def matrices(self, n: int, generator: torch.Generator | None = None,
                 size: tuple[int, int] | None = None) -> torch.Tensor:
        """(n, 2, 3) affine matrices mapping output coordinates to input coordinates ([-1, 1] units), for images
        of ``size`` (default the preset's; a batch cropped from a canvas of mixed sizes gives its own)."""
        size = size or self.size
        # random resized crop: the kept window's half-extent (sx, sy) and its centre (cx, cy)
        area = self._uniform(n, *self.crop_scale, generator)
        log_r = self._uniform(n, math.log(self.crop_ratio[0]), math.log(self.crop_ratio[1]), generator)
        ratio = log_r.exp()
        sx, sy = (area * ratio).sqrt().clamp(max=1.0), (area / ratio).sqrt().clamp(max=1.0)
        cx = self._uniform(n, -1, 1, generator) * (1 - sx)
        cy = self._uniform(n, -1, 1, generator) * (1 - sy)
        angle = self._uniform(n, -self.degrees, self.degrees, generator) * (math.pi / 180)
        tx = self._uniform(n, -2 * self.shift, 2 * self.shift, generator)     # 10 % of the width = 0.2 units
        ty = self._uniform(n, -2 * self.shift, 2 * self.shift, generator)
        flip = torch.ones(n)
        if self.flip:
            flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
        return compose(size, sx, sy, cx, cy, angle, tx, ty, flip)

    @staticmethod
    def _uniform(n: int, low: float, high: float, generator: torch.Generator | None) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=generator)


def compose(size: tuple[int, int], sx: torch.Tensor, sy: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor,
            angle: torch.Tensor, tx: torch.Tensor, ty: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """(n, 2, 3) matrices for ``affine_grid``: p_in = S · R(-angle) · (Flip · p_out - t) + c.

    Coordinates are in [-1, 1] units (y down). ``sx, sy``: half-extent of the
    kept window, ``cx, cy``: its centre, ``angle`` (radians): the content turns
    clockwise on screen for a positive angle, ``tx, ty``: content shift,
    ``flip``: -1 mirrors left-right, 1 keeps.
    """
    h, w = size
    # rotation in pixel space (square pixels on a non-square image): D⁻¹ R D with D = diag(w, h)
    cos, sin = angle.cos(), angle.sin()
    r00, r01, r10, r11 = cos, sin * h / w, -sin * w / h, cos
    theta = torch.empty(sx.shape[0], 2, 3)
    theta[:, 0, 0] = sx * r00 * flip
    theta[:, 0, 1] = sx * r01
    theta[:, 1, 0] = sy * r10 * flip
    theta[:, 1, 1] = sy * r11
    theta[:, 0, 2] = -sx * (r00 * tx + r01 * ty) + cx
    theta[:, 1, 2] = -sy * (r10 * tx + r11 * ty) + cy
    return theta


def make_augment(preset: str, size: tuple[int, int], flip: bool) -> Augment | None:
    """The augmentation of ``preset`` for images of ``size`` (H, W); ``None`` for ``none``."""
    if preset not in PRESETS:
        raise CnnlabError(f"unknown augmentation preset '{preset}'; use one of {', '.join(PRESETS)}")
    if preset == "none":
        return None
    if preset == "flip":
        return Augment(tuple(size), flip, shift=0.0) if flip else None  # type: ignore[arg-type]
    if preset == "shift":
        return Augment(tuple(size), False, shift=0.3)  # type: ignore[arg-type]
    if preset == "basic":
        return Augment(tuple(size), flip, shift=0.1)  # type: ignore[arg-type]
    if preset == "erase":
        return Augment(tuple(size), flip, shift=0.0, erase=0.5)  # type: ignore[arg-type]
    return Augment(tuple(size), flip, shift=0.1, degrees=10.0, crop_scale=(0.7, 1.0),  # type: ignore[arg-type]
                   crop_ratio=(0.85, 1.18), jitter=0.3, mode="bilinear")


def apply(augment: Augment | None, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """``images`` augmented (a copy), or unchanged for ``augment=None``."""
    return images if augment is None else augment(images, generator)
