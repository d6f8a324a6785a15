"""Resolve a command-line TARGET into something ``analyze`` accepts.

A TARGET is a zoo model name (``resnet50``, see ``cnnlab zoo list``), a spec
file (``.yaml``/``.yml``/``.json``), a Keras 3 model file (``.keras``, read
without Keras), or ``module:callable`` (``torchvision.models:resnet50``,
``my_pkg.nets:build``, ``path/to/file.py:build``, ``keras.applications:ResNet50``)
naming an ``nn.Module`` (or, Keras installed, a Keras model) instance, class or
zero-argument factory.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnlab.errors import ShapeError, TargetError
from cnnlab.keras.archive import KERAS_SUFFIX
from cnnlab.packaged import EXAMPLE_SPECS, PACKAGED_SPECS, packaged_path  # noqa: F401  (re-exported)
from cnnlab.shapes import parse_shape  # noqa: F401  (re-exported: cnnlab.targets.parse_shape)
from cnnlab.spec import NetworkSpec, load_spec
from cnnlab.spec.network import SPEC_SUFFIXES


USER_CODE: list[Path] = []   # folders of the target modules loaded: where an error is the user's to fix


def _note_user_code(folder: Path) -> None:
    if folder not in USER_CODE:
        USER_CODE.append(folder)


def _import_module(module_name: str, target: str):
    from cnnlab.keras.live import prefer_torch_backend

    prefer_torch_backend()   # a module that imports Keras gets the PyTorch backend unless it chose one
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_file():
            raise TargetError(f"{target}: no such file '{module_name}'")
        _note_user_code(path.resolve().parent)
        # registered under a name of its own: a file called numpy.py must not replace numpy for everyone
        name = f"cnnlab_target_{zlib.crc32(str(path.resolve()).encode()):08x}_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[name] = module
        with _users_code(target, "running"):
            spec.loader.exec_module(module)  # type: ignore[union-attr]
        return module
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")  # like `python -m`: modules in the current directory import
    try:
        with _users_code(target, "importing"):
            module = importlib.import_module(module_name)
        top = sys.modules[module_name.partition(".")[0]]
        if getattr(top, "__file__", None):   # the package's folder (or the module's own)
            _note_user_code(Path(top.__file__).resolve().parent)
        return module
    except ModuleNotFoundError as err:
        raise TargetError(f"{target}: cannot import module '{module_name}' ({err}); "
                          "check the spelling and that it is on PYTHONPATH") from err


@contextlib.contextmanager
def _users_code(target: str, doing: str) -> Iterator[None]:
    """Errors (and ``sys.exit``) from the user's module while it loads, as one TargetError line (cause kept)."""
    try:
        yield
    except ModuleNotFoundError:
        raise
    except SyntaxError as err:
        raise TargetError(f"{target}: syntax error in {Path(err.filename or '?').name} line {err.lineno}: "
                          f"{err.msg}; fix the file") from err
    except SystemExit as err:
        raise TargetError(f"{target}: {doing} it called sys.exit({err.code!r}); a target must define a network, "
                          "not end the program") from err
    except Exception as err:  # noqa: BLE001 - anything the user's code raises
        first = (str(err).strip().splitlines() or [""])[0][:300]
        fix = "fix the module or the factory"
        if isinstance(err, ImportError) and ("keras" in first.lower() or "tensorflow" in first.lower()):
            fix = ("install Keras 3 for Python builders (pip install -e '.[keras]'; cnnlab picks KERAS_BACKEND=torch), "
                   "or save the model as .keras, which cnnlab reads without Keras")
        raise TargetError(f"{target}: {doing} it raised {type(err).__name__}"
                          + (f": {first}" if first else "") + f"; {fix}") from err


def load_module_target(target: str) -> Any:
    """``package.module:callable`` -> an ``nn.Module`` (or a Keras model, converted by the caller)."""
    from cnnlab.keras.live import is_keras_builder, is_keras_model

    module_name, _, attr = target.rpartition(":")
    if not module_name or not attr:
        raise TargetError(f"{target}: expected 'package.module:callable'")
    module = _import_module(module_name, target)
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise TargetError(f"{target}: module '{module_name}' has no attribute '{attr}'")
        obj = getattr(obj, part)
    if isinstance(obj, nn.Module) or is_keras_model(obj):
        return obj
    if not callable(obj):
        raise TargetError(f"{target}: '{attr}' is neither an nn.Module nor callable")
    if is_keras_builder(obj):   # keras.applications: never download ImageNet weights
        with _users_code(target, f"calling '{attr}(weights=None)'"):
            return obj(weights=None)
    try:
        inspect.signature(obj).bind()
    except TypeError as err:
        raise TargetError(f"{target}: '{attr}' cannot be called with no arguments ({err}); "
                          "point at a factory that needs none") from err
    except ValueError:   # a builtin without a signature: just call it
        pass
    with _users_code(target, f"calling '{attr}()'"):
        result = obj()
    if not isinstance(result, nn.Module) and not is_keras_model(result):
        raise TargetError(f"{target}: '{attr}()' returned {type(result).__name__}, not an "
                          "nn.Module; return the network from the callable")
    return result


@dataclass(frozen=True)
class Target:
    """A resolved TARGET: the network, the input shape to use (if known) and a display name."""

    network: NetworkSpec | nn.Module
    input_shape: tuple[int, ...] | None
    name: str
    notes: tuple[str, ...] = ()     # what the reader should know (a Keras model's channels-last input, say)
    origin: Any = None              # what the network was converted from (a live Keras model), if anything


def zoo_target(name: str, input_shape: tuple[int, ...] | None = None,
               num_classes: int | None = None) -> Target:
    """A zoo model built on the meta device (no weights) for ``input_shape`` (default: its usual input)."""
    from cnnlab.models import create_model, get_entry  # the zoo imports torchvision: only when asked

    entry = get_entry(name)
    if entry.task == "instance":
        raise TargetError(f"{entry.name}: a detection model — its layer shapes depend on the image's content "
                          "(how many proposals survive non-maximum suppression), so it has no fixed shape table "
                          "or memory prediction; train it with 'cnnlab segment train --task instance' (log.txt "
                          "gives its parameter count) or analyze its backbone: cnnlab analyze resnet18")
    shape = input_shape or entry.default_input
    if len(shape) != 3:
        raise ShapeError(f"{entry.name}: --input must be C,H,W for a zoo model (got {list(shape)})")
    with torch.device("meta"):
        model = create_model(entry.name, num_classes=num_classes, in_channels=shape[0],
                             input_size=shape[1])
    if min(shape[1:]) < model.min_input_size:
        s = model.min_input_size
        raise ShapeError(f"{entry.name} needs inputs of at least {s}×{s} (got {shape[1]}×{shape[2]}); "
                         f"resize the images or use --input {shape[0]},{s},{s}")
    return Target(model, shape, entry.name)


def resolve_target(target: str, input_shape: tuple[int, ...] | None = None) -> Target:
    """A spec (validated), a zoo model or a module, from the command line's TARGET."""
    path = packaged_path(target)
    if path.suffix.lower() in SPEC_SUFFIXES:
        spec = load_spec(path, default_input=input_shape)
        return Target(spec, input_shape or spec.input_shape, spec.name)
    if path.suffix.lower() in (".h5", ".hdf5") and path.is_file():
        raise TargetError(f"{target}: an HDF5 file: Keras 2's whole-model format (model.save('x.h5')) or a weights "
                          "file without its architecture; open it in Keras 3 and save it as .keras: "
                          "keras.models.load_model('x.h5').save('x.keras'), then give the .keras file")
    if path.suffix.lower() == KERAS_SUFFIX:
        from cnnlab.keras import load_keras

        converted = load_keras(path, input_shape)
        return Target(converted.network, converted.input_shape, converted.name, converted.notes)
    if ":" in target:
        module = load_module_target(target)
        from cnnlab.keras.live import convert_model, is_keras_model

        if is_keras_model(module):
            converted = convert_model(module, target, input_shape)
            notes = converted.notes + (("built with weights=None: cnnlab never downloads weights",)
                                       if target.rpartition(":")[0].startswith("keras") else ())
            return Target(converted.network, converted.input_shape, converted.name, notes, module)
        return Target(module, input_shape, target.rpartition(":")[2])
    if path.exists():
        raise TargetError(f"{target}: not a spec file or Keras model; specs end in {', '.join(SPEC_SUFFIXES)}, "
                          "Keras models in .keras")
    from cnnlab.models import ZOO, get_entry

    try:
        get_entry(target)
    except TargetError as err:
        if "/" in target or "." in target:
            raise TargetError(f"{target}: no such spec file (.yaml/.yml/.json)") from None
        raise TargetError(f"{err}; a TARGET is a zoo name ({len(ZOO)} in 'cnnlab zoo list'), a shipped "
                          f"example ({', '.join(EXAMPLE_SPECS)}), a spec file (.yaml/.yml/.json), a Keras model (.keras) or 'package.module:callable'"
                          ) from None
    return zoo_target(target, input_shape)


def analyze_target(target: Target, batch_size: int = 1, dtype: torch.dtype = torch.float32) -> Any:
    """The ``cnnlab analyze`` report of a resolved TARGET, its notes first: the one document the command
    line and the page show."""
    from cnnlab.analysis import analyze

    report = analyze(target.network, target.input_shape, batch_size=batch_size, dtype=dtype, name=target.name)
    report.notes[:0] = target.notes
    return report
