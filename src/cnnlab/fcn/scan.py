"""Run a converted FCN on larger images: score grids, output stride, windows, and saving/loading conversions.

A conversion folder (``cnnlab fcn convert ... --out DIR``) holds
``fcn.safetensors`` (the converted weights) and ``fcn.json`` (the conversion
report and what is needed to rebuild the network: the run's model entry,
classes and normalisation, or the spec/zoo name).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.fcn.convert import Conversion, convert
from cnnlab.files import atomic_write_text

FORMAT = 1


@dataclass
class Source:
    """A classifier to convert, with what scanning needs to feed it."""

    model: nn.Module
    input_shape: tuple[int, int, int]
    classes: list[str]
    mean: list[float]
    std: list[float]
    rebuild: dict[str, Any]          # how to build the same (untrained) network again
    trained: bool
    name: str


def load_source(target: str, input_shape: tuple[int, int, int] | None = None) -> Source:
    """A run folder (its best weights), a spec file or a zoo name (fresh weights) as a :class:`Source`."""
    path = Path(target)
    if path.is_dir():
        from cnnlab.train.runs import open_run

        run = open_run(path)
        if run.task_name != "classification":
            raise CnnlabError(f"{target}: a segmentation run; its network is fully convolutional already "
                              "(see 'cnnlab segment predict')")
        doc = run.doc
        entry = doc["config"]["model"] if doc["model"]["kind"] == "spec" else doc["model"]["name"]
        rebuild = {"kind": "run", "model": entry, "spec_text": doc["model"].get("spec_text"),
                   "classes": len(run.classes)}
        shape = _run_window(run.model, tuple(run.shape), input_shape, target)
        return Source(run.model, shape, run.classes, doc["data"]["mean"], doc["data"]["std"],
                      rebuild, True, path.name)
    from cnnlab.errors import TargetError
    from cnnlab.targets import resolve_target

    try:
        resolved = resolve_target(target, input_shape)
    except TargetError as err:
        if not path.exists() and "/" in target:
            raise CnnlabError(f"{target}: no such run folder, spec file or zoo name") from err
        raise
    if getattr(resolved.network, "dense_prediction", False):
        raise CnnlabError(f"{target}: a segmentation network, fully convolutional already; fcn convert takes a "
                          "classifier")
    shape = tuple(resolved.input_shape or ())
    if len(shape) != 3:
        raise CnnlabError(f"{target}: give the classifier's training input as --input C,H,W")
    model = _build(target, shape, None)
    classes = _classes(model, shape)
    trained = callable(getattr(model, "keras_count", None))     # a Keras file's weights, trained or not
    return Source(model.eval(), shape, [str(i) for i in range(classes)], [0.0] * shape[0], [1.0] * shape[0],
                  {"kind": "target", "target": target}, trained, resolved.name)


def _run_window(model: nn.Module, trained: tuple[int, int, int], asked: tuple[int, int, int] | None,
                target: str) -> tuple[int, int, int]:
    """The window a run is converted at: its training input, or ``--input`` where the trained classifier takes it
    (a network ending in global pooling does; one whose dense layer fixes the size refuses with the reason)."""
    if asked is None or tuple(asked) == trained:
        return trained
    c, h, w = trained
    fixed = f"{target} was trained on {c}×{h}×{w} images"
    if asked[0] != c:
        raise CnnlabError(f"--input {','.join(map(str, asked))}: {fixed}; its first layer takes {c} channel(s). "
                          f"Leave --input out to convert at {c},{h},{w}")
    try:
        _classes(model, tuple(asked))
    except RuntimeError as err:
        raise CnnlabError(f"--input {','.join(map(str, asked))}: {fixed} and its layers do not take this size "
                          f"({str(err).splitlines()[0][:120]}; a dense layer fixes the size it was trained at); leave --input out to convert at {c},{h},{w}, or "
                          "scan larger images with 'cnnlab fcn scan'") from err
    return tuple(asked)


def _build(target: str, shape: tuple[int, int, int], spec_text: str | None) -> nn.Module:
    """A real-weight network for a target: fresh for a spec or zoo name, the file's own for a Keras model."""
    from cnnlab.targets import resolve_target

    resolved = resolve_target(target, shape)
    if callable(getattr(resolved.network, "keras_count", None)):   # a Keras model: the weights of its file
        return resolved.network
    if isinstance(resolved.network, nn.Module):
        from cnnlab.models import create_model, get_entry

        torch.manual_seed(0)
        return create_model(get_entry(target).name, in_channels=shape[0], input_size=shape[1])
    from cnnlab.spec import build

    return build(resolved.network.with_input(shape))


def _classes(model: nn.Module, shape: tuple[int, int, int]) -> int:
    with torch.no_grad():
        return int(model.eval()(torch.zeros(1, *shape)).shape[1])


def output_stride(fcn: nn.Module) -> int:
    """The FCN's step between grid positions, in input pixels: the effective stride of its output.

    Read off the network's graph (:mod:`cnnlab.analysis.receptive`): the
    product of the strides on the way to the score map.
    """
    from cnnlab.analysis.receptive import output_field

    field = output_field(fcn)
    if field is None:
        raise CnnlabError("the FCN's graph has a layer whose stride cannot be read; no output stride")
    return field.stride[0]


def to_meta(module: nn.Module) -> nn.Module:
    """A copy of ``module`` on the meta device (shapes only)."""
    import copy

    return copy.deepcopy(module).to("meta")


def output_grid(fcn: nn.Module, shape: tuple[int, int, int]) -> tuple[int, int]:
    """(rows, cols) of the FCN's output for an input of ``shape`` (run on the meta device when ``fcn`` is)."""
    with torch.no_grad():
        out = fcn(torch.zeros(1, *shape, device="meta"))
    return int(out.shape[-2]), int(out.shape[-1])


def grid_size(input_size: tuple[int, int], window: tuple[int, int], stride: int) -> tuple[int, int]:
    """Positions of a window sliding with ``stride`` over an image: ``floor((in − window) / stride) + 1``."""
    return tuple((i - k) // stride + 1 for i, k in zip(input_size, window))  # type: ignore[return-value]


def save_conversion(folder: Path, source: Source, conversion: Conversion, report: dict[str, Any]) -> None:
    """Write ``fcn.safetensors`` and ``fcn.json`` into ``folder`` (atomically, each)."""
    from safetensors.torch import save

    from cnnlab.files import atomic_write_bytes, make_folder

    make_folder(folder)
    state = {k: v.detach().cpu().contiguous() for k, v in conversion.fcn.state_dict().items()}
    atomic_write_bytes(folder / "fcn.safetensors", save(state))
    doc = {"format": FORMAT, "source": source.rebuild, "name": source.name, "trained": source.trained,
           "classes": source.classes, "mean": source.mean, "std": source.std, **report}
    atomic_write_text(folder / "fcn.json", json.dumps(doc, indent=2))


def load_conversion(folder: Path) -> tuple[nn.Module, dict[str, Any]]:
    """The FCN saved in ``folder`` and its ``fcn.json``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(folder) / "fcn.json"
    if not path.is_file():
        raise CnnlabError(f"{folder}: not an FCN folder (no fcn.json); make one with 'cnnlab fcn convert'")
    try:
        doc = json.loads(path.read_text())
        shape = tuple(doc["input_shape"])
        src = doc["source"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
        raise CnnlabError(f"{path}: unreadable ({err}); convert again") from None
    if src["kind"] == "run":
        from cnnlab.train.model import build_model

        model, _ = build_model(src["model"], shape, src["classes"], src.get("spec_text"))
    else:
        model = _build(src["target"], shape, None)
    fcn = convert(model.eval(), shape).fcn
    try:
        fcn.load_state_dict(load_file(str(Path(folder) / "fcn.safetensors")))
    except (SafetensorError, OSError, RuntimeError) as err:
        raise CnnlabError(f"{folder / 'fcn.safetensors'}: unreadable or from another network "
                          f"({str(err).splitlines()[0]}); convert again") from None
    return fcn.eval(), doc


def scan_bytes(fcn: nn.Module, shape: tuple[int, int, int]) -> int:
    """Bytes a scan of an image of ``shape`` (C, H, W) needs: cnnlab's own inference prediction (meta tensors,
    nothing allocated) of the FCN on it, plus the float image and the class probabilities it returns."""
    from cnnlab.memory.estimate import estimate_memory

    est = estimate_memory(fcn, shape, 1, include_inference=True)
    with torch.no_grad():
        out = to_meta(fcn)(torch.zeros(1, *shape, device="meta"))
    return int(est.inference.peak_bytes) + 4 * math.prod(shape) + 8 * out.numel()  # type: ignore[union-attr]


def check_scan_memory(fcn: nn.Module, shape: tuple[int, int, int], name: str) -> None:
    """A one-line error before a scan that would need more RAM than is available (a 4000×4000 image once
    ended in a 2 GB allocation traceback)."""
    from cnnlab.machine import require_ram

    require_ram(scan_bytes(fcn, shape), f"{name}: scanning this {shape[1]}×{shape[2]} image",
                "scan a smaller image or a crop of it (nothing was written)")


def scan(fcn: nn.Module, image: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    """Class scores (logits) ``(classes, rows, cols)`` of a uint8 image ``(C, H, W)``, one per window position."""
    from cnnlab.data.normalise import normalise

    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    with torch.no_grad():
        return fcn(normalise(image.unsqueeze(0), m, s))[0]
