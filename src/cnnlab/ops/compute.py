"""One entry for every op, by name, with its settings as the command line spells them.

    from cnnlab.ops.compute import compute
    compute("conv1d", "1,2,3,4,5,6,7,8", kernel="-1,0,1", padding="same")

``cnnlab ops OP`` and the page's ops playground both call :func:`compute`;
:func:`parse_sizes` and :func:`parse_padding` read the integer settings typed
as text (``2``, ``2,3``, ``same``) with the limits of numbers typed by hand.
"""

from __future__ import annotations

from typing import Any

from cnnlab import ops
from cnnlab.errors import OpsInputError
from cnnlab.ops.result import TRACE_LIMIT, OpResult

OPS = ("conv1d", "conv2d", "maxpool", "avgpool", "global-avgpool", "global-maxpool", "lrn")
MAX_SIZE = 256    # the largest window, stride, padding or dilation: numbers typed by hand


def parse_sizes(text: str, what: str = "value") -> int | tuple[int, ...]:
    """``"2"`` → 2, ``"2,3"`` → (2, 3): sizes, strides, paddings or dilations, each at most :data:`MAX_SIZE`."""
    try:
        values = tuple(int(v) for v in text.split(",")) if len(text) <= 200 else ()
    except ValueError:
        values = ()
    if not values:
        raise OpsInputError(f"'{text[:40]}' must be an integer or comma-separated integers")
    if any(abs(v) > MAX_SIZE for v in values):
        raise OpsInputError(f"'{text[:40]}': sizes, strides, paddings and dilations go up to {MAX_SIZE} in "
                            "cnnlab ops (it works on numbers typed by hand)")
    return values[0] if len(values) == 1 else values


def parse_padding(text: str) -> str | int | tuple[int, ...]:
    """``valid``, ``same`` (TensorFlow's rule), one amount, or explicit amounts per side."""
    low = text.strip().lower()
    if low in ("valid", "same"):
        return low
    try:
        return parse_sizes(text)
    except OpsInputError as err:
        if "go up to" in str(err):
            raise
        raise OpsInputError(f"'{text[:40]}' must be valid, same, an integer, or explicit amounts "
                            "(left,right for 1-D; top,bottom,left,right for 2-D)") from None


def compute(op: str, input: Any, *, kernel: Any = None, bias: Any = None, stride: Any = None,
            padding: Any = "valid", dilation: Any = 1, flip: bool = False, size: Any = None,
            exact: bool = False, trace_limit: int = TRACE_LIMIT, **lrn: Any) -> OpResult:
    """Run ``op`` (one of :data:`OPS`) on ``input``. For ``lrn`` the keywords are PyTorch's (``size``, ``k``,
    ``alpha``, ``beta``) or TensorFlow's (``depth_radius``, ``bias``, ``alpha``, ``beta``), not both."""
    if op in ("conv1d", "conv2d"):
        if kernel is None:
            raise OpsInputError("kernel: required for a convolution (e.g. \"-1,0,1\")")
        fn = ops.conv1d if op == "conv1d" else ops.conv2d
        return fn(input, kernel, bias=bias, stride=1 if stride is None else stride, padding=padding,
                  dilation=dilation, flip=flip, exact=exact, trace_limit=trace_limit)
    if op in ("maxpool", "avgpool"):
        if size is None:
            raise OpsInputError("size: required for pooling (e.g. 2)")
        fn = ops.maxpool if op == "maxpool" else ops.avgpool
        return fn(input, size, stride=stride, padding=padding, exact=exact, trace_limit=trace_limit)
    if op == "global-avgpool":
        return ops.global_avgpool(input, exact=exact)
    if op == "global-maxpool":
        return ops.global_maxpool(input, exact=exact)
    if op == "lrn":
        return _lrn(input, trace_limit, {"size": size, "bias": bias, **lrn})
    raise OpsInputError(f"unknown op '{op}'; use one of {', '.join(OPS)}")


def _lrn(input: Any, trace_limit: int, given: dict[str, Any]) -> OpResult:
    given = {k: v for k, v in given.items() if v is not None}      # only what was typed: defaults live in ops
    tf_style = "depth_radius" in given or "bias" in given
    if tf_style and ("size" in given or "k" in given):
        raise OpsInputError("lrn: use PyTorch's --size/--k or TensorFlow's --depth-radius/--bias, not both")
    return (ops.lrn_tf if tf_style else ops.lrn)(input, trace_limit=trace_limit, **given)
