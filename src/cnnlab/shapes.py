"""Input shapes as users type them (torch-free: the CLI parses them before loading anything)."""

from __future__ import annotations

from cnnlab.errors import ShapeError


def channels_last_hint(shape: tuple[int, ...]) -> str | None:
    """If ``shape`` looks like Keras' (H, W, C) order, the C,H,W shape it probably means; else ``None``.

    Keras (and so Géron's book) writes ``input_shape=[200, 300, 3]``; cnnlab,
    like PyTorch, reads (C, H, W). A last entry of 1 or 3 (grey, RGB) after two
    entries above 4 is almost certainly an image written channels-last (read
    as C, H, W it would be a map 1 or 3 pixels wide); 7×1×1 stays a valid C, H, W.
    """
    if len(shape) == 3 and shape[2] in (1, 3) and shape[0] > 4 and shape[1] > 4:
        return ",".join(map(str, (shape[2], shape[0], shape[1])))
    return None


def parse_shape(text: str, what: str = "--input") -> tuple[int, ...]:
    """``"3,224,224"`` or ``"3x224x224"`` -> ``(3, 224, 224)``."""
    parts = [p for p in text.replace("x", ",").replace("×", ",").replace(" ", "").split(",") if p]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if len(shape) not in (1, 3) or min(shape, default=0) <= 0:
        raise ShapeError(f"{what} '{text}' must be C,H,W (e.g. 3,224,224) or N for a vector input, "
                         "with positive integers")
    hint = channels_last_hint(shape)
    if hint:
        raise ShapeError(f"{what} '{text}' looks like Keras' height,width,channels order; cnnlab reads "
                         f"channels,height,width (as PyTorch does): use {what} {hint}")
    return shape
