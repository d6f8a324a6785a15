"""``cnnlab study cnn-vs-dense``: why a CNN beats a dense network on images, measured."""

from __future__ import annotations

import argparse

from cnnlab.cli.common import batch_size, command_group, console, positive_int

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


def run_cnn_vs_dense(args: argparse.Namespace) -> int:
    import json

    from cnnlab.study.cnn_vs_dense import StudyConfig, study

    cfg = StudyConfig(data=args.data, data_dir=args.data_dir, out=args.out, epochs=args.epochs, batch=args.batch,
                      seed=args.seed, quick=args.quick)
    path = study(cfg, progress=not args.no_progress)
    con = console()
    for line in json.loads((path.parent / "report.json").read_text())["findings"]:
        con.print("- " + line.replace("**", ""))
    con.print(f"report: {path}")
    return 0
