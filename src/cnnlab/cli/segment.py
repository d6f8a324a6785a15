"""``cnnlab scenes make`` and ``cnnlab segment train|eval|predict``: semantic segmentation."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cnnlab.cli.common import command_group, console, positive_int, print_json, report_unreadable
from cnnlab.cli.common import size_arg
from cnnlab.cli.engine import add_engine_options, run_engine
from cnnlab.errors import CnnlabError
from cnnlab.text import label
from cnnlab.train.recipes import MODELS, RECIPES, model_options, recipe_lr

# each task's recipe (docs/segmentation.md): model, batch, peak Adam rate, epochs, width
SEMANTIC_MODELS, INSTANCE_MODELS = MODELS["semantic"], MODELS["instance"]

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
  cnnlab segment train --task instance                       # Mask R-CNN on the same scenes: each object apart
  cnnlab segment train --task instance --data data/scenes    # a COCO folder (annotations.json) or label images
  cnnlab segment eval runs/maskrcnn-fashion-mnist             # COCO box and mask AP (pycocotools)
"""


def _range(text: str) -> tuple[int, int]:
    parts = text.replace("-", "..").split("..") if ".." in text or "-" in text else [text, text]
    try:
        lo, hi = int(parts[0]), int(parts[-1])
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a range; use MIN..MAX (e.g. 1..3) or one number") from None
    return lo, hi


def register(sub: argparse._SubParsersAction) -> None:
    _register_scenes(sub)
    _, g_sub = command_group(sub, "segment", SEGMENT_EPILOG, help="semantic and instance segmentation: train, "
                             "evaluate, predict",
                             description="Per-pixel classes with FCN-32s/16s/8s or U-Net (--task semantic), or "
                                         "every object's class, box and mask with Mask R-CNN (--task instance), on "
                                         "the training engine of 'cnnlab train' (progress, validation, resume, "
                                         "torchrun).")
    _register_train(g_sub)
    _register_eval_predict(g_sub)


def _register_scenes(sub: argparse._SubParsersAction) -> None:
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
    m.add_argument("--size", type=size_arg, default=d.size, metavar="H,W", help="canvas size")
    m.add_argument("--objects", type=_range, default=d.objects, metavar="MIN..MAX", help="items per scene")
    m.add_argument("--item-px", type=_range, default=d.item_px, metavar="MIN..MAX",
                   help="longer side of each pasted item, in pixels")
    m.add_argument("--same-class", type=_fraction, default=d.same_class, metavar="P",
                   help="chance that each item after a scene's first repeats its class: more touching objects of "
                        "one class, which semantic masks merge (cnnlab study semantic-vs-instance; default 0: "
                        "classes drawn independently)")
    m.add_argument("--seed", type=int, default=d.seed, help="same seed, identical files")
    m.add_argument("--out", required=True, metavar="DIR", help="a new or empty folder")
    m.add_argument("--no-progress", action="store_true", help="no progress bar")
    m.set_defaults(func=run_scenes_make)


def _register_train(g_sub: argparse._SubParsersAction) -> None:
    t = g_sub.add_parser("train", help="train a segmentation network; mIoU, figures and weights in the run folder",
                         formatter_class=argparse.RawDescriptionHelpFormatter, epilog=SEGMENT_EPILOG)
    t.add_argument("--task", choices=("semantic", "instance"), default=None,
                   help="semantic: a class per pixel; instance: each object apart (default: the model's task, "
                        "else semantic)")
    t.add_argument("--model", default=None, choices=SEMANTIC_MODELS + INSTANCE_MODELS,
                   help="the network (see 'cnnlab zoo list'; default unet for semantic, maskrcnn for instance)")
    t.add_argument("--data", default="scenes:fashion-mnist", metavar="scenes:SOURCE|DIR",
                   help="scenes:fashion-mnist / scenes:digits (the default scenes, drawn in memory); semantic: a "
                        "folder with images/ and masks/ (or train/, val/, test/ that have them) or the Pascal VOC "
                        "devkit (VOC2012/); instance: a COCO JSON file or a folder in COCO's layout "
                        "(annotations/instances_<split>.json + <split>/), CVAT's, Roboflow's (_annotations.coco.json), "
                        "annotations.json + images, or images/ + instances/ label images (docs/segmentation.md)")
    t.add_argument("--data-dir", metavar="DIR", help="where the fashion-mnist IDX files are")
    t.add_argument("--width", type=positive_int, default=None,
                   help="channels of the first level (default 16; the papers use 64; U-Net doubles them per level, "
                        "FCN's VGG blocks have width×1, 2, 4, 8, 8); Mask R-CNN: the feature pyramid's channels "
                        "(default 64; torchvision 256)")
    t.add_argument("--depth", type=positive_int, default=4, help="U-Net: poolings (the paper's 4); images of any "
                   "size are padded inside to a multiple of 2^depth (FCN: 32) and the scores cropped back")
    t.add_argument("--backbone", default=None, metavar="vgg|RESNET",
                   help="FCN: vgg (VGG-16 blocks at --width, the default) or a zoo ResNet (resnet18, resnet34, …); "
                        "Mask R-CNN: resnet18 (default), resnet34 or resnet50, with a feature pyramid")
    t.add_argument("--skip-bad", action="store_true", help="leave out image/mask pairs that are missing, "
                   "mismatched or out of range (listed in log.txt) instead of stopping with an error")
    add_engine_options(t)
    # segmentation's own recipe (docs/segmentation.md): smaller batches of larger images, a higher peak rate,
    # mirrored scenes; on a CPU with native bfloat16 add --precision bf16-amp --channels-last (3.4× faster here)
    t.set_defaults(func=run_segment_train, batch=None, augment="flip")
    sem, ins = RECIPES["semantic"], RECIPES["instance"]
    for action in t._actions:
        if action.dest == "lr":
            action.help = (f"peak learning rate of the warm-up + cosine schedule (default for adam/adamw: "
                           f"{sem['adam_lr']} semantic, {ins['adam_lr']} instance; 0.05 for sgd, sgd-momentum, "
                           "nesterov)")
        elif action.dest == "batch":
            action.help = f"global batch (default {sem['batch']} semantic, {ins['batch']} instance)"
        elif action.dest == "epochs":
            action.help = (f"passes over the training images (default {sem['epochs']} semantic, {ins['epochs']} "
                           "instance); with --resume, a larger number extends the run")


def _register_eval_predict(g_sub: argparse._SubParsersAction) -> None:
    e = g_sub.add_parser("eval", help="mIoU (semantic) or COCO box and mask AP (instance) of a run on its test split")
    e.add_argument("run", metavar="RUN", help="a run folder made by 'cnnlab segment train'")
    e.add_argument("--data", metavar="scenes:SOURCE|DIR", help="evaluate on this data's test split instead")
    e.add_argument("--data-dir", metavar="DIR", help="where the fashion-mnist IDX files are (default: the run's)")
    e.add_argument("--skip-bad", action="store_true", help="leave out bad image/mask pairs of --data")
    e.add_argument("--json", action="store_true", help="machine-readable output")
    e.set_defaults(func=run_segment_eval)

    p = g_sub.add_parser("predict", help="mask PNG and colour overlay PNG for each image (instance runs: one "
                         "colour per object, with class and score)")
    p.add_argument("run", metavar="RUN", help="a run folder made by 'cnnlab segment train'")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    p.add_argument("--out", default="masks", metavar="DIR", help="where <image>_mask.png and <image>_overlay.png go")
    p.add_argument("--score-threshold", type=_fraction, default=0.5, metavar="P",
                   help="instance runs: keep detections scoring at least P (default 0.5)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_segment_predict)


def run_scenes_make(args: argparse.Namespace) -> int:
    from cnnlab.data.scenes import SceneConfig, check_out, make_scenes, write_scenes

    out = Path(args.out)
    check_out(out)
    cfg = SceneConfig(source=args.source, count=args.count, size=args.size, objects=args.objects,
                      item_px=args.item_px, seed=args.seed, data_dir=args.data_dir, same_class=args.same_class)
    scenes = make_scenes(cfg, progress=not args.no_progress)
    write_scenes(scenes, out, progress=not args.no_progress)
    sizes = ", ".join(f"{len(s)} {k}" for k, s in scenes.splits.items())
    console().print(f"wrote {out}: {sizes} scenes of {cfg.size[0]}×{cfg.size[1]}, {len(scenes.classes)} classes "
                    f"(0 = background); preview in {out / 'preview.png'}")
    return 0


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"'{text}' must be a number from 0 to 1")
    return v


def segment_task(args: argparse.Namespace) -> str:
    """The task of ``segment train`` from --task and --model (a mismatch is an error)."""
    implied = None if args.model is None else ("instance" if args.model in INSTANCE_MODELS else "semantic")
    if args.task and implied and args.task != implied:
        names = ", ".join(INSTANCE_MODELS if args.task == "instance" else SEMANTIC_MODELS)
        raise CnnlabError(f"--model {args.model} is a {implied}-segmentation network; for --task {args.task} use "
                          f"{names}")
    return args.task or implied or "semantic"


def run_segment_train(args: argparse.Namespace) -> int:
    if args.resume:
        return run_engine(args)
    task = segment_task(args)
    recipe = RECIPES[task]
    args.model = args.model or recipe["model"]
    args.batch = args.batch or recipe["batch"]
    args.epochs = args.epochs or recipe["epochs"]
    args.lr = recipe_lr(recipe, args.optimizer, args.lr)
    if task == "instance" and args.backbone == "vgg":
        raise CnnlabError("--backbone vgg is for FCN; Mask R-CNN takes resnet18, resnet34 or resnet50")
    options = model_options(task, args.model, args.width, args.depth, args.backbone)
    return run_engine(args, task=task, skip_bad=args.skip_bad, model_args=options)


def run_segment_eval(args: argparse.Namespace) -> int:
    from cnnlab.train.runs import open_run
    from cnnlab.train.tasks.semantic import evaluate, report_of

    run = open_run(Path(args.run))
    if run.task_name == "instance":
        return run_instance_eval(args, run)
    run.require("semantic")
    data = run.load_data(args.data, args.data_dir, args.skip_bad)
    model, mean, std, classes = run.model, run.mean, run.std, run.classes
    if args.data and len(data.classes) > len(classes):
        raise CnnlabError(f"{args.data}: has {len(data.classes)} classes but the run was trained on {len(classes)}")
    r = evaluate(model, data.test, len(classes), mean, std, "cpu")
    report = report_of(r, classes, len(data.test))
    if args.json:
        print_json(report)
        return 0
    con = console()
    con.print(f"{label(str(run.folder), 200)}: {len(data.test)} test images of {label(data.name)}: mIoU {report['miou']:.4f} (background "
              f"included), pixel accuracy {report['pixel_accuracy']:.4f}, boundary mIoU "
              f"{report['boundary_miou']:.4f} (pixels within {report['boundary_band_px']} px of an edge)")
    con.print(f"{'class':<16} {'IoU':>7} {'pixels':>9}")
    for i, (name, iou) in enumerate(zip(classes, report["iou"])):
        pixels = sum(report["confusion"][i])
        con.print(f"{label(name):<16} {'—' if iou is None else f'{iou:.4f}':>7} {pixels:>9,}")
    return 0


def run_segment_predict(args: argparse.Namespace) -> int:
    from PIL import Image
    from torchvision.transforms.v2 import functional as TF

    from cnnlab.files import atomic_path
    from cnnlab.train.runs import open_run
    from cnnlab.train.tasks.semantic import predict_masks
    from cnnlab.viz.segmentation import PALETTE, overlay

    run = open_run(Path(args.run))
    if run.task_name == "instance":
        return run_instance_predict(args, run)
    run.require("semantic")
    model, mean, std, classes = run.model, run.mean, run.std, run.classes
    c = run.shape[0]
    out = Path(args.out)
    results: list[dict] = []
    failed: list[dict] = []
    for name, img, x in _readable_images(args, c, run.config.size, failed):
        size = tuple(img.shape[1:])
        pred, _ = predict_masks(model, x.unsqueeze(0), mean, std, "cpu")
        mask = pred[0] if size == tuple(x.shape[1:]) else TF.resize(pred, list(size),
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
            con.print(label(f"{r['image']}: {r['mask']}, {r['overlay']} (pixels: {shares})", 2000))
    return report_unreadable(len(results), failed)


def _readable_images(args: argparse.Namespace, channels: int, size: tuple[int, int] | None,
                     failed: list[dict]):  # noqa: ANN202
    """``(name, image, network input)`` for each readable file of ``args.images``, one at a time: the input is
    the image itself (segmentation networks take any size), or resized to ``size`` when the run was trained
    with --size. The unreadable ones are added to ``failed``. Checks ``--out`` first."""
    from torchvision.transforms.v2 import functional as TF

    from cnnlab.data.sources import read_images

    _check_out_names(Path(args.out), args.images)
    for name, img in read_images(args.images, channels):
        if isinstance(img, str):
            failed.append({"image": name, "error": img})
            continue
        resize = size is not None and tuple(img.shape[1:]) != tuple(size)
        yield name, img, TF.resize(img, list(size), antialias=True) if resize else img


def _check_out_names(out: Path, images: list[str]) -> None:
    if out.exists() and not out.is_dir():
        raise CnnlabError(f"{out}: is a file; give --out a folder")
    stems = [Path(n).stem for n in images]
    twice = sorted({s for s in stems if stems.count(s) > 1})
    if twice:
        raise CnnlabError(f"two images are named {twice[0]}.*: their outputs would overwrite each other; "
                          "predict them in separate runs with different --out")


def run_instance_eval(args: argparse.Namespace, run: Any) -> int:
    from cnnlab.train.tasks.instance import evaluate, report_of

    data = run.load_data(args.data, args.data_dir, args.skip_bad)
    model, mean, std = run.model, run.mean, run.std
    classes, ids = run.classes, run.doc["data"]["category_ids"]
    if args.data and data.classes != classes:
        raise CnnlabError(f"{args.data}: its classes ({', '.join(data.classes[1:])}) differ from the run's "
                          f"({', '.join(classes[1:])})")
    r = evaluate(model, data.test, classes, ids, mean, std)
    report = report_of(r, classes, ids, len(data.test))
    if args.json:
        print_json(report)
        return 0
    con = console()
    m, b = report["mask"], report["box"]
    con.print(f"{label(str(run.folder), 200)}: {len(data.test)} test images of {label(data.name)}, "
              f"{report['instances']} instances, "
              f"{report['detections']} detections (COCO AP by pycocotools, up to 100 per image)")
    con.print(f"{'':<8} {'AP':>7} {'AP50':>7} {'AP75':>7}")
    for name, d in (("mask", m), ("box", b)):
        con.print(f"{name:<8} {d['ap']:>7.4f} {d['ap50']:>7.4f} {d['ap75']:>7.4f}")
    con.print(f"{'class':<16} {'mask AP':>8} {'box AP':>8}")
    for name in classes[1:]:
        ma, ba = m["per_class"].get(name), b["per_class"].get(name)
        con.print(f"{label(name):<16} {'—' if ma is None else f'{ma:.4f}':>8} {'—' if ba is None else f'{ba:.4f}':>8}")
    return 0


def run_instance_predict(args: argparse.Namespace, run: Any) -> int:
    import numpy as np
    import torch
    from PIL import Image
    from torchvision.transforms.v2 import functional as TF

    from cnnlab.files import atomic_path
    from cnnlab.train.tasks.instance import predict_instances
    from cnnlab.viz.common import plt, save_figure
    from cnnlab.viz.segmentation import draw_instances

    model, mean, std, classes = run.model, run.mean, run.std, run.classes
    c = run.shape[0]
    out = Path(args.out)
    results: list[dict] = []
    failed: list[dict] = []
    for name, img, x in _readable_images(args, c, run.config.size, failed):
        size = tuple(img.shape[1:])
        det = predict_instances(model, x.unsqueeze(0), mean, std)[0]
        keep = det["scores"] >= args.score_threshold
        det = {k: v[keep] for k, v in det.items()}
        h, w = x.shape[1:]
        if size != (h, w):          # trained with --size: back to the image's own size (boxes scaled, masks nearest)
            sy, sx = size[0] / h, size[1] / w
            det["boxes"] = det["boxes"] * torch.tensor([sx, sy, sx, sy])
            det["masks"] = (TF.resize(det["masks"].to(torch.uint8), list(size),
                                      interpolation=TF.InterpolationMode.NEAREST_EXACT).bool()
                            if len(det["masks"]) else det["masks"].new_zeros((0, *size)))
        stem = Path(name).stem
        owner = np.zeros(size, dtype=np.uint16)       # instance label image: detection k (by score) is k + 1
        for k in range(len(det["scores"]) - 1, -1, -1):
            owner[det["masks"][k].numpy()] = k + 1
        with atomic_path(out / f"{stem}_instances.png") as tmp:
            Image.fromarray(owner).save(tmp, format="PNG")
        fig, ax = plt.subplots(figsize=(4, 4 * size[0] / size[1]))
        draw_instances(ax, img, det, classes)
        ax.set_axis_off()
        save_figure(fig, out / f"{stem}_overlay.png")
        results.append({"image": name, "instances": str(out / f"{stem}_instances.png"),
                        "overlay": str(out / f"{stem}_overlay.png"),
                        "detections": [{"id": k + 1, "class": classes[int(lab)], "score": round(float(sc), 4),
                                        "box": [round(v, 1) for v in bx.tolist()], "pixels": int(m.sum())}
                                       for k, (lab, sc, bx, m) in enumerate(zip(det["labels"], det["scores"],
                                                                                det["boxes"], det["masks"]))]})
    if args.json:
        print_json({"predictions": results, "failed": failed, "score_threshold": args.score_threshold})
    else:
        con = console()
        for r in results:
            found = ", ".join(f"{d['class']} {d['score']:.2f}" for d in r["detections"]) or "nothing"
            con.print(label(f"{r['image']}: {len(r['detections'])} objects ({found}); {r['instances']}, {r['overlay']}",
                            4000))
    return report_unreadable(len(results), failed)

