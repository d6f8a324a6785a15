"""The zoo's index: one row per model name, with what it brought and where its reference lives."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from dataclasses import dataclass

from torch import nn

from cnnlab.errors import TargetError
import cnnlab.models.efficientnet as _eff
import cnnlab.models.resnet as _resnet
import cnnlab.models.vgg as _vgg
from cnnlab.models.alexnet import alexnet, alexnet_paper
from cnnlab.models.base import ZooModel
from cnnlab.models.googlenet import googlenet
from cnnlab.models.lenet import lenet5, lenet5_relu
from cnnlab.models.mlp import mlp
from cnnlab.models.segmentation import fcn8s, fcn16s, fcn32s, maskrcnn, unet
from cnnlab.models.xception import xception


@dataclass(frozen=True)
class ZooEntry:
    """How to build one zoo model and how to describe it in one row."""

    name: str                 # torchvision/timm spelling
    family: str
    year: int                 # of the paper
    innovation: str           # one line: what it brought
    builder: Callable[..., ZooModel]
    default_input: tuple[int, int, int]   # (C, H, W) the paper trained at: every command's default
    default_classes: int = 1000
    reference: str = ""       # the implementation its parameter count equals
    task: str = "classification"   # "semantic": per-pixel scores (B, classes, H, W); "instance": detections

    @property
    def resolution(self) -> int:
        """The paper's input size (height = width)."""
        return self.default_input[1]


# What each family brought, in the terms the textbooks use (Géron ch. 14; tests/models/test_zoo.py
# checks each line for the book's points)
_LENET = "conv–pool stacks with shared weights"
_ALEX = ("much larger and deeper; convolutions stacked directly on each other (no pooling between); "
         "ReLU, dropout, data augmentation, LRN; trained on GPUs")
_VGG = "simple and deep: uniform stacks of 3×3 convolutions"
_GOOG = ("inception modules: parallel 1×1/3×3/5×5 branches, 1×1 bottleneck layers; much deeper with "
         "far fewer parameters (≈10× fewer than AlexNet); global average pooling")
_RES = "skip (residual) connections: layers learn residuals, so 152-layer nets train"
_SE = "squeeze-and-excitation blocks: recalibrate feature maps channel-wise (per-channel gates)"
_XCEP = ("depthwise separable convolutions: spatial and cross-channel patterns learned separately, "
         "with fewer parameters and MACs")
_EFF = ("compound scaling of depth, width and resolution together, from a baseline found by "
        "neural architecture search")

_ENTRIES: list[ZooEntry] = [
    ZooEntry("lenet5", "LeNet-5", 1998, _LENET, lenet5, (1, 32, 32), 10,
             "the textbook LeNet-5 (full C3 connections, dense output)"),
    ZooEntry("lenet5_relu", "LeNet-5", 1998, _LENET + " (ReLU, max-pool)", lenet5_relu,
             (1, 32, 32), 10, "the textbook LeNet-5"),
    ZooEntry("alexnet", "AlexNet", 2012, _ALEX + " (torchvision: no LRN)", alexnet,
             (3, 224, 224), reference="torchvision.models.alexnet"),
    ZooEntry("alexnet_paper", "AlexNet", 2012, _ALEX, alexnet_paper, (3, 224, 224),
             reference="the 2012 paper, on one device"),
    ZooEntry("alexnet_paper_2gpu", "AlexNet", 2012, _ALEX + " (split over two GPUs: grouped conv2, conv4, conv5)",
             partial(alexnet_paper, two_gpu=True), (3, 224, 224),
             reference="the 2012 paper's two-GPU network (60,965,224 parameters)"),
]
for _name in ("vgg11", "vgg11_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"):
    _ENTRIES.append(ZooEntry(_name, "VGG", 2014, _VGG + (" (+ batch norm)" if _name.endswith("bn") else ""),
                             getattr(_vgg, _name), (3, 224, 224), reference=f"torchvision.models.{_name}"))
_ENTRIES.append(ZooEntry("googlenet", "GoogLeNet", 2014, _GOOG, googlenet, (3, 224, 224),
                         reference="torchvision.models.googlenet (aux_logits=False; 3×3 in the \"5×5\" branch)"))
_ENTRIES.append(ZooEntry("googlenet_paper", "GoogLeNet", 2014, _GOOG + " (the paper's 5×5 branches)",
                         partial(googlenet, paper_kernels=True), (3, 224, 224),
                         reference="Table 1 of the paper (5×5 kernels; torchvision uses 3×3)"))
for _d in (18, 34, 50, 101, 152):
    _ENTRIES.append(ZooEntry(f"resnet{_d}", "ResNet", 2015, _RES, getattr(_resnet, f"resnet{_d}"),
                             (3, 224, 224), reference=f"torchvision.models.resnet{_d}"))
_ENTRIES.append(ZooEntry("resnet50_v1", "ResNet", 2015, _RES + " (stride in the first 1×1, as the paper)",
                         _resnet.resnet50_v1, (3, 224, 224),
                         reference="Table 1 of the paper: torchvision resnet50's parameters, 3.86 GMACs"))
for _d in (18, 34, 50, 101, 152):
    _ENTRIES.append(ZooEntry(f"seresnet{_d}", "SE-ResNet", 2017, _SE, getattr(_resnet, f"seresnet{_d}"),
                             (3, 224, 224), reference=f"timm seresnet{_d}"))
_ENTRIES.append(ZooEntry("xception", "Xception", 2016, _XCEP, xception, (3, 299, 299),
                         reference="timm legacy_xception"))
for _v in "01234567":
    _s = _eff.COMPOUND[f"b{_v}"]
    _ENTRIES.append(ZooEntry(f"efficientnet_b{_v}", "EfficientNet", 2019, _EFF,
                             getattr(_eff, f"efficientnet_b{_v}"), (3, _s.resolution, _s.resolution),
                             reference=f"torchvision.models.efficientnet_b{_v}"))
_ENTRIES.append(ZooEntry("mlp", "MLP", 1986, "dense baseline: no convolution",
                         mlp, (1, 28, 28), 10, "Géron's Fashion-MNIST MLP (300-100)"))

_FCN = ("fully convolutional: dense layers become convolutions, so the net scores every image region; "
        "learned upsampling and skips from finer layers give per-pixel classes")
_UNET = ("encoder–decoder for per-pixel classes: each decoder level concatenates the encoder's map of the "
         "same size (skip connections), recovering the detail pooling lost")
for _s, _builder in ((32, fcn32s), (16, fcn16s), (8, fcn8s)):
    _ENTRIES.append(ZooEntry(f"fcn{_s}s", "FCN", 2015, _FCN + ("" if _s == 32 else f" (skips down to stride {_s})"),
                             _builder, (3, 512, 512), 21,
                             "Table 1 of the paper: 134 M parameters with norm=False (VGG-16 backbone)",
                             task="semantic"))
_ENTRIES.append(ZooEntry("unet", "U-Net", 2015, _UNET, unet, (1, 512, 512), 2,
                         "Fig. 1 of the paper (31,030,658 parameters with norm=False), same padding",
                         task="semantic"))

_MASKRCNN = ("instance segmentation: a mask head beside Faster R-CNN's box head, RoIAlign instead of RoIPool; "
             "each object gets its own class, box and mask")
_ENTRIES.append(ZooEntry("maskrcnn", "Mask R-CNN", 2017, _MASKRCNN, maskrcnn, (1, 64, 64), 11,
                         "torchvision.models.detection.MaskRCNN with a zoo ResNet-18 + FPN, sized for small images",
                         task="instance"))

ZOO: dict[str, ZooEntry] = {e.name: e for e in _ENTRIES}


def analyzable_names() -> list[str]:
    """Every zoo name with a fixed shape table (all but the detection models, whose shapes depend on the data)."""
    return [n for n, e in ZOO.items() if e.task != "instance"]


def model_names(task: str | None = None) -> list[str]:
    """Every zoo name (or those of one ``task``: classification, semantic), in chronological then size order."""
    return [n for n, e in ZOO.items() if task is None or e.task == task]


def _normal(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "").replace(" ", "")


def get_entry(name: str) -> ZooEntry:
    """The zoo row for ``name`` (case, ``-`` and ``_`` ignored: ``ResNet-50`` is ``resnet50``)."""
    key = _normal(name)
    for entry in ZOO.values():
        if _normal(entry.name) == key:
            return entry
    close = suggestions(name)
    hint = f" (did you mean {', '.join(close)}?)" if close else " (see 'cnnlab zoo list')"
    raise TargetError(f"unknown zoo model '{name}'{hint}")


# the names papers and books use for a family, where no zoo name starts with them
PAPER_NAMES = {"senet": "seresnet50", "squeezeexcitation": "seresnet50", "inception": "googlenet",
               "inceptionv1": "googlenet", "fcn": "fcn8s", "lenet": "lenet5", "efficientnet": "efficientnet_b0",
               "resnet": "resnet50", "vgg": "vgg16", "vggnet": "vgg16", "maskrcnn": "maskrcnn"}


def suggestions(name: str, limit: int = 6) -> list[str]:
    """Zoo names a mistyped or paper-style ``name`` may mean: the paper name's model, the names sharing its first
    letters or its family (``SE-ResNet`` → every ``seresnet``); failing those, close spellings (difflib)."""
    import difflib

    key = _normal(name)
    found: list[str] = []
    if key in PAPER_NAMES:
        found.append(PAPER_NAMES[key])
    found += [n for n in ZOO if len(key) >= 3 and (_normal(n).startswith(key[:4]) or
                                                   _normal(ZOO[n].family) == key)]
    names = {_normal(n): n for n in ZOO}
    if not found:
        spellings = {**names, **PAPER_NAMES}
        found += [spellings[m] for m in difflib.get_close_matches(key, list(spellings), n=3, cutoff=0.7)]
    unique = list(dict.fromkeys(names.get(_normal(f), f) for f in found))
    return unique[:limit]


def get_entries(names: list[str]) -> list[ZooEntry]:
    """The zoo rows of ``names``; every unknown name is reported at once, each with its suggestions."""
    entries, unknown = [], []
    for name in names:
        try:
            entries.append(get_entry(name))
        except TargetError as err:
            unknown.append(str(err).removeprefix("unknown zoo model "))
    if unknown:
        raise TargetError(f"unknown zoo model{'s' if len(unknown) > 1 else ''} " + "; ".join(unknown))
    return entries


def create_model(name: str, num_classes: int | None = None, in_channels: int | None = None,
                 input_size: int | None = None, **options: object) -> nn.Module:
    """Build the zoo model ``name`` with fresh weights.

    ``num_classes`` and ``in_channels`` default to the model's usual ones (1000
    classes and RGB, 10 classes and grey for LeNet-5 and the MLP).
    ``input_size`` matters only for the MLP, whose first layer depends on it.
    ``options`` reach the builder (segmentation nets: ``width``, ``depth``,
    ``norm``, ``backbone``); an option the builder lacks is a clear error.
    To build without allocating weights (for analysis), call it inside
    ``with torch.device("meta"):``.
    """
    entry = get_entry(name)
    if num_classes is not None and num_classes < 1:
        raise TargetError(f"{name}: num_classes must be at least 1 (got {num_classes})")
    if in_channels is not None and in_channels < 1:
        raise TargetError(f"{name}: in_channels must be at least 1 (got {in_channels})")
    kwargs: dict[str, int] = {
        "num_classes": num_classes or entry.default_classes,
        "in_channels": in_channels or entry.default_input[0],
    }
    if entry.builder is mlp:
        kwargs["input_size"] = input_size or entry.default_input[1]
    if options:
        import inspect

        accepted = set(inspect.signature(entry.builder).parameters) - set(kwargs)
        unknown = sorted(set(options) - accepted)
        if unknown:
            raise TargetError(f"{entry.name} has no option '{unknown[0]}'"
                              + (f"; its options: {', '.join(sorted(accepted))}" if accepted else ""))
    try:
        return entry.builder(**kwargs, **options)
    except ValueError as err:
        raise TargetError(f"{entry.name}: {err}") from None
