"""Data in memory: classification sets (:mod:`.images`), segmentation scenes (:mod:`.scenes`) and mask
folders (:mod:`.segmentation`), augmentation (:mod:`.augment`).

    from cnnlab.data import load_data
    data = load_data("digits", val_fraction=0.1, seed=0)
    data.train.images.shape     # (N, 1, 8, 8) uint8

The names below load on first use, so torch-free modules of this package
(``scenes``' configuration, read by the CLI's parser) import without torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["NAMED", "DataError", "ImageData", "Split", "load_data"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from cnnlab.data import images

        return getattr(images, name)
    raise AttributeError(f"module 'cnnlab.data' has no attribute '{name}'")
