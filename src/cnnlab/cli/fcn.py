"""``cnnlab fcn convert`` and ``cnnlab fcn scan``: a trained classifier as a fully convolutional network."""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnlab.cli.common import command_group, console, print_json, shape_arg
from cnnlab.errors import CnnlabError

EPILOG = """\
examples:
  cnnlab train --model small_cnn_valid --data fashion-mnist --out runs/fashion-valid
  cnnlab fcn convert runs/fashion-valid --out runs/fashion-fcn       # a trained run (its best weights)
  cnnlab fcn scan runs/fashion-fcn canvas.png --out scans/           # score grid + heatmaps per class
  cnnlab fcn convert vgg16 --out /tmp/vgg16-fcn                       # a zoo model (fresh weights)
"""


def register(sub: argparse._SubParsersAction) -> None:
    _, f_sub = command_group(sub, "fcn", EPILOG,
                             help="turn a classifier's dense layers into convolutions and scan large images",
                             description="Fully convolutional conversion: the first dense layer after an h×w "
                                         "feature map becomes an h×w convolution, later dense layers 1×1 "
                                         "convolutions; the network then scores every window position of a "
                                         "larger image in one pass.")
    c = f_sub.add_parser("convert", help="convert a run, spec or zoo classifier; write weights and a report")
    c.add_argument("source", metavar="RUN|SPEC|ZOO_NAME",
                   help="a 'cnnlab train' run folder (best weights), a Keras model (.keras, its own weights), a spec file or a zoo name (fresh weights)")
    c.add_argument("--input", type=shape_arg, metavar="C,H,W",
                   help="the classifier's input (default: the run's data, the spec's input, the zoo paper input)")
    c.add_argument("--out", required=True, metavar="DIR", help="folder for fcn.safetensors and fcn.json")
    c.add_argument("--json", action="store_true", help="print the report as JSON")
    c.set_defaults(func=run_convert)
    s = f_sub.add_parser("scan", help="score grid and per-class heatmaps of images larger than the input")
    s.add_argument("folder", metavar="DIR", help="a folder written by 'cnnlab fcn convert'")
    s.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    s.add_argument("--out", default="fcn-scan", metavar="DIR",
                   help="where <image>.npy (probabilities: classes × rows × cols), <image>.json and "
                        "<image>_heatmaps.png go")
    s.add_argument("--json", action="store_true", help="print the per-image summaries as JSON")
    s.set_defaults(func=run_scan)


def _pads(m) -> bool:  # type: ignore[no-untyped-def]
    """Does this layer see zeros (or −∞) beyond the image border: padding, "same", a ceil-mode pool?"""
    import torch

    if type(m).__name__ in ("SamePad2d", "SameAvgPool2d"):
        return True
    if isinstance(m, (torch.nn.Conv2d, torch.nn.MaxPool2d, torch.nn.AvgPool2d)):
        pad = m.padding
        if isinstance(pad, str):
            return pad == "same"
        pads = (pad,) if isinstance(pad, int) else tuple(pad)
        return any(p > 0 for p in pads) or bool(getattr(m, "ceil_mode", False))
    return False


def conversion_report(source, conversion) -> dict:  # type: ignore[no-untyped-def]
    """The conversion's JSON: layers, removed nodes, exactness at the training input, stride, window, padding."""
    import torch

    from cnnlab.fcn.scan import output_grid, output_stride, to_meta

    x = torch.randn(4, *source.input_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = source.model(x)
        out = conversion.fcn(x)
    reduced = out.mean((2, 3)) if conversion.global_pool else out.flatten(1)
    comparable = (out.shape[-2:] == (1, 1) and not conversion.global_pool) or conversion.mean_is_exact and \
        conversion.global_pool == "avg"
    stride = output_stride(conversion.fcn)
    window = tuple(source.input_shape[1:])
    padded = [n for n, m in source.model.named_modules() if _pads(m)]
    doubled = (2 * window[0], 2 * window[1])
    return {**conversion.to_json(), "params": sum(p.numel() for p in source.model.parameters()),
            "params_fcn": sum(p.numel() for p in conversion.fcn.parameters()),
            "training_output": list(out.shape[1:]),
            "max_abs_diff": float((reduced - ref).abs().max()) if comparable else None,
            "compared_as": "mean of the grid" if conversion.global_pool == "avg" else "the 1×1 grid",
            "output_stride": stride, "window": list(window),
            "grid_at_double_input": {"input": list(doubled),
                                     "grid": list(output_grid(to_meta(conversion.fcn), (source.input_shape[0], *doubled)))},
            "padded_layers": padded,
            "exact_scan": not padded and conversion.global_pool is None}


def run_convert(args: argparse.Namespace) -> int:
    from cnnlab.fcn.convert import convert
    from cnnlab.fcn.scan import load_source, save_conversion

    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise CnnlabError(f"{args.out}: exists and is not a folder; give --out a folder (new or existing)")
    out = Path(args.out)
    held = [n for n in ("fcn.json", "fcn.safetensors") if (out / n).exists() or (out / n).is_symlink()]
    if held:
        raise CnnlabError(f"{args.out}: already holds {' and '.join(held)}; choose another --out or delete "
                          f"{'them' if len(held) > 1 else 'it'} first")
    source = load_source(args.source, args.input)
    conversion = convert(source.model, source.input_shape)
    report = conversion_report(source, conversion)
    save_conversion(Path(args.out), source, conversion, report)
    if args.json:
        print_json(report)
        return 0
    con = console()
    c, h, w = source.input_shape
    weights = ("the file's weights" if source.rebuild.get("target", "").lower().endswith(".keras")
               else "trained" if source.trained else "fresh weights")
    con.print(f"{source.name} ({weights}), input {c}×{h}×{w} → FCN "
              f"in {args.out}")
    for layer in conversion.layers:
        con.print("  " + layer.describe())
    for removed in conversion.removed:
        con.print(f"  removed {removed}")
    con.print(f"parameters: {report['params']:,} before, {report['params_fcn']:,} after")
    if report["max_abs_diff"] is not None:
        con.print(f"at {h}×{w}: the FCN's output ({report['compared_as']}) equals the classifier's logits, "
                  f"max |difference| {report['max_abs_diff']:.2e}")
    s = report["output_stride"]
    g = report["grid_at_double_input"]
    if conversion.global_pool:
        con.print(f"output stride {s} px: the grid is the last feature map; at {g['input'][0]}×{g['input'][1]}: "
                  f"{g['grid'][0]}×{g['grid'][1]}")
    else:
        con.print(f"output stride {s} px, window {h}×{w}: an image of H×W gives a grid of "
                  f"(⌊(H − {h}) / {s}⌋ + 1) × (⌊(W − {w}) / {s}⌋ + 1); at {g['input'][0]}×{g['input'][1]}: "
                  f"{g['grid'][0]}×{g['grid'][1]}")
    if conversion.global_pool:
        con.print(f"global {conversion.global_pool} pooling head: the grid scores each position of the last "
                  "feature map (a class activation map)" +
                  ("; its mean is the classifier's logits" if conversion.mean_is_exact else ""))
    elif report["padded_layers"]:
        con.print(f"note: {len(report['padded_layers'])} layer(s) pad their input ({', '.join(report['padded_layers'][:3])}"
                  f"{' …' if len(report['padded_layers']) > 3 else ''}): on a larger image a grid score differs "
                  "from classifying that window alone (the window's border sees real pixels instead of zero "
                  "padding); use a 'valid'-padded network such as small_cnn_valid (28×28: train it with "
                  "--size 28,28 on smaller images) for exact scans")
    else:
        con.print("valid padding throughout: each grid score equals the classifier's logits on its window")
    return 0


def run_scan(args: argparse.Namespace) -> int:
    import json

    import numpy as np
    import torch

    from cnnlab.data.sources import decode_image
    from cnnlab.fcn.scan import check_scan_memory, load_conversion, scan
    from cnnlab.files import atomic_path, atomic_write_text, make_folder
    from cnnlab.viz.fcn import plot_scan

    fcn, doc = load_conversion(Path(args.folder))
    c, h, w = doc["input_shape"]
    out = Path(args.out)
    images = []
    for name in args.images:          # every image is checked before anything is written
        try:
            image = decode_image(Path(name), c)
        except (ValueError, FileNotFoundError, IsADirectoryError) as err:
            raise CnnlabError(f"{name}: cannot read the image ({err or 'no such file'}); nothing was written") from None
        if image.shape[1] < h or image.shape[2] < w:
            raise CnnlabError(f"{name}: the image is {image.shape[1]}×{image.shape[2]}, smaller than the network's "
                              f"{h}×{w} window; give a larger image (nothing was written)")
        check_scan_memory(fcn, tuple(image.shape), name)
        images.append((name, image))
    make_folder(out)
    summaries = []
    for name, image in images:
        probs = torch.softmax(scan(fcn, image, doc["mean"], doc["std"]), dim=0)
        stem = Path(name).stem
        with atomic_path(out / f"{stem}.npy") as tmp:
            with open(tmp, "wb") as f:
                np.save(f, probs.numpy().astype(np.float32))
        classes = doc["classes"]
        top = probs.argmax(0)
        summary = {"image": name, "size": list(image.shape[1:]), "grid": list(probs.shape[1:]),
                   "stride": doc["output_stride"], "window": doc["window"],
                   "top_class": [[classes[int(i)] for i in row] for row in top],
                   "max_probability": {cl: float(probs[k].max()) for k, cl in enumerate(classes)},
                   "files": [f"{stem}.npy", f"{stem}.json", f"{stem}_heatmaps.png"]}
        atomic_write_text(out / f"{stem}.json", json.dumps(summary, indent=2))
        plot_scan(image, probs, classes, None if doc.get("global_pool") else (h, w), doc["output_stride"],
                  out / f"{stem}_heatmaps.png",
                  f"{Path(name).name}: {probs.shape[1]}×{probs.shape[2]} positions, stride {doc['output_stride']}")
        summaries.append(summary)
    if args.json:
        print_json(summaries)
        return 0
    con = console()
    for s in summaries:
        best = max(s["max_probability"].items(), key=lambda kv: kv[1])
        con.print(f"{s['image']}: {s['size'][0]}×{s['size'][1]} → {s['grid'][0]}×{s['grid'][1]} grid (stride "
                  f"{s['stride']}, window {s['window'][0]}×{s['window'][1]}); most confident: {best[0]} "
                  f"{best[1]:.2f}; wrote {', '.join(s['files'])} in {out}")
    return 0
