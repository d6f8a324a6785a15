"""Convolution → normalization → activation, the unit most CNNs are built from."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

LayerFactory = Callable[..., nn.Module]


class ConvNormAct(nn.Sequential):
    """``Conv2d`` → ``norm_layer`` → ``act_layer``, as one readable block.

    The convolution has no bias when a normalization follows: batch norm's own
    shift ``β`` would cancel it (Ioffe & Szegedy, 2015, §3.2), so the bias would
    be a wasted parameter per channel. ``padding`` defaults to ``k // 2``
    ("same" for odd kernels at stride 1). Pass ``norm_layer=None`` or
    ``act_layer=None`` to leave either out.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int | None = None, groups: int = 1, dilation: int = 1,
                 norm_layer: LayerFactory | None = nn.BatchNorm2d,
                 act_layer: LayerFactory | None = nn.ReLU, bias: bool | None = None) -> None:
        if padding is None:
            padding = (kernel_size - 1) // 2 * dilation
        if bias is None:
            bias = norm_layer is None
        layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                                             dilation=dilation, groups=groups, bias=bias)]
        if norm_layer is not None:
            layers.append(norm_layer(out_channels))
        if act_layer is not None:
            layers.append(act_layer(inplace=True) if _takes_inplace(act_layer) else act_layer())
        super().__init__(*layers)
        self.out_channels = out_channels


def _takes_inplace(act_layer: LayerFactory) -> bool:
    return act_layer in (nn.ReLU, nn.ReLU6, nn.SiLU, nn.Hardswish, nn.LeakyReLU, nn.ELU)
