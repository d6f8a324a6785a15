"""cnnlab: size, explain, build and train convolutional networks, by computation.

Public API::

    import cnnlab
    report = cnnlab.analyze("examples/geron_ex2.yaml", batch_size=50)
    report.total_params                     # 903400
    report.memory.training_bytes            # 565613600
    model = cnnlab.create_model("resnet50", num_classes=10)   # the zoo
"""

from cnnlab.analysis import AnalysisReport, analyze
from cnnlab.errors import CnnlabError, ShapeError, SpecError, TargetError
from cnnlab.models import create_model
from cnnlab.spec import NetworkSpec, build, load_spec, parse_spec

__version__ = "0.1.0"

__all__ = ["AnalysisReport", "CnnlabError", "NetworkSpec", "ShapeError", "SpecError",
           "TargetError", "analyze", "build", "create_model", "load_spec", "parse_spec", "__version__"]
