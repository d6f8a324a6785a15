"""Explainable NumPy reference ops: each returns the result and how it was made.

    >>> from cnnlab import ops
    >>> ops.conv1d([1, 2, 3, 4, 5, 6, 7, 8], [-1, 0, 1]).output
    array([2., 2., 2., 2., 2., 2.])
"""

from cnnlab.ops.conv import conv1d, conv2d
from cnnlab.ops.norm import lrn, lrn_tf
from cnnlab.ops.parse import parse_array
from cnnlab.ops.pool import avgpool, global_avgpool, global_maxpool, maxpool
from cnnlab.ops.result import OpResult, TraceStep

__all__ = ["OpResult", "TraceStep", "avgpool", "conv1d", "conv2d", "global_avgpool",
           "global_maxpool", "lrn", "lrn_tf", "maxpool", "parse_array"]
