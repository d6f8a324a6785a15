"""``cnnlab memory`` and ``cnnlab fit``: the real peak memory of training, predicted, and how to make it fit."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from cnnlab.cli.common import batch_size, bounded_int, console, print_json, shape_arg
from cnnlab.errors import CnnlabError, ShapeError
from cnnlab.units import human_bytes, mb, mib, parse_bytes
from cnnlab.vocab import OPTIMIZERS, PRECISIONS, choices_help

if TYPE_CHECKING:  # pragma: no cover
    from cnnlab.targets import Target

MEMORY_EPILOG = """\
examples:
  cnnlab memory geron_ex2 --batch 50 --explain
  cnnlab memory resnet50 --batch 32 --optimizer adam --json
  cnnlab memory resnet18 --input 3,64,64 --batch 16 --measure
"""

FIT_EPILOG = """\
examples:
  cnnlab fit resnet50 --batch 256 --budget 8GiB --optimizer adam
  cnnlab fit geron_ex2 --batch 50 --budget 500MB --json
"""


def _common(p: argparse.ArgumentParser) -> None:
    from cnnlab.train.config import TrainConfig   # torch-free

    p.add_argument("target", metavar="TARGET",
                   help="a zoo model name, a spec file (.yaml/.yml/.json), a Keras model (.keras) or package.module:callable")
    p.add_argument("--input", type=shape_arg, metavar="C,H,W",
                   help="shape of one instance (default: the spec's or zoo model's usual input)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd",
                   help=f"the optimizer whose state counts (default: sgd). {choices_help(OPTIMIZERS)}")
    p.add_argument("--weight-decay", type=float, default=TrainConfig.weight_decay, metavar="WD",
                   help="the training run's weight decay: plain SGD and Adam add it to a copy of each gradient "
                        "(a temporary the size of the parameter); 0 removes it (default: cnnlab train's, %(default)s)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help=f"default: fp32. {choices_help(PRECISIONS)}")
    p.add_argument("--channels-last", action="store_true",
                   help="NHWC model and batches, as 'cnnlab train --channels-last' runs them (other oneDNN kernels)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="whose allocator to model (default: cpu)")
    p.add_argument("--cpu", choices=("native", "avx2", "avx512"), default="native",
                   help="whose oneDNN kernels' scratch to model: this machine's, or an AVX2 / AVX-512 CPU's "
                        "(to predict for another machine)")
    p.add_argument("--threads", type=bounded_int(1, 4096), metavar="N",
                   help="CPU threads the kernels use (default: this process's torch threads)")
    p.add_argument("--json", action="store_true", help="machine-readable output (stable keys)")


def _where(args: argparse.Namespace) -> str:
    """``cpu``, ``cuda``, or ``cpu (avx2 kernels, 2 threads)`` when another CPU is modelled."""
    kernels = _kernels(args)
    if args.device != "cpu" or kernels is None:
        return args.device
    return f"cpu ({kernels.isa} kernels, {kernels.threads} threads)"


def _kernels(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The CpuKernels that --cpu/--threads name (None: this process's own)."""
    if args.cpu == "native" and args.threads is None:
        return None
    from cnnlab.memory.onednn.workspace import CpuKernels

    native = CpuKernels.current()
    if args.cpu == "native":
        return CpuKernels(native.isa, args.threads or native.threads, native.bf16)
    # another machine: an AVX2 CPU has no bfloat16 kernels; an AVX-512 one may have any of three families
    return CpuKernels(args.cpu, args.threads or native.threads, "none" if args.cpu == "avx2" else "unknown")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("memory", help="predicted real peak memory of a training step and a prediction",
                       description="Run one training step (forward, loss, backward, optimizer step, "
                                   "zero_grad) on fake tensors and add up every tensor PyTorch would hold: "
                                   "the peak, what it is made of, and when it happens. Nothing real is "
                                   "computed or allocated unless --measure.",
                       epilog=MEMORY_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(p)
    p.add_argument("--batch", type=batch_size, default=1, metavar="N", help="mini-batch size (default: 1)")
    p.add_argument("--checkpointing", action="store_true", help="checkpoint the network's blocks")
    p.add_argument("--measure", action="store_true",
                   help="also run the real step (twice; the second is measured) and compare")
    p.add_argument("--explain", action="store_true", help="textbook figure vs this one, item by item")
    p.set_defaults(func=run_memory)

    f = sub.add_parser("fit", help="does training fit a memory budget, and if not, what would",
                       description="Predict the training peak at --batch; if it exceeds --budget, quantify "
                                   "every remedy for this network (smaller batch, mixed precision, "
                                   "checkpointing, optimizer, data-parallel and fully-sharded training; for "
                                   "spec networks also a larger stride or one layer fewer) and say which "
                                   "to try first.",
                       epilog=FIT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(f)
    f.add_argument("--budget", required=True, metavar="SIZE",
                   help="memory per device: 8GiB (2^30 B), 8GB (10^9 B), 8000MiB, 0.5TiB")
    f.add_argument("--batch", type=batch_size, default=32, metavar="N",
                   help="the batch you want to train with (default: 32)")
    f.set_defaults(func=run_fit)


def _target(args: argparse.Namespace) -> Target:
    from cnnlab.targets import resolve_target

    target = resolve_target(args.target, args.input)
    if target.input_shape is None:
        raise ShapeError(f"{args.target}: --input C,H,W is required for a module target")
    for note in target.notes:
        console().print(f"note: {note}", highlight=False) if not getattr(args, "json", False) else None
    return target


def _network(target: Target):  # type: ignore[no-untyped-def]
    from cnnlab.spec import NetworkSpec, build

    return build(target.network, device="meta") if isinstance(target.network, NetworkSpec) else target.network


def run_memory(args: argparse.Namespace) -> int:
    from cnnlab.memory.estimate import estimate_memory

    target = _target(args)
    if args.measure:
        from cnnlab.memory.measure import require_device
        require_device(args.device)  # before the prediction, not after it
    net = _network(target)
    if args.measure and _kernels(args) is not None:
        raise CnnlabError("--measure runs this machine's kernels; drop --cpu/--threads to compare with them")
    est = estimate_memory(net, target.input_shape, args.batch, args.optimizer, args.precision,
                          args.checkpointing, args.device, name=target.name, kernels=_kernels(args),
                          weight_decay=args.weight_decay, channels_last=args.channels_last)
    if args.measure:
        _room_for(est, args.device)
        _measure(target, est)
    if args.json:
        print_json(est.to_dict())
        return 0
    con = console()
    con.print(f"{est.name} — input {'×'.join(map(str, est.input_shape))}, batch {est.batch_size}, "
              f"{args.optimizer}, {args.precision}{', channels-last' if args.channels_last else ''}, {_where(args)}"
              + (", checkpointing" if args.checkpointing else ""))
    for label, rep in (("training step", est.training), ("inference (no_grad)", est.inference)):
        con.print(f"\n{label}: peak {human_bytes(rep.peak_bytes)} in {rep.phase} ({rep.op})")
        for cat, n in rep.breakdown.items():
            if n:
                con.print(f"  {cat:<16} {n:>16,} B  {mb(n):>12}  {mib(n):>12}")
        if rep.measured_peak_bytes is not None:
            err = (rep.peak_bytes - rep.measured_peak_bytes) / rep.measured_peak_bytes
            con.print(f"  measured         {rep.measured_peak_bytes:>16,} B  {mb(rep.measured_peak_bytes):>12}"
                      f"  relative error {err:+.1%}")
    for note in est.notes:
        con.print(f"\nnote: {note}")
    if args.explain:
        _explain(target, est)
    return 0


def _room_for(est, device: str) -> None:  # type: ignore[no-untyped-def]
    """Before --measure runs a real step: the predicted peak must fit in what the device has free now."""
    fix = "lower --batch, or drop --measure to keep the prediction alone"
    if device == "cuda":
        import torch

        free = torch.cuda.mem_get_info()[0]
        if est.training.peak_bytes > free:
            raise CnnlabError(f"the real step of --measure needs about {human_bytes(est.training.peak_bytes)} "
                              f"(predicted) but the GPU has {human_bytes(free)} free; {fix}")
        return
    from cnnlab.machine import require_ram

    require_ram(est.training.peak_bytes, "the real step of --measure (predicted)", fix)


def _measure(target: Target, est) -> None:  # type: ignore[no-untyped-def]
    import torch

    from cnnlab.fake import is_meta
    from cnnlab.memory.checkpointing import checkpoint_segments
    from cnnlab.memory.measure import measure_memory
    from cnnlab.models import create_model, get_entry
    from cnnlab.spec import NetworkSpec, build

    if isinstance(target.network, NetworkSpec):
        real = build(target.network, device="cpu")
    elif is_meta(target.network):
        real = create_model(get_entry(target.name).name, in_channels=target.input_shape[0],
                            input_size=target.input_shape[1])
    else:
        real = target.network
    if est.config.checkpointing:
        checkpoint_segments(real)
    torch.manual_seed(0)
    train, infer = measure_memory(real, target.input_shape, est.batch_size, est.config)
    est.training.measured_peak_bytes = train
    est.inference.measured_peak_bytes = infer


def _explain(target: Target, est) -> None:  # type: ignore[no-untyped-def]
    from cnnlab.analysis import analyze

    con = console()
    report = analyze(target.network, target.input_shape, batch_size=est.batch_size)
    text = report.memory.training_bytes
    bd = est.training.breakdown
    con.print("\nwhy the real figure differs from the textbook one (cnnlab analyze):")
    con.print(f"  textbook training figure: {text:,} B ({mb(text)}) = every layer output × batch + input "
              f"+ parameters ({report.memory.param_bytes:,} B)")
    con.print(f"  predicted real peak:      {est.training.peak_bytes:,} B ({mb(est.training.peak_bytes)}), "
              f"at {est.training.phase} ({est.training.op})")
    con.print("  item by item at that instant:")
    con.print(f"    parameters + buffers   {bd['parameters'] + bd['buffers']:>16,} B  (textbook counts these)")
    con.print(f"    input batch            {bd['input']:>16,} B  (textbook counts it)")
    con.print(f"    gradients              {bd['gradients']:>16,} B  (textbook: none; one per parameter, "
              "alive from backward to zero_grad)")
    con.print(f"    optimizer state        {bd['optimizer_state']:>16,} B  (textbook: none; momentum/Adam moments)")
    con.print(f"    saved activations      {bd['activations']:>16,} B  (textbook: every layer output; real: "
              "what autograd saves, incl. padded copies and non-in-place activations)")
    con.print(f"    backward temporaries   {bd['temporaries']:>16,} B  (textbook: none; gradients of "
              "activations, alive while the backward pass crosses them)")
    con.print(f"    kernel workspace       {bd['kernel_workspace']:>16,} B  (textbook: none; buffers a "
              "kernel allocates inside itself, e.g. oneDNN's reordered copies in a CPU convolution)")
    outputs = text - report.memory.param_bytes - bd["input"]
    gap = est.training.peak_bytes - text
    con.print(f"  the gap, {gap:+,} B, is:")
    con.print(f"    gradients + optimizer state + backward temporaries + kernel workspace "
              f"{bd['gradients'] + bd['optimizer_state'] + bd['temporaries'] + bd['kernel_workspace']:+,} B")
    con.print(f"    saved activations − textbook layer outputs ({outputs:,} B)     "
              f"{bd['activations'] - outputs:+,} B")
    con.print("  (live tensors at that instant, kernel workspace excluded: "
              f"{est.training.peak_bytes - bd['kernel_workspace']:,} B; on a GPU the workspace is cuDNN's instead)")


def run_fit(args: argparse.Namespace) -> int:
    from cnnlab.memory.fit import fit_target

    try:
        budget = parse_bytes(args.budget)
    except ValueError as err:
        raise CnnlabError(f"--budget {err}") from None
    target = _target(args)
    report = fit_target(target, budget, args.batch, args.optimizer, args.precision, args.device,
                        kernels=_kernels(args), weight_decay=args.weight_decay, channels_last=args.channels_last)
    if args.json:
        print_json(report.to_dict())
        return 0
    con = console()
    verdict = "fits" if report.fits else "does NOT fit"
    dims = "×".join(map(str, target.input_shape))
    con.print(f"{report.name} — input {dims}, batch {report.batch_size}, {args.optimizer}, {args.precision}"
              f"{', channels-last' if args.channels_last else ''}, {_where(args)}: "
              f"peak {human_bytes(report.peak_bytes)} {verdict} in {human_bytes(budget)}")
    con.print(f"largest batch that fits: {report.max_batch}")
    if report.fits:
        return 0
    con.print("\nremedies (fitting ones first, cheapest first):")
    for r in report.remedies:
        mark = "fits" if r.fits else "still too big"
        extra = f", largest batch {r.max_batch}" if r.max_batch is not None else ""
        con.print(f"  ({mark}) {r.name}: {r.description} -> {r.peak_bytes:,} B ({mb(r.peak_bytes)}){extra}; "
                  f"cost: {r.cost}")
    if report.try_first:
        con.print(f"\ntry first: {report.try_first}")
    else:
        con.print("\nno single remedy fits; combine them (e.g. mixed precision + checkpointing + a smaller batch)")
    for note in report.notes:
        con.print(f"note: {note}")
    return 0
