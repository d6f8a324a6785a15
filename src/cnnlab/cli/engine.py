"""The training engine on the command line: its options, shared by ``cnnlab train`` and ``cnnlab segment train``,
and the run that follows (train or resume, then the summary)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cnnlab.cli.common import batch_size, console, finite_float, nonneg_int, positive_int, size_arg
from cnnlab.errors import CnnlabError


def add_engine_options(t: argparse.ArgumentParser) -> None:
    """The training engine's options, shared by ``cnnlab train`` and ``cnnlab segment train``."""
    from cnnlab.vocab import AUGMENT_PRESETS as PRESETS
    from cnnlab.vocab import OPTIMIZERS, choices_help
    from cnnlab.vocab import TRAIN_PRECISIONS as PRECISIONS

    from cnnlab.train.config import TrainConfig
    from cnnlab.train.recipes import CLASSIFICATION_RECIPES

    d = TrainConfig()
    t.add_argument("--epochs", type=positive_int, default=None,
                   help=f"passes over the training images (default {d.epochs}); with --resume, a larger number "
                        "extends the run with a new learning-rate segment")
    t.add_argument("--batch", type=batch_size, default=d.batch, help="global batch (split across torchrun processes)")
    recipes = ", ".join(f"{r['adam_lr']:g} in the {name} recipe" for name, r in CLASSIFICATION_RECIPES.items()
                        if "adam_lr" in r)
    t.add_argument("--lr", type=finite_float, help="peak learning rate of the warm-up + cosine schedule "
                   f"(default 1e-3 for adam/adamw, {recipes}; 0.05 for sgd, sgd-momentum, nesterov)")
    t.add_argument("--weight-decay", type=finite_float, default=d.weight_decay,
                   help="weight decay on weights of 2 or more dimensions, none on biases and norm scales "
                        "(decoupled for adamw, L2 for the others)")
    t.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer,
                   help=f"default: {d.optimizer}. {choices_help(OPTIMIZERS)}")
    t.add_argument("--augment", choices=PRESETS, default=d.augment,
                   help="augmentation preset (see 'cnnlab augment preview'); segmentation masks move with their "
                        "images")
    t.add_argument("--val-fraction", type=finite_float, default=d.val_fraction, help="share of the training images held "
                   "out for validation when the data has no val split")
    t.add_argument("--seed", type=int, default=d.seed, help="seeds weights, splits, shuffling and augmentation")
    t.add_argument("--device", choices=("cpu", "cuda"), default=d.device, help="where to train")
    t.add_argument("--precision", choices=PRECISIONS, default=d.precision,
                   help=f"default: {d.precision}: bf16-amp with channels-last where the CPU computes bfloat16 "
                        "natively (AMX, AVX512-BF16), fp32 elsewhere (the run's first line says which); or fp32, "
                        "bf16-amp, fp16-amp (CUDA)")
    t.add_argument("--channels-last", action="store_true",
                   help="NHWC memory layout for the model and batches (faster for some CPUs and GPUs; "
                        "'cnnlab memory' predicts the default NCHW layout)")
    t.add_argument("--checkpointing", action="store_true",
                   help="activation checkpointing: keep only some layers' inputs in the forward pass and recompute "
                        "the rest in backward (less memory, ~a third more compute; 'cnnlab memory --checkpointing' "
                        "predicts it)")
    t.add_argument("--images", metavar="DIR", help="the folder the image names of a COCO annotations file "
                   "(segment --task instance) or of a labels CSV (train) are relative to, when the usual layouts "
                   "do not find it")
    t.add_argument("--size", type=size_arg, metavar="H,W", help="resize every image to H×W (default: "
                   "segmentation keeps each image's own size; classification the one size of the images, or their "
                   "median size when they differ)")
    t.add_argument("--channels", type=int, choices=(1, 3), help="convert the images to 1 (grey) or 3 (RGB) channels")
    t.add_argument("--checkpoint-every", type=nonneg_int, default=d.checkpoint_every, metavar="STEPS",
                   help="also checkpoint every STEPS steps inside an epoch (0: at epoch ends only)")
    t.add_argument("--out", default=None, metavar="DIR", help="run folder, which must not hold a run already "
                   "(default runs/<model>-<data>, or -2, -3 … after it)")
    t.add_argument("--resume", metavar="RUN", help="continue the run in this folder from its last checkpoint "
                   "(its saved settings are used; --epochs N extends it)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar: one line per epoch on stderr")
    t.set_defaults(engine_parser=t)


RESUME_TAKES = frozenset({"help", "resume", "epochs", "no_progress", "engine_parser", "func"})   # all else: saved


def refuse_settings_on_resume(args: argparse.Namespace) -> None:
    """A resumed run keeps the settings in its config.json: an option given with ``--resume`` (any but
    ``--epochs``, which extends the run, and ``--no-progress``), even at its default value, would be ignored, so
    it is refused. ``args.given`` (set by the CLI's ``main``) names the options the command line gave."""
    parser, given = getattr(args, "engine_parser", None), getattr(args, "given", None)
    if parser is None or given is None:
        return
    named = given()
    for action in parser._actions:
        if action.dest in named and action.dest not in RESUME_TAKES and action.option_strings:
            flag = max(action.option_strings, key=len)
            raise CnnlabError(f"{flag}: a resumed run keeps the settings in its config.json; leave {flag} out to "
                              f"resume {args.resume} (--epochs N extends it), or start a new run with --out")


def engine_config(args: argparse.Namespace, **task_fields: object):  # type: ignore[no-untyped-def]
    """The :class:`TrainConfig` of the engine options in ``args`` plus the task's own fields."""
    from cnnlab.train.config import TrainConfig

    stem = Path(args.model).stem if args.model.endswith((".yaml", ".yml", ".json")) else args.model
    data_name = Path(args.data.split(":", 1)[-1]).name or args.data
    out = args.out or _fresh_folder(f"runs/{stem}-{data_name}")
    return TrainConfig(model=args.model, data=args.data, data_dir=args.data_dir, images=args.images,
                       epochs=args.epochs or TrainConfig.epochs, batch=args.batch, lr=args.lr,
                       weight_decay=args.weight_decay, optimizer=args.optimizer, augment=args.augment,
                       val_fraction=args.val_fraction, seed=args.seed, device=args.device,
                       precision=args.precision, channels_last=args.channels_last, checkpointing=args.checkpointing, size=args.size,
                       channels=args.channels, checkpoint_every=args.checkpoint_every, out=out,
                       **task_fields)  # type: ignore[arg-type]


def run_engine(args: argparse.Namespace, **task_fields: object) -> int:
    """Train (or resume) with the engine and print the summary; shared by every task's train command."""
    import os

    from cnnlab.train.config import TrainConfig
    from cnnlab.train.engine import Trainer

    if args.resume:
        refuse_settings_on_resume(args)
        trainer = Trainer(TrainConfig(), resume=Path(args.resume), progress=not args.no_progress, epochs=args.epochs)
    else:
        trainer = Trainer(engine_config(args, **task_fields), progress=not args.no_progress)
    folder = trainer.run()
    if int(os.environ.get("RANK", "0")) == 0:
        test = json.loads((folder / "test.json").read_text())
        con = console()
        con.print(trainer.task.summary(test))
        skipped = len(getattr(trainer.data, "skipped", []))     # counted in memory, not read back from the log
        if skipped:
            what = "unreadable or missing image" if trainer.cfg.task == "classification" else "bad image/mask pair"
            con.print(f"skipped {skipped} {what}{'s' * (skipped != 1)} (listed in {folder / 'log.txt'})")
        files = ", ".join(sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")))
        con.print(f"run folder: {folder}  ({files})", soft_wrap=True)
    return 0


def _fresh_folder(base: str) -> str:
    """``base``, or ``base-2``, ``base-3`` … : the default run folder never collides with an earlier run."""
    candidate, k = base, 1
    while Path(candidate).exists() and any(Path(candidate).iterdir()):
        k += 1
        candidate = f"{base}-{k}"
    return candidate
