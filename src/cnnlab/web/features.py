"""One test image through a run's network: its prediction and every convolution's and pooling's feature maps."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnlab.data.normalise import normalise

SHOWN = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, nn.ConvTranspose2d)
FEATURE_LAYERS = 24                # feature maps of at most this many layers per prediction
FEATURE_CHANNELS = 16              # and this many channels per layer


def png_data_url(array: Any) -> str:
    """A (H, W) or (H, W, 3) uint8 array as a ``data:image/png;base64,…`` URL."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def feature_grid(maps: torch.Tensor, channels: int, columns: int = 8) -> np.ndarray:
    """The first ``channels`` maps (C, H, W) side by side, each scaled to 0..255 on its own, 1-px grey gaps."""
    maps = maps[:channels].float()
    c, h, w = maps.shape
    lo = maps.flatten(1).min(1).values[:, None, None]
    hi = maps.flatten(1).max(1).values[:, None, None]
    scaled = ((maps - lo) / (hi - lo).clamp_min(1e-12) * 255).round().to(torch.uint8).numpy()
    cols = min(columns, c)
    rows = -(-c // cols)
    grid = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), 128, np.uint8)
    for k in range(c):
        r, q = divmod(k, cols)
        grid[r * (h + 1):r * (h + 1) + h, q * (w + 1):q * (w + 1) + w] = scaled[k]
    return grid


@torch.no_grad()
def predict_with_features(r: dict[str, Any], index: int) -> dict[str, Any]:
    """Prediction (top-5 classes, or the mask overlay) and feature maps of test image ``index`` of a loaded run."""
    model: nn.Module = r["model"]
    img = r["images"][index]
    captured: list[tuple[str, nn.Module, torch.Tensor]] = []
    hooks = [m.register_forward_hook(lambda mod, _, out, name=name: captured.append((name, mod, out)))
             for name, m in model.named_modules() if isinstance(m, SHOWN)]
    try:
        out = model(normalise(img.unsqueeze(0), r["mean"], r["std"])).float()
    finally:
        for h in hooks:
            h.remove()
    layers = []
    for name, mod, t in captured[:FEATURE_LAYERS]:
        if t.dim() != 4:
            continue
        layers.append({"name": name, "type": type(mod).__name__, "shape": list(t.shape[1:]),
                       "channels_shown": min(FEATURE_CHANNELS, t.shape[1]),
                       "image": png_data_url(feature_grid(t[0], FEATURE_CHANNELS))})
    doc: dict[str, Any] = {"index": index, "layers": layers, "layers_total": len(captured)}
    classes = r["classes"]
    if r["task"] == "classification":
        prob = torch.softmax(out, 1)[0]
        top = prob.topk(min(5, len(classes)))
        doc["top"] = [{"class": classes[int(i)], "probability": float(p)} for p, i in zip(top.values, top.indices)]
        doc["truth"] = classes[int(r["truth"][index])]
    else:
        from cnnlab.viz.segmentation import colour_mask, overlay

        pred = out.argmax(1)[0].to(torch.uint8).numpy()
        truth = r["truth"][index].numpy()
        doc["overlay"] = png_data_url(overlay(img, pred))
        doc["prediction"] = png_data_url(colour_mask(pred))
        doc["truth"] = png_data_url(colour_mask(truth))
        present = sorted(set(np.unique(pred).tolist()) | set(np.unique(truth).tolist()))
        doc["classes"] = {classes[k]: k for k in present if k < len(classes)}
    return doc
