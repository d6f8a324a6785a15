"""``cnnlab scenes make`` and ``cnnlab segment train|eval|predict``: semantic segmentation."""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnlab.cli.common import command_group, console, positive_int, print_json
from cnnlab.cli.train import _size, add_engine_options, run_engine
from cnnlab.errors import CnnlabError

SEGMENT_ADAM_LR = 2e-3      # segment train's peak rate for Adam/AdamW (cnnlab train: 1e-3)

SCENES_EPILOG = """\
examples:
  cnnlab scenes make --out data/scenes                       # 20,000 Fashion-MNIST scenes, 64×64, 1–3 items
  cnnlab scenes make --source digits --count 600 --size 48,48 --objects 1..2 --item-px 16..24 --out data/digits
  cnnlab scenes make --source path/to/items --out data/mine  # your own <class>/<image> items on black
"""

SEGMENT_EPILOG = """\
examples:
  cnnlab segment train                                       # U-Net on Fashion-MNIST scenes (drawn in memory)
  cnnlab segment train --model fcn8s --out runs/fcn8s        # FCN-8s, same data
  cnnlab segment train --data data/scenes --augment flip     # a folder with images/ and masks/
  cnnlab segment eval runs/unet-fashion-mnist                # pixel accuracy, IoU per class, mIoU
  cnnlab segment predict runs/unet-fashion-mnist scene.png --out masks/
"""


def _range(text: str) -> tuple[int, int]:
    parts = text.replace("-", "..").split("..") if ".." in text or "-" in text else [text, text]
    try:
        lo, hi = int(parts[0]), int(parts[-1])
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a range; use MIN..MAX (e.g. 1..3) or one number") from None
    return lo, hi


def register(sub: argparse._SubParsersAction) -> None:
    from cnnlab.data.scenes import SceneConfig

    d = SceneConfig()
    _, s_sub = command_group(sub, "scenes", SCENES_EPILOG, help="make segmentation scenes from real item images",
                             description="Paste real item images (Fashion-MNIST, digits or your own) onto a "
                                         "canvas with occlusion and write images, index masks, instance masks "
                                         "and COCO annotations, split train/val/test.")
    m = s_sub.add_parser("make", help="write a scenes data set (images/, masks/, instances/, annotations.json)")
    m.add_argument("--source", default=d.source, metavar="NAME|DIR",
                   help="fashion-mnist, digits or a folder <dir>/<class>/<image> of single items on black")
    m.add_argument("--data-dir", metavar="DIR", help="where the fashion-mnist IDX files are "
                   "(default /usr/share/datasets/fashion-mnist)")
    m.add_argument("--count", type=positive_int, default=d.count, help="scenes in all (80/10/10 train/val/test)")
    m.add_argument("--size", type=_size, default=d.size, metavar="H,W", help="canvas size")
    m.add_argument("--objects", type=_range, default=d.objects, metavar="MIN..MAX", help="items per scene")
    m.add_argument("--item-px", type=_range, default=d.item_px, metavar="MIN..MAX",
                   help="longer side of each pasted item, in pixels")
    m.add_argument("--seed", type=int, default=d.seed, help="same seed, identical files")
    m.add_argument("--out", required=True, metavar="DIR", help="a new or empty folder")
    m.add_argument("--no-progress", action="store_true", help="no progress bar")
    m.set_defaults(func=run_scenes_make)

    _, g_sub = command_group(sub, "segment", SEGMENT_EPILOG, help="semantic segmentation: train, evaluate, predict",
                             description="Per-pixel classification with FCN-32s/16s/8s or U-Net on the training "
                                         "engine of 'cnnlab train' (progress, validation, resume, torchrun).")
    t = g_sub.add_parser("train", help="train a segmentation network; mIoU, figures and weights in the run folder",
                         formatter_class=argparse.RawDescriptionHelpFormatter, epilog=SEGMENT_EPILOG)
    t.add_argument("--model", default="unet", choices=("unet", "fcn8s", "fcn16s", "fcn32s"),
                   help="the network (see 'cnnlab zoo list')")
    t.add_argument("--data", default="scenes:fashion-mnist", metavar="scenes:SOURCE|DIR",
                   help="scenes:fashion-mnist / scenes:digits (the default scenes, drawn in memory) or a folder "
                        "with images/ and masks/ (or train/, val/, test/ folders that have them)")
    t.add_argument("--data-dir", metavar="DIR", help="where the fashion-mnist IDX files are")
    t.add_argument("--width", type=positive_int, default=16,
                   help="channels of the first level (the papers use 64; U-Net doubles them per level, "
                        "FCN's VGG blocks have width×1, 2, 4, 8, 8)")
    t.add_argument("--depth", type=positive_int, default=4, help="U-Net: poolings (the paper's 4); sizes must be "
                   "divisible by 2^depth (FCN: by 32)")
    t.add_argument("--backbone", default="vgg", metavar="vgg|RESNET",
                   help="FCN only: vgg (VGG-16 blocks at --width) or a zoo ResNet (resnet18, resnet34, …)")
    t.add_argument("--skip-bad", action="store_true", help="leave out image/mask pairs that are missing, "
                   "mismatched or out of range (listed in log.txt) instead of stopping with an error")
    add_engine_options(t)
    # segmentation's own recipe (docs/segmentation.md): smaller batches of larger images, a higher peak rate,
    # mirrored scenes; on a CPU with native bfloat16 add --precision bf16-amp --channels-last (3.4× faster here)
    t.set_defaults(func=run_segment_train, batch=32, augment="flip")
    for action in t._actions:
        if action.dest == "lr":
            action.help = f"peak learning rate of the warm-up + cosine schedule (default {SEGMENT_ADAM_LR} for " \
                          "adam/adamw, 0.05 for sgd, sgd-momentum, nesterov)"

    e = g_sub.add_parser("eval", help="pixel accuracy, per-class IoU and mIoU of a run on its test split")
    e.add_argument("run", metavar="RUN", help="a run folder made by 'cnnlab segment train'")
    e.add_argument("--data", metavar="scenes:SOURCE|DIR", help="evaluate on this data's test split instead")
    e.add_argument("--data-dir", metavar="DIR", help="where the fashion-mnist IDX files are (default: the run's)")
    e.add_argument("--skip-bad", action="store_true", help="leave out bad image/mask pairs of --data")
    e.add_argument("--json", action="store_true", help="machine-readable output")
    e.set_defaults(func=run_segment_eval)

    p = g_sub.add_parser("predict", help="index mask PNG and colour overlay PNG for each image")
    p.add_argument("run", metavar="RUN", help="a run folder made by 'cnnlab segment train'")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    p.add_argument("--out", default="masks", metavar="DIR", help="where <image>_mask.png and <image>_overlay.png go")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_segment_predict)


def run_scenes_make(args: argparse.Namespace) -> int:
    from cnnlab.data.scenes import SceneConfig, check_out, make_scenes, write_scenes

    out = Path(args.out)
    check_out(out)
    cfg = SceneConfig(source=args.source, count=args.count, size=args.size, objects=args.objects,
                      item_px=args.item_px, seed=args.seed, data_dir=args.data_dir)
    scenes = make_scenes(cfg, progress=not args.no_progress)
    write_scenes(scenes, out, progress=not args.no_progress)
    sizes = ", ".join(f"{len(s)} {k}" for k, s in scenes.splits.items())
    console().print(f"wrote {out}: {sizes} scenes of {cfg.size[0]}×{cfg.size[1]}, {len(scenes.classes)} classes "
                    f"(0 = background); preview in {out / 'preview.png'}")
    return 0


def run_segment_train(args: argparse.Namespace) -> int:
    if args.lr is None and args.optimizer in ("adam", "adamw"):
        args.lr = SEGMENT_ADAM_LR
    options: dict[str, object] = {"width": args.width}
    if args.model == "unet":
        options["depth"] = args.depth
    elif args.backbone != "vgg":
        options = {"backbone": args.backbone}
    return run_engine(args, task="semantic", skip_bad=args.skip_bad, model_args=options)


def run_segment_eval(args: argparse.Namespace) -> int:
    from cnnlab.data.segmentation import load_segmentation
    from cnnlab.train.tasks.semantic import evaluate, load_run, report_of

    run = Path(args.run)
    doc, model, mean, std = load_run(run)
    cfg = doc["config"]
    c, h, w = doc["data"]["shape"]
    data = load_segmentation(args.data or cfg["data"], args.data_dir or cfg.get("data_dir"), cfg["val_fraction"],
                             cfg["seed"], channels=c, size=(h, w), skip_bad=args.skip_bad or cfg.get("skip_bad", False))
    classes = doc["data"]["classes"]
    if args.data and len(data.classes) > len(classes):
        raise CnnlabError(f"{args.data}: has {len(data.classes)} classes but the run was trained on {len(classes)}")
    r = evaluate(model, data.test, len(classes), mean, std, "cpu")
    report = report_of(r, classes, len(data.test))
    if args.json:
        print_json(report)
        return 0
    con = console()
    con.print(f"{run}: {len(data.test)} test images of {data.name}: mIoU {report['miou']:.4f} (background "
              f"included), pixel accuracy {report['pixel_accuracy']:.4f}, boundary mIoU "
              f"{report['boundary_miou']:.4f} (pixels within {report['boundary_band_px']} px of an edge)")
    con.print(f"{'class':<16} {'IoU':>7} {'pixels':>9}")
    for i, (name, iou) in enumerate(zip(classes, report["iou"])):
        pixels = sum(report["confusion"][i])
        con.print(f"{name:<16} {'—' if iou is None else f'{iou:.4f}':>7} {pixels:>9,}")
    return 0


def run_segment_predict(args: argparse.Namespace) -> int:
    import sys

    from PIL import Image
    from torchvision.transforms.v2 import functional as TF

    from cnnlab.data.sources import read_images
    from cnnlab.files import atomic_path
    from cnnlab.train.tasks.semantic import load_run, predict_masks
    from cnnlab.viz.segmentation import PALETTE, overlay

    doc, model, mean, std = load_run(Path(args.run))
    c, h, w = doc["data"]["shape"]
    classes = doc["data"]["classes"]
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CnnlabError(f"{out}: is a file; give --out a folder")
    stems = [Path(n).stem for n in args.images]
    twice = sorted({s for s in stems if stems.count(s) > 1})
    if twice:
        raise CnnlabError(f"two images are named {twice[0]}.*: their masks would overwrite each other; "
                          "predict them in separate runs with different --out")
    results, failed = [], []
    for name, img in read_images(args.images, c):
        if isinstance(img, str):
            failed.append({"image": name, "error": img})
            continue
        size = tuple(img.shape[1:])
        x = img if size == (h, w) else TF.resize(img, [h, w], antialias=True)
        pred, _ = predict_masks(model, x.unsqueeze(0), mean, std, "cpu")
        mask = pred[0] if size == (h, w) else TF.resize(pred, list(size),
                                                        interpolation=TF.InterpolationMode.NEAREST_EXACT)[0]
        stem = Path(name).stem
        m = mask.numpy()
        pal = Image.fromarray(m, "P")
        pal.putpalette(PALETTE.flatten().tolist())
        with atomic_path(out / f"{stem}_mask.png") as tmp:
            pal.save(tmp, format="PNG")
        with atomic_path(out / f"{stem}_overlay.png") as tmp:
            Image.fromarray(overlay(img, m)).save(tmp, format="PNG")
        counts = {classes[int(k)]: int(v) for k, v in zip(*mask.unique(return_counts=True))}
        results.append({"image": name, "mask": str(out / f"{stem}_mask.png"),
                        "overlay": str(out / f"{stem}_overlay.png"), "pixels": counts})
    if args.json:
        print_json({"predictions": results, "failed": failed})
    else:
        con = console()
        for r in results:
            shares = ", ".join(f"{k} {v}" for k, v in r["pixels"].items())
            con.print(f"{r['image']}: {r['mask']}, {r['overlay']} (pixels: {shares})")
    for f in failed:
        sys.stderr.write(f"cnnlab: cannot read {f['image']}: {f['error']}\n")
    return 0 if results else 2
