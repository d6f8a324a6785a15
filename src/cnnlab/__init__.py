"""cnnlab: size, explain, build and train convolutional networks, by computation.

Public API::

    import cnnlab
    report = cnnlab.analyze("geron_ex2", batch_size=50)
    report.total_params                     # 903400
    report.memory.training_bytes            # 565613600
    model = cnnlab.create_model("resnet50", num_classes=10)   # the zoo

The names below are imported on first use (PEP 562), so ``import cnnlab`` and
the NumPy-only parts (``cnnlab.ops``, ``cnnlab --help``) do not load torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cnnlab.errors import CnnlabError, ShapeError, SpecError, TargetError

__version__ = "0.1.0"

_LAZY = {
    "AnalysisReport": "cnnlab.analysis", "analyze": "cnnlab.analysis",
    "create_model": "cnnlab.models",
    "NetworkSpec": "cnnlab.spec", "build": "cnnlab.spec", "load_spec": "cnnlab.spec", "parse_spec": "cnnlab.spec",
}

if TYPE_CHECKING:  # pragma: no cover
    from cnnlab.analysis import AnalysisReport, analyze
    from cnnlab.models import create_model
    from cnnlab.spec import NetworkSpec, build, load_spec, parse_spec


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cnnlab' has no attribute {name!r}")


__all__ = ["AnalysisReport", "CnnlabError", "NetworkSpec", "ShapeError", "SpecError",
           "TargetError", "analyze", "build", "create_model", "load_spec", "parse_spec", "__version__"]
