"""``cnnlab study cnn-vs-dense``: why a CNN beats a dense network on images, measured."""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnlab.cli.common import batch_size, command_group, console, finite_float, positive_int

EPILOG = """\
examples:
  cnnlab study cnn-vs-dense --data digits --quick            # all five measurements in a few minutes
  cnnlab study cnn-vs-dense --data fashion-mnist --out study/fashion    # the full study (hours on 2 cores)
  cnnlab study cnn-vs-dense --data fashion-mnist --out study/fashion    # again: resumes where it stopped
"""


def register(sub: argparse._SubParsersAction) -> None:
    _, s_sub = command_group(sub, "study", EPILOG, help="experiments over several trained networks, as a report",
                             description="Studies train several networks through the training engine and write "
                                         "report.md, report.json and figures.")
    c = s_sub.add_parser("cnn-vs-dense", help="parameters, data efficiency, translation and pixel order: CNN vs dense",
                         description="Train cnnlab's small CNN, its global-pooling twin, a dense network of matched "
                                     "size and Géron's MLP with one recipe, then measure the chapter's claims: "
                                     "parameters vs input size, accuracy and time, accuracy vs training-set size, "
                                     "accuracy on shifted test images (with and without shift augmentation) and "
                                     "on pixel-permuted images.",
                         epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("--data", default="fashion-mnist", metavar="NAME|DIR",
                   help="fashion-mnist, digits or an image folder <dir>/<class>/<image>")
    c.add_argument("--data-dir", metavar="DIR", help="where the fashion-mnist IDX files are")
    c.add_argument("--quick", action="store_true", help="at most 5 epochs per network and coarser shift steps")
    c.add_argument("--epochs", type=positive_int, default=10, help="epochs per network (--quick: at most 5)")
    c.add_argument("--batch", type=batch_size, default=64, help="batch size of every network")
    c.add_argument("--seed", type=int, default=0, help="seeds splits, weights, subsets and augmentation")
    c.add_argument("--out", default="study", metavar="DIR",
                   help="report folder (report.md, report.json, figures, runs/, specs/); an existing one is resumed")
    c.add_argument("--no-progress", action="store_true", help="no progress bars")
    c.set_defaults(func=run_cnn_vs_dense)
    for name in ARM_STUDIES:
        _register_arm_study(s_sub, name)


def _say_findings(path: Path) -> int:
    """Print a finished study's findings, one paragraph a line (the terminal wraps them: a file or pipe gets whole
    lines, never a paragraph cut at a console width), and where its report is."""
    import json

    con = console()
    for line in json.loads((path.parent / "report.json").read_text())["findings"]:
        con.print("- " + line.replace("**", ""), soft_wrap=True)
    con.print(f"report: {path}", soft_wrap=True)
    return 0


def run_cnn_vs_dense(args: argparse.Namespace) -> int:
    from cnnlab.study.cnn_vs_dense import StudyConfig, study

    cfg = StudyConfig(data=args.data, data_dir=args.data_dir, out=args.out, epochs=args.epochs, batch=args.batch,
                      seed=args.seed, quick=args.quick)
    return _say_findings(study(cfg, progress=not args.no_progress))


def _seeds(text: str) -> tuple[int, ...]:
    """``--seeds 0,1,2``: distinct seeds, at least one."""
    try:
        seeds = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' must be seeds separated by commas, e.g. 0,1,2") from None
    if not seeds or len(set(seeds)) != len(seeds) or any(not 0 <= s < 2**32 for s in seeds):
        raise argparse.ArgumentTypeError(f"'{text}': give distinct seeds from 0 to 2^32 - 1, e.g. 0,1,2")
    return seeds


def _share(text: str) -> float:
    """``--budget 0.6``: a share of the step's peak within cnnlab.vocab.BUDGET_SHARES."""
    from cnnlab.vocab import BUDGET_SHARES

    lo, hi = BUDGET_SHARES
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' must be a number such as 0.6") from None
    if not lo <= value <= hi:
        raise argparse.ArgumentTypeError(f"'{text}': give a share of the step's peak from {lo} to {hi}, e.g. 0.6")
    return value


def _sizes(text: str) -> tuple[int, ...]:
    """``--sizes 500,2000``: training-set sizes, each at least 1."""
    try:
        sizes = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' must be image counts separated by commas, e.g. 500,2000") from None
    if any(len(t.strip()) == 3 and t.strip().startswith("0") for t in text.split(",")[1:]):
        raise argparse.ArgumentTypeError(f"'{text}': the comma separates sizes, not thousands; write 1000,4000, "
                                         "not 1,000,4,000")
    if not sizes or any(not 1 <= n < 2**31 for n in sizes):
        raise argparse.ArgumentTypeError(f"'{text}': give image counts of at least 1, e.g. 500,2000")
    return sizes


# the studies that compare arms over seeds: (name, module, config class, help, description, full defaults)
ARM_STUDIES = {
    "remedies": (
        "cnnlab.study.remedies", "RemediesConfig",
        "a training step that does not fit: smaller batch, larger stride, fewer layers, bf16, 2 processes, "
        "checkpointing — applied, measured, trained",
        "Exercise 3 of Géron's chapter 14, measured: cnnlab's small CNN at a batch whose training step does not fit "
        "a budget (--budget, a share of its predicted peak); each remedy applied for real — the largest batch that "
        "fits, the larger-stride and fewer-layer networks that fit with the least change, bf16 autocast, two "
        "processes under torchrun (gloo, DDP), activation checkpointing — its step's peak measured at the allocator "
        "beside the prediction, then trained with the same seeds: accuracy, time, and a ranking by memory saved "
        "per accuracy point lost.",
        "10,000 Fashion-MNIST images, 4 epochs, batch 128", "digits at 16x16, 15 epochs, batch 128"),
    "pooling-vs-stride": (
        "cnnlab.study.pooling_vs_stride", "PoolingConfig",
        "max pooling vs average pooling vs a stride-2 convolution: parameters, cost, accuracy, shift tolerance",
        "Exercise 4 of Géron's chapter 14, measured: cnnlab's small CNN downsampling by 2×2 max pooling, 2×2 average "
        "pooling or a 3×3 stride-2 convolution (batch norm, ReLU), trained with one recipe and the same seeds: "
        "parameters, MACs, predicted training peak, seconds per epoch, test accuracy and accuracy on test images "
        "shifted by 1-3 pixels.",
        "fashion-mnist, 3 epochs, batch 128", "digits, 15 epochs, batch 64"),
    "lrn": (
        "cnnlab.study.lrn", "LrnConfig",
        "local response normalization vs none vs batch norm: accuracy, time, and do the maps specialise?",
        "Exercise 5 of Géron's chapter 14, measured: an AlexNet-style small network with no normalisation, with LRN "
        "(the paper's constants: k=2, n=5, alpha=1e-4, beta=0.75) after each ReLU, or with batch normalisation, "
        "trained with one recipe and the same seeds: accuracy, seconds per epoch, and the mean absolute correlation "
        "between the first layer's feature maps over test images (all pairs and neighbouring maps).",
        "fashion-mnist, 4 epochs, batch 128", "digits, 15 epochs, batch 64"),
    "augmentation": (
        "cnnlab.study.augmentation", "AugmentConfig",
        "augmentation presets vs training-set size, and tolerance to shifted, rotated, brightened test images",
        "The chapter's claim about data augmentation, measured: cnnlab's small CNN trained with each preset (none, "
        "flip where the data allows mirror images, shift, strong) on several training-set sizes with the same "
        "seeds (a smaller set gets the largest set's steps, at most 4x its epochs): test accuracy against the "
        "set's size, and accuracy on shifted, rotated and brightened test images.",
        "fashion-mnist, 1,000/4,000/12,000 images, 4 epochs on the largest, batch 128",
        "digits, 1/16, 1/4 and all images, 15 epochs on the largest, batch 64"),
    "segmentation-resolution": (
        "cnnlab.study.segmentation_resolution", "SegResConfig",
        "FCN-32s, FCN-16s, FCN-8s and U-Net on the same scenes: mIoU and boundary mIoU against output stride",
        "Exercise 8 of Géron's chapter 14, measured: semantic segmentation loses spatial information to pooling "
        "and strides. FCN-32s, FCN-16s, FCN-8s (output strides 32, 16, 8) and U-Net (full-resolution skips) "
        "trained on the same scenes with the same budget and seeds: mIoU over all pixels and near class "
        "boundaries, and two test scenes' four predictions drawn.",
        "3,000 Fashion-MNIST scenes of 64x64, 6 epochs, batch 32", "1,000 digit scenes of 32x32, 7 epochs, batch 32"),
    "semantic-vs-instance": (
        "cnnlab.study.semantic_vs_instance", "SviConfig",
        "U-Net vs Mask R-CNN on touching objects of one class: merged, kept apart, counted",
        "The chapter's semantic vs instance segmentation, measured: semantic segmentation does not tell objects of "
        "one class apart, instance segmentation does. A U-Net and a Mask R-CNN trained on the same scenes (objects of one "
        "class often touching) with the same seeds: for every touching same-class pair of the test scenes, whether "
        "the U-Net's class mask merges it into one connected part and whether Mask R-CNN finds both objects; how "
        "far each one's object count is from the truth; training time.",
        "2,700 Fashion-MNIST scenes of 64x64, U-Net 6 epochs (batch 32), Mask R-CNN 3 epochs (batch 16)",
        "800 digit scenes of 32x32, U-Net 8 epochs, a narrower Mask R-CNN (half-width ResNet-18, 32-channel pyramid "
        "and mask head) 6 epochs"),
}


def _register_arm_study(s_sub: argparse._SubParsersAction, name: str) -> None:
    _module, _cls, help_, description, full, quick = ARM_STUDIES[name]
    c = s_sub.add_parser(name, help=help_, description=description,
                         epilog=f"examples:\n  cnnlab study {name} --quick          # {quick}, 3 seeds: "
                                f"a few minutes on 2 cores\n  cnnlab study {name} --out study/{name}   # {full}, "
                                "3 seeds\n  (run it again to resume; a folder made with other settings is refused)",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("--data", default=None, metavar="NAME|DIR",
                   help="fashion-mnist, digits or an image folder <dir>/<class>/<image> (default: fashion-mnist; "
                        "digits with --quick)")
    c.add_argument("--data-dir", metavar="DIR", help="where the fashion-mnist IDX files are")
    c.add_argument("--quick", action="store_true", help=f"the few-minute version: {quick}")
    per = ("epochs on the largest training set (a smaller set gets its steps, at most 4x its epochs)"
           if name == "augmentation" else "epochs per run")
    c.add_argument("--epochs", type=positive_int, default=None, help=f"{per} (default: {full}; --quick: {quick})")
    c.add_argument("--batch", type=batch_size, default=None, help="batch size of every run (defaults as --epochs)")
    c.add_argument("--seeds", type=_seeds, default=(0, 1, 2), help="seeds of every arm (default 0,1,2)")
    c.add_argument("--out", default=f"study-{name}", metavar="DIR",
                   help=f"report folder (report.md, report.json, figures, runs/, specs/; default study-{name}); "
                        "an existing one is resumed")
    if name == "remedies":
        c.add_argument("--budget", type=_share, default=0.6, metavar="SHARE",
                       help="the memory budget, as a share of the unchanged training step's predicted peak "
                            "(default 0.6: the step needs 1/0.6 = 1.67x what there is)")
    if name == "augmentation":
        c.add_argument("--sizes", type=_sizes, default=None, metavar="N,N,...",
                       help="training-set sizes, e.g. 500,2000 (default: 1000,4000,12000; --quick: 1/16, 1/4 and all; "
                            "none above the training split's count)")
        c.add_argument("--val-fraction", type=finite_float, default=None, metavar="SHARE",
                       help="share of the training images held out to choose each run's best epoch (default 0.05; "
                            "--quick: 0.1)")
    if name == "semantic-vs-instance":
        c.add_argument("--jobs", type=positive_int, default=None, metavar="N",
                       help="runs trained at a time, each in its own process on its share of the torch threads "
                            "(default: 2 with --quick, whose small networks keep 2 cores busier side by side; 1 "
                            "otherwise: the full form's U-Net ran 2.2x slower on one thread beside another run)")
    c.add_argument("--no-progress", action="store_true", help="no progress bars")
    c.set_defaults(func=run_arm_study, study_name=name)


def run_arm_study(args: argparse.Namespace) -> int:
    import importlib

    module_name, cls_name = ARM_STUDIES[args.study_name][:2]
    module = importlib.import_module(module_name)
    cfg = getattr(module, cls_name)(data=args.data, data_dir=args.data_dir, out=args.out, epochs=args.epochs,
                                    batch=args.batch, seeds=args.seeds, quick=args.quick,
                                    **({"sizes": args.sizes} if getattr(args, "sizes", None) else {}),
                                    **({"val_fraction": args.val_fraction}
                                       if getattr(args, "val_fraction", None) is not None else {}),
                                    **({"budget": args.budget} if getattr(args, "budget", None) else {}),
                                    **({"jobs": args.jobs or (2 if args.quick else 1)} if hasattr(args, "jobs") else {}))
    return _say_findings(module.study(cfg, progress=not args.no_progress))
