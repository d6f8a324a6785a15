"""Depth in weight layers: the longest input-to-output path, counted as the papers count it.

"ResNet-50", "VGG-16", "22 layers deep" (GoogLeNet) all count the layers with
weights (convolutions and dense layers) along the deepest path through the
network. We trace the model with ``torch.fx`` and take the longest path in
its graph, so a residual shortcut's projection or an inception module's
parallel branches do not add to the depth. Two conventions follow the
papers: a depthwise separable convolution counts as one layer (Xception's
"36 convolutional layers"), and a squeeze-excitation gate counts as none
(SE-ResNet-50 is 50 deep). A transposed convolution (U-Net's 2×2
up-convolution, FCN's learned 2× upsampling) is a weight layer; FCN's fixed
bilinear upsampling is not.
"""

from __future__ import annotations

from torch import fx, nn

from cnnlab.layers.separable import SeparableConv2d
from cnnlab.layers.squeeze_excite import SqueezeExcite

_WEIGHT_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Linear, SeparableConv2d)
_NOT_COUNTED = (SqueezeExcite,)


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, _WEIGHT_LAYERS + _NOT_COUNTED) or super().is_leaf_module(m, qualname)


def weight_depth(model: nn.Module) -> int | None:
    """Weight layers on the longest path from input to output; ``None`` if ``torch.fx`` cannot trace it."""
    try:
        graph = _Tracer().trace(model)
    except Exception:  # noqa: BLE001 - data-dependent control flow: depth is simply unknown
        return None
    modules = dict(model.named_modules())
    depth: dict[fx.Node, int] = {}
    result = 0
    for node in graph.nodes:
        d = max((depth[a] for a in node.all_input_nodes), default=0)
        if node.op == "call_module" and isinstance(modules[str(node.target)], _WEIGHT_LAYERS):
            d += 1
        depth[node] = d
        if node.op == "output":
            result = d
    return result
