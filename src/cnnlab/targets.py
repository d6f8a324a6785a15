"""Resolve a command-line TARGET into something ``analyze`` accepts.

A TARGET is a spec file (``.yaml``/``.yml``/``.json``), or ``module:callable``
(``torchvision.models:resnet50``, ``my_pkg.nets:build``, or ``path/to/file.py:build``)
naming an ``nn.Module`` instance, class or zero-argument factory.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from torch import nn

from cnnlab.errors import ShapeError, TargetError
from cnnlab.spec import NetworkSpec, load_spec
from cnnlab.spec.network import SPEC_SUFFIXES


def parse_shape(text: str, what: str = "--input") -> tuple[int, ...]:
    """``"3,224,224"`` or ``"3x224x224"`` -> ``(3, 224, 224)``."""
    parts = [p for p in text.replace("x", ",").replace("×", ",").replace(" ", "").split(",") if p]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if len(shape) not in (1, 3) or min(shape, default=0) <= 0:
        raise ShapeError(f"{what} '{text}' must be C,H,W (e.g. 3,224,224) or N for a vector input, "
                         "with positive integers")
    return shape


def _import_module(module_name: str, target: str):
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_file():
            raise TargetError(f"{target}: no such file '{module_name}'")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        return module
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")  # like `python -m`: modules in the current directory import
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        raise TargetError(f"{target}: cannot import module '{module_name}' ({err}); "
                          "check the spelling and that it is on PYTHONPATH") from None


def load_module_target(target: str) -> nn.Module:
    """``package.module:callable`` -> an ``nn.Module``."""
    module_name, _, attr = target.rpartition(":")
    if not module_name or not attr:
        raise TargetError(f"{target}: expected 'package.module:callable'")
    module = _import_module(module_name, target)
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise TargetError(f"{target}: module '{module_name}' has no attribute '{attr}'")
        obj = getattr(obj, part)
    if isinstance(obj, nn.Module):
        return obj
    if not callable(obj):
        raise TargetError(f"{target}: '{attr}' is neither an nn.Module nor callable")
    try:
        result = obj()
    except TypeError as err:
        raise TargetError(f"{target}: calling '{attr}()' with no arguments failed ({err}); "
                          "point at a factory that needs no arguments") from None
    if not isinstance(result, nn.Module):
        raise TargetError(f"{target}: '{attr}()' returned {type(result).__name__}, not an "
                          "nn.Module; return the network from the callable")
    return result


def resolve_target(target: str) -> NetworkSpec | nn.Module:
    """A spec (validated) or a module, from the command line's TARGET."""
    path = Path(target)
    if path.suffix.lower() in SPEC_SUFFIXES:
        return load_spec(path)
    if ":" in target:
        return load_module_target(target)
    if path.exists():
        raise TargetError(f"{target}: not a spec file; specs end in {', '.join(SPEC_SUFFIXES)}")
    raise TargetError(f"{target}: not a spec file (.yaml/.yml/.json) nor 'package.module:callable'")

