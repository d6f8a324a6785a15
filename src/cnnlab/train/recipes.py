"""Each task's recipe: its networks and the settings it trains them with by default (torch-free).

The tasks (:mod:`cnnlab.train.tasks`) and ``cnnlab segment train`` read these;
:meth:`cnnlab.train.config.TrainConfig.for_task` gives them to Python users::

    train(TrainConfig.for_task("semantic", data="data/scenes"))   # unet, batch 32, lr 2e-3, 10 epochs

Classification's recipes (:data:`CLASSIFICATION_RECIPES`) fill in what ``cnnlab train`` is not given:
Fashion-MNIST's own by default, ``--recipe speedrun`` by name, else :class:`TrainConfig`'s defaults
(``TrainConfig.for_recipe`` in Python). The model lists equal the zoo registry's ``task=`` entries (a test
checks it; the registry itself imports torch).
"""

from __future__ import annotations

from typing import Any

MODELS: dict[str, tuple[str, ...]] = {"semantic": ("unet", "fcn8s", "fcn16s", "fcn32s"), "instance": ("maskrcnn",)}

# segmentation's own recipes (docs/segmentation.md): smaller batches of larger images, a higher peak rate for
# Adam/AdamW (cnnlab train's is 1e-3), mirrored scenes; "width" is the first level's channels (U-Net, FCN) or
# the feature pyramid's (Mask R-CNN); "roi_sampling" is RoIAlign's sampling points per bin side (1×1, not
# torchvision's 2×2: training steps 15 % faster, no difference in mask AP50 shown, docs/benchmarks.md "Instance segmentation")
RECIPES: dict[str, dict[str, Any]] = {
    "semantic": {"model": "unet", "batch": 32, "adam_lr": 2e-3, "epochs": 10, "width": 16, "augment": "flip"},
    "instance": {"model": "maskrcnn", "batch": 16, "adam_lr": 1e-3, "epochs": 3, "width": 64, "augment": "flip",
                 "roi_sampling": 1},
}


# classification's recipes: a named data set's own (what `cnnlab train --data fashion-mnist` runs with no flags) and
# the recipes named with --recipe; any setting given on the command line wins. Every figure is measured in
# docs/benchmarks.md ("Training on Fashion-MNIST"); settings a recipe leaves out are TrainConfig's defaults.
CLASSIFICATION_RECIPES: dict[str, dict[str, Any]] = {
    # 94.00 % on Fashion-MNIST's test set (median of 3 seeds) in 502 s on 2 cores of an Intel Xeon with AMX: the
    # goal, 94.0 % in 10 minutes, met at its edge; Adam's peak 3e-3 chosen on validation (median 94.62 % against
    # 94.50 % at 1e-3: docs/benchmarks.md, "The recipe at Adam's peak 3e-3")
    "fashion-mnist": {"model": "small_cnn", "batch": 128, "epochs": 20, "adam_lr": 3e-3, "augment": "flip",
                      "tta": "flip"},
    # the fastest recipe measured to 94 %: 94.00 % (median of 3 seeds) in 143 s on the Xeon, the goal (94 % in 150 s)
    # met at its edge (docs/benchmarks.md, "The speedrun's head": speedrun_cnn's flattened head, and what did not help;
    # "The speedrun, pooled first": 11 epochs of the pool-first network fill the time 8 did; "The speedrun at Adam's
    # peak 5e-3": the sweep 1e-3…1e-2; "A speedrun": the ablation)
    "speedrun": {"model": "speedrun_cnn", "batch": 256, "epochs": 11, "adam_lr": 5e-3, "augment": "flip",
                 "tta": "flip", "label_smoothing": 0.1},
}
DATA_RECIPES = {"fashion-mnist": "fashion-mnist", "fashionmnist": "fashion-mnist"}   # data name -> its recipe
RECIPE_CHOICES = ("auto", "none", *CLASSIFICATION_RECIPES)
RECIPE_FIELDS = ("model", "batch", "epochs", "lr", "weight_decay", "optimizer", "augment", "tta", "label_smoothing",
                 "val_fraction")


def recipe_lr(recipe: dict[str, Any], optimizer: str, lr: float | None) -> float | None:
    """The peak rate a run of ``recipe`` trains at: ``lr`` when given, else the recipe's ``adam_lr`` for Adam and
    AdamW only, else None (the optimizer's own default, :data:`cnnlab.vocab.DEFAULT_LR`: SGD at Adam's peak would
    crawl). One rule for every recipe, classification's and segmentation's."""
    if lr is None and optimizer in ("adam", "adamw"):
        return recipe.get("adam_lr")
    return lr


def with_recipe(recipe: dict[str, Any], given: dict[str, Any], defaults: Any) -> dict[str, Any]:
    """Every field of :data:`RECIPE_FIELDS`: what ``given`` sets (not None), else the recipe's, else ``defaults``'
    (a TrainConfig); the rate by :func:`recipe_lr`."""
    chosen = {f: given[f] if given.get(f) is not None else recipe.get(f, getattr(defaults, f)) for f in RECIPE_FIELDS}
    chosen["lr"] = recipe_lr(recipe, chosen["optimizer"], given.get("lr"))
    return chosen


def classification_recipe(name: str, data: str) -> tuple[str, dict[str, Any]]:
    """``(recipe name, its settings)`` for ``--recipe name`` on ``data``: ``auto`` is the data's own recipe (none
    for data without one), ``none`` is TrainConfig's defaults."""
    if name == "auto":
        name = DATA_RECIPES.get(data.lower().replace("_", "-"), "none")
    return name, dict(CLASSIFICATION_RECIPES.get(name, {}))


def recipe_line(cfg: Any, resumed: bool = False) -> str:
    """The run's first line when a recipe chose its settings: the recipe and what the run uses of it."""
    recipe = CLASSIFICATION_RECIPES.get(cfg.recipe, {})
    # adam_lr: the peak the run trains at (its optimizer's own default where that is not Adam or AdamW)
    shown = [("lr", cfg.learning_rate) if k == "adam_lr" else (k, getattr(cfg, k)) for k in recipe]
    used = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in shown)
    why = "as the run was started" if resumed else "options you give win; --recipe none for the plain defaults"
    return f"recipe {cfg.recipe} ({why}): {used}"


def task_of_model(name: str) -> str | None:
    """The segmentation task a model name belongs to (None: not a segmentation network)."""
    return next((task for task, names in MODELS.items() if name in names), None)


def model_options(task: str, model: str, width: int | None = None, depth: int = 4,
                  backbone: str | None = None) -> dict[str, Any]:
    """The builder options a segmentation model is trained with: the recipe's width unless given."""
    width = width or RECIPES[task]["width"]
    if task == "instance":
        return {"fpn_channels": width, "backbone": backbone or "resnet18", "roi_sampling": RECIPES[task]["roi_sampling"]}
    if model == "unet":
        return {"width": width, "depth": depth}
    if backbone not in (None, "vgg"):
        return {"backbone": backbone}
    return {"width": width}
