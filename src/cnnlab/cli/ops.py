"""``cnnlab ops``: explainable convolution, pooling, global pooling and LRN on typed-in numbers."""

from __future__ import annotations

import argparse
import sys

from cnnlab.cli.common import print_json
from cnnlab.errors import OpsInputError
from cnnlab.ops.compute import compute, parse_padding, parse_sizes
from cnnlab.ops.result import TRACE_LIMIT, OpResult, grid

EPILOG = """\
numbers: 1,2,3  |  "[[1,2,3],[4,5,6]]"  |  fractions 1/3 (with --exact)  |  a .npy or .json file

examples:
  cnnlab ops conv1d --input 1,2,3,4,5,6,7,8 --kernel -1,0,1 --padding same --explain
  cnnlab ops conv2d --input "[[1,2,3],[4,5,6],[7,8,9]]" --kernel "[[1,0],[0,-1]]" --stride 2 --padding same
  cnnlab ops maxpool --input "[[1,2,3,-1],[4,5,6,-2],[7,8,9,-3],[10,0,0,3]]" --size 2 --stride 2
  cnnlab ops global-avgpool --input "[[[1,2,3],[4,5,6],[10,0,3]],[[1,1,1],[1,1,2],[0,0,0]]]" --exact
  cnnlab ops lrn --input 1,2,3,4 --depth-radius 1 --bias 1 --alpha 1 --beta 0.5 --explain
"""


def _ints(text: str) -> int | tuple[int, ...]:
    try:
        return parse_sizes(text)
    except OpsInputError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _int(text: str) -> int:
    value = _ints(text)
    if not isinstance(value, int):
        raise argparse.ArgumentTypeError(f"'{text[:40]}' must be one integer")
    return value


def _padding(text: str) -> str | int | tuple[int, ...]:
    try:
        return parse_padding(text)
    except OpsInputError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _common(p: argparse.ArgumentParser, exact: bool = True) -> None:
    p.add_argument("--input", required=True, metavar="NUMBERS", help="the input (see 'numbers' below)")
    out = p.add_argument_group("output")
    out.add_argument("--explain", action="store_true", help="show the working: padded input and each element")
    out.add_argument("--json", action="store_true",
                     help="JSON: output, output_shape, convention (+ trace with --explain)")
    if exact:
        out.add_argument("--exact", action="store_true", help="exact rational arithmetic (fractions)")
    out.add_argument("--trace-limit", type=int, default=TRACE_LIMIT, metavar="N",
                     help=f"output elements traced with --explain (default: {TRACE_LIMIT})")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ops", help="explainable convolution, pooling and LRN on numbers you type in",
                       description="Reference implementations (NumPy) that show their working.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ops_sub = p.add_subparsers(dest="op", metavar="OP", parser_class=type(p))
    ops_sub.required = True
    for name, dims in (("conv1d", 1), ("conv2d", 2)):
        c = ops_sub.add_parser(name, help=f"{dims}-D convolution (cross-correlation unless --flip)",
                               epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
        _common(c)
        shape = "k, C×k or F×C×k" if dims == 1 else "kh×kw, C×kh×kw or F×C×kh×kw"
        c.add_argument("--kernel", required=True, metavar="NUMBERS", help=f"the kernel ({shape})")
        c.add_argument("--bias", metavar="NUMBERS", help="one bias, or one per filter")
        c.add_argument("--stride", type=_ints, default=1, help="stride (default: 1)")
        c.add_argument("--padding", type=_padding, default="valid",
                       help="valid (default) | same (TensorFlow rule) | p | explicit amounts")
        c.add_argument("--dilation", type=_ints, default=1, help="dilation (default: 1)")
        c.add_argument("--flip", action="store_true", help="true convolution: flip the kernel first")
        c.set_defaults(func=run)
    for name in ("maxpool", "avgpool"):
        c = ops_sub.add_parser(name, help=f"{name[:3]} pooling (1-D for L, 2-D for H×W or C×H×W)",
                               epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
        _common(c)
        c.add_argument("--size", type=_ints, required=True, help="window size (k or kh,kw)")
        c.add_argument("--stride", type=_ints, default=None, help="stride (default: the window size)")
        c.add_argument("--padding", choices=["valid", "same"], default="valid",
                       help="valid: no padding; same: TensorFlow/Keras rule, out = ceil(in / stride), "
                            "padded with −∞ for max, excluded from the average")
        c.set_defaults(func=run)
    for name in ("global-avgpool", "global-maxpool"):
        c = ops_sub.add_parser(name, help="one value per channel of C×H×W",
                               epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
        _common(c)
        c.set_defaults(func=run)
    c = ops_sub.add_parser("lrn", help="local response normalization across channels",
                           description="PyTorch parameters (--size --alpha --beta --k) or TensorFlow's "
                                       "(--depth-radius --bias --alpha --beta); the explanation maps one "
                                       "onto the other.",
                           epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(c, exact=False)
    c.add_argument("--size", type=_int, help="PyTorch: channels in the window (default 5)")
    c.add_argument("--k", type=float, help="PyTorch: additive constant (default 2)")
    c.add_argument("--depth-radius", type=_int, help="TensorFlow: half-width r, window 2r+1 (default 2)")
    c.add_argument("--bias", type=float, help="TensorFlow: additive constant (default 2)")
    c.add_argument("--alpha", type=float, help="scale (default: PyTorch 5e-4, divided by the window; "
                   "TensorFlow 1e-4, not divided)")
    c.add_argument("--beta", type=float, help="exponent (default 0.75). All defaults are AlexNet's "
                   "k=2, n=5, α=1e-4, β=0.75 in either spelling")
    c.set_defaults(func=run)


def compute_args(args: argparse.Namespace) -> OpResult:
    """The op named on the command line, through the library's one entry (:func:`cnnlab.ops.compute.compute`)."""
    common = {"exact": getattr(args, "exact", False), "trace_limit": args.trace_limit}
    if args.op in ("conv1d", "conv2d"):
        return compute(args.op, args.input, kernel=args.kernel, bias=args.bias, stride=args.stride,
                       padding=args.padding, dilation=args.dilation, flip=args.flip, **common)
    if args.op in ("maxpool", "avgpool"):
        return compute(args.op, args.input, size=args.size, stride=args.stride, padding=args.padding, **common)
    if args.op == "lrn":
        return compute("lrn", args.input, size=args.size, bias=args.bias, k=args.k, depth_radius=args.depth_radius,
                       alpha=args.alpha, beta=args.beta, trace_limit=args.trace_limit)
    return compute(args.op, args.input, **common)


def read_files(args: argparse.Namespace) -> None:
    """Replace a ``--input``/``--kernel``/``--bias`` that names a ``.npy`` or ``.json`` file by its numbers.

    Only the command line reads files: the library's ops and the web page take typed numbers alone."""
    from cnnlab.ops.parse import read_array

    for name in ("input", "kernel", "bias"):
        value = getattr(args, name, None)
        if isinstance(value, str) and value.strip().endswith((".npy", ".json")):
            setattr(args, name, read_array(value.strip(), f"--{name}", getattr(args, "exact", False)))


def run(args: argparse.Namespace) -> int:
    if args.trace_limit < 0:
        raise OpsInputError(f"--trace-limit must be >= 0 (got {args.trace_limit})")
    read_files(args)
    result = compute_args(args)
    if args.json:
        print_json(result.to_dict(explain=args.explain))
        return 0
    w = sys.stdout.write
    w(f"{result.op}: output shape {list(result.output.shape)}\n{grid(result.output)}\n")
    if args.explain:
        w(f"\nconvention: {result.convention}\n")
        for note in result.notes:
            w(f"note: {note}\n")
        if result.padded_input is not None:
            w(f"\npadded input, shape {list(result.padded_input.shape)}:\n{grid(result.padded_input)}\n")
        w("\nworking:\n")
        for step in result.trace:
            w(f"  {step.text}\n")
        if result.trace_capped:
            w(f"  … trace capped: {len(result.trace)} of {result.trace_total} output elements shown "
              "(--trace-limit N); the output above is complete\n")
    return 0
