"""``cnnlab train``, ``cnnlab eval``, ``cnnlab predict``, ``cnnlab augment preview``."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from cnnlab.cli.common import (bounded_int, command_group, console, finite_float, positive_int, print_json, report_unreadable,
                               size_arg)
from cnnlab.cli.engine import add_engine_options, run_engine
from cnnlab.errors import CnnlabError
from cnnlab.text import label

TRAIN_EPILOG = """\
examples:
  cnnlab train                                             # small CNN on scikit-learn's digits, ~10 s
  cnnlab train --data fashion-mnist --out runs/fashion     # its recipe: 94.0 % in 8 min 22 s (2-core Xeon, AMX)
  cnnlab train --data fashion-mnist --recipe speedrun      # the fastest recipe measured to 94 %
  cnnlab train --data fashion-mnist --recipe none          # the plain defaults: 10 epochs, batch 64, no flips
  cnnlab train --model resnet18 --data path/to/images --size 64,64 --augment strong
  cnnlab train --resume runs/fashion                      # continue a run that was stopped or killed
  cnnlab train --resume runs/fashion --epochs 20          # train a run longer (a new learning-rate segment)
  torchrun --nproc-per-node 2 -m cnnlab train --data fashion-mnist --batch 128   # 2 processes (DDP)
"""





def register(sub: argparse._SubParsersAction) -> None:
    from cnnlab.vocab import TTA_MODES, choices_help

    from cnnlab.train.config import TrainConfig

    d = TrainConfig()   # the defaults: the documented recipe
    t = sub.add_parser("train", help="train and evaluate a zoo model or spec network on real images",
                       description="Train a CNN on in-memory image data with a progress bar, validation each "
                                   "epoch, crash-safe checkpoints, test evaluation and figures in the run folder. "
                                   "Fashion-MNIST trains with its own recipe unless you say otherwise "
                                   "(--recipe): 93.9 % test accuracy in 9 minutes on 2 CPU cores with native "
                                   "bfloat16 (docs/benchmarks.md).",
                       epilog=TRAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--model", default=d.model, metavar="NAME|SPEC|KERAS",
                   help="a zoo name (cnnlab zoo list), a spec file, a Keras model (.keras: fine-tuned from its weights), or small_cnn (cnnlab's own, the default: "
                        "src/cnnlab/train/small_cnn.yaml); channels and classes follow the data")
    t.add_argument("--data", default=d.data, metavar="NAME|DIR",
                   help="digits (scikit-learn, always there), fashion-mnist, a folder <dir>/<class>/<image> "
                        "(with train/val/test subfolders if it has them; mixed sizes go to their median size), or a "
                        "labels CSV file,label (Kaggle; its images beside it, in images/ or --images); default digits")
    t.add_argument("--data-dir", metavar="DIR", help="where the fashion-mnist IDX files are "
                   "(default /usr/share/datasets/fashion-mnist, Debian's dataset-fashion-mnist)")
    t.add_argument("--label-smoothing", type=finite_float, default=d.label_smoothing,
                   help="share of the target spread over all classes (0 turns it off)")
    t.add_argument("--tta", choices=tuple(TTA_MODES), default=d.tta,
                   help="test-time augmentation of the final test evaluation: " + choices_help(TTA_MODES))
    t.add_argument("--strict", action="store_true", help="fail on the first image that cannot be decoded, or "
                   "that a labels CSV names but is missing (default: skip it and list it in the run's log.txt)")
    t.add_argument("--train-size", type=positive_int, metavar="N",
                   help="train on a seeded subset of N training images (default: all; for data-efficiency curves)")
    t.add_argument("--permute-pixels", action="store_true",
                   help="scramble every image's pixels by one fixed permutation (train, validation and test; "
                        "eval and predict apply it too): what a CNN loses without pixel neighbourhoods")
    add_engine_options(t)
    _add_recipe_option(t)
    t.set_defaults(func=run_train)
    _register_eval_predict(sub)


def _add_recipe_option(t: argparse.ArgumentParser) -> None:
    """``--recipe``: the settings a flag does not give come from it (the data's own recipe by default)."""
    from cnnlab.train.config import TrainConfig
    from cnnlab.train.recipes import CLASSIFICATION_RECIPES, RECIPE_CHOICES, RECIPE_FIELDS

    d = TrainConfig()
    shown = "; ".join(f"{name}: " + ", ".join(f"lr {v:g} (adam/adamw)" if k == "adam_lr" else f"{k} {v}"
                                            for k, v in r.items())
                      for name, r in CLASSIFICATION_RECIPES.items())
    t.add_argument("--recipe", choices=RECIPE_CHOICES, default="auto",
                   help="where the settings you do not give come from. auto (default): the data's own recipe where "
                        "cnnlab has one (fashion-mnist), else none; none: the plain defaults (small_cnn, batch "
                        f"{d.batch}, {d.epochs} epochs, {d.optimizer}, no augmentation); {shown}. Flags always win; "
                        "the run's config.json records the recipe and every setting")
    t.set_defaults(**{f: None for f in RECIPE_FIELDS})
    plain = {"epochs": f"(default {d.epochs})", "optimizer": f"default: {d.optimizer}."}
    for action in t._actions:
        if action.dest in RECIPE_FIELDS and action.help and "recipe" not in action.help:
            old = plain.get(action.dest)
            if old and old in action.help:       # the engine's own wording names TrainConfig's default
                action.help = action.help.replace(old, f"(default: the recipe's; {getattr(d, action.dest)} without "
                                                       "one)" if action.dest == "epochs" else
                                                  f"default: the recipe's; {d.optimizer} without one.")
            else:
                action.help += " (default: from --recipe)"


def recipe_settings(args: argparse.Namespace) -> dict[str, object]:
    """The settings of ``cnnlab train``: the flags given, then the recipe's, then TrainConfig's defaults."""
    from cnnlab.train.config import TrainConfig
    from cnnlab.train.recipes import RECIPE_FIELDS, classification_recipe, with_recipe

    name, recipe = classification_recipe(args.recipe, args.data)
    chosen = with_recipe(recipe, {f: getattr(args, f) for f in RECIPE_FIELDS}, TrainConfig())
    if args.tta is None and (getattr(args, "permute_pixels", False) or args.data.lower() == "digits"):
        chosen["tta"] = "none"        # a recipe's test-time mirror means nothing on scrambled pixels or digits
    return {"recipe": name, **chosen}


def _register_eval_predict(sub: argparse._SubParsersAction) -> None:
    from cnnlab.vocab import AUGMENT_PRESETS as PRESETS
    from cnnlab.vocab import TTA_MODES, choices_help

    e = sub.add_parser("eval", help="accuracy, per-class precision/recall and confusion matrix of a run",
                       description="Evaluate a run's best weights on its test split (or on --data).")
    e.add_argument("run", metavar="RUN", help="a run folder made by 'cnnlab train'")
    e.add_argument("--data", metavar="NAME|DIR", help="evaluate on this data's test split instead "
                   "(default: the run's own)")
    e.add_argument("--data-dir", metavar="DIR", help="where the fashion-mnist IDX files are (default: the run's)")
    e.add_argument("--tta", choices=tuple(TTA_MODES), default=None,
                   help="test-time augmentation (default: the run's own --tta): " + choices_help(TTA_MODES))
    e.add_argument("--json", action="store_true", help="machine-readable output")
    e.set_defaults(func=run_eval)

    p = sub.add_parser("predict", help="top-k classes of image files with a trained run",
                       description="Classify image files with a run's best weights; unreadable images are "
                                   "named and the rest still predicted.")
    p.add_argument("run", metavar="RUN", help="a run folder made by 'cnnlab train'")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    p.add_argument("--top", type=positive_int, default=3, help="classes to show per image")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_predict)

    _, a_sub = command_group(sub, "augment", help="augmentation presets: preview them on real images")
    pv = a_sub.add_parser("preview", help="a grid of originals beside augmented copies (PNG)")
    pv.add_argument("--data", default="digits", metavar="NAME|DIR", help="digits, fashion-mnist or an image folder")
    pv.add_argument("--data-dir", metavar="DIR", help="where the fashion-mnist IDX files are "
                    "(default /usr/share/datasets/fashion-mnist)")
    pv.add_argument("--preset", choices=PRESETS, default="strong", help="augmentation preset to preview")
    pv.add_argument("--size", type=size_arg, metavar="H,W", help="resize the images first (default: as they are)")
    pv.add_argument("--images", type=bounded_int(1, 64), default=6, help="rows: original images (1-64, default 6)")
    pv.add_argument("--copies", type=bounded_int(1, 16), default=5,
                    help="augmented copies per image (1-16, default 5)")
    pv.add_argument("--seed", type=int, default=0, help="seeds the image choice and the augmentation")
    pv.add_argument("--out", default="augment_preview.png", metavar="FILE.png", help="the PNG to write")
    pv.set_defaults(func=run_augment_preview)






def run_train(args: argparse.Namespace) -> int:
    if args.resume:
        return run_engine(args)        # every setting but --epochs is the run's own (given ones are refused)
    settings = recipe_settings(args)
    for field in ("model", "batch", "epochs", "lr", "weight_decay", "optimizer", "augment", "val_fraction"):
        setattr(args, field, settings.pop(field))
    return run_engine(args, strict=args.strict, train_size=args.train_size, permute_pixels=args.permute_pixels,
                      **settings)


def run_eval(args: argparse.Namespace) -> int:
    from cnnlab.train.runs import open_run
    from cnnlab.train.tasks.classification import evaluation_report

    path = Path(args.run)
    run = open_run(path, "classification")
    data = run.load_data(args.data, args.data_dir)
    if args.data and data.classes != run.classes:
        raise CnnlabError(f"{args.data}: its classes {data.classes} are not the run's {run.classes}")
    report = evaluation_report(run, data, args.tta)
    if args.json:
        print_json(report)
        return 0
    con = console()
    con.print(f"{label(str(path), 200)}: {report['images']} test images of {label(data.name)}: accuracy {report['accuracy']:.4f}, loss "
              f"{report['loss']:.4f}" + (" (each with its mirror image, probabilities averaged)"
                                         if report["tta"] == "flip" else ""))
    con.print(f"{'class':<16} {'precision':>9} {'recall':>7} {'images':>7}")
    for name, p, r, row in zip(data.classes, report["precision"], report["recall"], report["confusion"]):
        con.print(f"{label(name):<16} {_num(p):>9.3f} {_num(r):>7.3f} {sum(row):>7}")
    con.print("confusion matrix (rows: true class, columns: predicted class, by number):")
    con.print(f"  {'':<16} " + " ".join(f"{j:>5}" for j in range(len(data.classes))))
    for i, (name, row) in enumerate(zip(data.classes, report["confusion"])):
        con.print(f"  {i:>2} {label(name, 12):<13} " + " ".join(f"{v:>5}" for v in row))
    return 0


def _num(v: float | None) -> float:
    return math.nan if v is None else v


def run_predict(args: argparse.Namespace) -> int:
    from cnnlab.data.sources import read_images
    from cnnlab.train.runs import open_run
    from cnnlab.train.tasks.classification import predict_top

    run = open_run(Path(args.run), "classification")
    results, failed = [], []
    for name, img in read_images(args.images, run.shape[0]):
        if isinstance(img, str):
            failed.append({"image": name, "error": img})
            continue
        results.append({"image": name, "top": predict_top(run, img, args.top)})
    if args.json:
        print_json({"predictions": results, "failed": failed})
    else:
        con = console()
        for r in results:
            con.print(f"{label(r['image'], 200)}: " + ", ".join(f"{label(t['class'])} {t['probability']:.3f}"
                                                               for t in r["top"]))
    return report_unreadable(len(results), failed)


def run_augment_preview(args: argparse.Namespace) -> int:
    import torch

    from cnnlab.data import load_data
    from cnnlab.data.augment import apply, make_augment
    from cnnlab.viz.train import plot_augment_grid

    data = load_data(args.data, args.data_dir, seed=args.seed, size=args.size)
    torch.manual_seed(args.seed)
    pick = torch.randperm(len(data.train))[:args.images]
    originals = data.train.images[pick]
    aug = make_augment(args.preset, data.shape[1:], data.flip_ok)
    copies = [apply(aug, originals) for _ in range(args.copies)]
    labels = [data.classes[int(i)] for i in data.train.labels[pick]]
    path = plot_augment_grid(originals, copies, labels, Path(args.out),
                             f"{data.name}: preset '{args.preset}'" + ("" if data.flip_ok else " (no flips: digits)"))
    console().print(f"wrote {path}")
    return 0
