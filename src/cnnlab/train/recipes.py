"""Each task's recipe: its networks and the settings it trains them with by default (torch-free).

The tasks (:mod:`cnnlab.train.tasks`) and ``cnnlab segment train`` read these;
:meth:`cnnlab.train.config.TrainConfig.for_task` gives them to Python users::

    train(TrainConfig.for_task("semantic", data="data/scenes"))   # unet, batch 32, lr 2e-3, 10 epochs

Classification's recipe is :class:`TrainConfig`'s own defaults (measured in docs/train.md). The model
lists equal the zoo registry's ``task=`` entries (a test checks it; the registry itself imports torch).
"""

from __future__ import annotations

from typing import Any

MODELS: dict[str, tuple[str, ...]] = {"semantic": ("unet", "fcn8s", "fcn16s", "fcn32s"), "instance": ("maskrcnn",)}

# segmentation's own recipes (docs/segmentation.md): smaller batches of larger images, a higher peak rate for
# Adam/AdamW (cnnlab train's is 1e-3), mirrored scenes; "width" is the first level's channels (U-Net, FCN) or
# the feature pyramid's (Mask R-CNN)
RECIPES: dict[str, dict[str, Any]] = {
    "semantic": {"model": "unet", "batch": 32, "adam_lr": 2e-3, "epochs": 10, "width": 16, "augment": "flip"},
    "instance": {"model": "maskrcnn", "batch": 16, "adam_lr": 1e-3, "epochs": 3, "width": 64, "augment": "flip"},
}


def task_of_model(name: str) -> str | None:
    """The segmentation task a model name belongs to (None: not a segmentation network)."""
    return next((task for task, names in MODELS.items() if name in names), None)


def model_options(task: str, model: str, width: int | None = None, depth: int = 4,
                  backbone: str | None = None) -> dict[str, Any]:
    """The builder options a segmentation model is trained with: the recipe's width unless given."""
    width = width or RECIPES[task]["width"]
    if task == "instance":
        return {"fpn_channels": width, "backbone": backbone or "resnet18"}
    if model == "unet":
        return {"width": width, "depth": depth}
    if backbone not in (None, "vgg"):
        return {"backbone": backbone}
    return {"width": width}
