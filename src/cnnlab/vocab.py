"""The names every command shares, defined once (torch-free: the CLI builds its parser from them).

``cnnlab train``, ``memory``, ``fit`` and the Python API accept the same
optimizer and precision names with the same meaning; :func:`cnnlab.optim.create_optimizer`
is the one place that turns a name into a ``torch.optim`` optimizer.
"""

from __future__ import annotations

OPTIMIZERS: dict[str, str] = {
    "sgd": "plain SGD, no momentum (no optimizer state)",
    "sgd-momentum": "SGD with momentum 0.9 (one buffer per parameter)",
    "nesterov": "SGD with Nesterov momentum 0.9 (one buffer per parameter)",
    "adam": "Adam (two moments per parameter)",
    "adamw": "AdamW: Adam with decoupled weight decay (two moments per parameter)",
}

DEFAULT_LR: dict[str, float] = {"sgd": 0.05, "sgd-momentum": 0.05, "nesterov": 0.05, "adam": 1e-3, "adamw": 1e-3}
DEFAULT_WEIGHT_DECAY = 5e-4   # cnnlab train's, on weights of >= 2 dimensions only; memory prediction assumes it too

PRECISIONS: dict[str, str] = {
    "fp32": "float32 everywhere",
    "auto": "bf16-amp with channels-last where the CPU computes bfloat16 natively (AMX, AVX512-BF16), fp32 "
            "elsewhere; on CUDA bf16-amp (fp16-amp without bfloat16)",
    "bf16-amp": "autocast to bfloat16, float32 weights (mixed precision)",
    "fp16-amp": "autocast to float16 with a GradScaler, float32 weights (mixed precision; CUDA)",
    "bf16": "pure bfloat16 weights and activations",
}

TRAIN_PRECISIONS = tuple(p for p in PRECISIONS if p != "bf16")   # training keeps float32 master weights

DTYPES = ("float32", "float16", "bfloat16", "float64")

IGNORE_INDEX = 255   # segmentation masks: pixels left out of the loss and the metrics (VOC's convention)

AUGMENT_PRESETS = ("none", "flip", "shift", "basic", "strong", "erase")
# ``cnnlab study remedies --budget``: the memory budget as a share of the unchanged step's predicted peak
BUDGET_SHARES = (0.05, 0.99)

TTA_MODES: dict[str, str] = {   # test-time augmentation of a classifier's evaluation
    "none": "each test image once",
    "flip": "each test image and its mirror image, class probabilities averaged (for data whose classes "
            "survive a left-right mirror, e.g. Fashion-MNIST; not digits)",
}


def choices_help(vocab: dict[str, str]) -> str:
    """``name: meaning; ...`` for an option's --help."""
    return "; ".join(f"{k}: {v}" for k, v in vocab.items())


# Local response normalization: one set of defaults, AlexNet's (Krizhevsky et al. 2012, §3.3:
# k = 2, n = 5, α = 1e-4, β = 0.75), in the two spellings cnnlab accepts. PyTorch's
# nn.LocalResponseNorm divides alpha by the window size, TensorFlow and the paper do not.
LRN_PAPER = {"n": 5, "k": 2.0, "alpha": 1e-4, "beta": 0.75}
LRN_TORCH_DEFAULTS = {"size": 5, "alpha": 5e-4, "beta": 0.75, "k": 2.0}          # alpha = α·n
LRN_TF_DEFAULTS = {"depth_radius": 2, "bias": 2.0, "alpha": 1e-4, "beta": 0.75}  # n = 2·radius + 1
