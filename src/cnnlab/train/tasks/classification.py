"""Image classification: one label per image, cross-entropy, accuracy, a confusion matrix.

Inputs are uint8 images standardised per channel with the training split's
mean and standard deviation (saved in the run's config, so ``eval`` and
``predict`` apply the same numbers).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.data import ImageData, Split, load_data
from cnnlab.data.augment import make_augment
from cnnlab.data.normalise import normalise, standardiser
from cnnlab.errors import CnnlabError
from cnnlab.files import atomic_write_text
from cnnlab.losses import classification_loss
from cnnlab.train.model import build_model
from cnnlab.train.tasks.base import Task


PERMUTATION_SEED = 0    # one fixed pixel permutation for every run, so every model sees the same scramble


def pixel_permutation(h: int, w: int) -> torch.Tensor:
    """The fixed permutation of the h·w pixel positions that ``--permute-pixels`` applies."""
    return torch.randperm(h * w, generator=torch.Generator().manual_seed(PERMUTATION_SEED))


def permute_pixels(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) images with their pixels moved by :func:`pixel_permutation` (the same for every image)."""
    n, c, h, w = images.shape
    return images.flatten(2)[..., pixel_permutation(h, w)].reshape(n, c, h, w)


def transform_data(data: ImageData, train_size: int | None, permute: bool, seed: int) -> ImageData:
    """``data`` with a seeded subset of ``train_size`` training images and/or every split's pixels permuted."""
    if train_size is not None:
        if train_size > len(data.train):
            raise CnnlabError(f"--train-size {train_size} is larger than the {len(data.train)} training images "
                              f"of {data.name}; use at most {len(data.train)}")
        keep = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(seed + 2))[:train_size].sort().values
        data.train = Split(data.train.images[keep], data.train.labels[keep])
    if permute:
        data.train, data.val, data.test = (Split(permute_pixels(s.images), s.labels)
                                           for s in (data.train, data.val, data.test))
        data.flip_ok = False        # a flip of scrambled pixels is not a flip of the object
    return data


@torch.no_grad()
def class_log_probs(model: nn.Module, x: torch.Tensor, tta: str = "none") -> torch.Tensor:
    """Log class probabilities for a normalised batch; ``tta="flip"`` averages the probabilities of each
    image and its mirror image (test-time augmentation, cnnlab.vocab.TTA_MODES)."""
    logp = F.log_softmax(model(x).float(), dim=1)
    if tta == "flip":
        mirrored = F.log_softmax(model(x.flip(-1)).float(), dim=1)
        logp = torch.logsumexp(torch.stack([logp, mirrored]), dim=0) - math.log(2.0)
    return logp


def evaluate(model: nn.Module, split: Split, mean: torch.Tensor, std: torch.Tensor, device: str,
             batch: int = 512, channels_last: bool = False, tta: str = "none") -> tuple[float, float, torch.Tensor]:
    """(mean cross-entropy, accuracy, predicted labels) of ``model`` on ``split`` (with ``tta``, of the
    averaged probabilities)."""
    was = model.training
    model.eval()
    total, preds = 0.0, []
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for i in range(0, len(split), batch):
        x = normalise(split.images[i:i + batch], mean, std).to(device, memory_format=fmt)
        y = split.labels[i:i + batch].to(device)
        out = class_log_probs(model, x, tta)
        total += float(F.nll_loss(out, y, reduction="sum"))
        preds.append(out.argmax(1).cpu())
    model.train(was)
    p = torch.cat(preds) if preds else torch.zeros(0, dtype=torch.int64)
    n = max(len(split), 1)
    return total / n, float((p == split.labels).float().mean()) if len(split) else 0.0, p


def check_tta(tta: str, data: ImageData, recipe: str = "none") -> None:
    """A mirror-image TTA only where a mirrored image keeps its class (not digits: a mirrored 2 is no 2)."""
    if tta == "flip" and not data.flip_ok:
        source = f" (it comes from --recipe {recipe})" if recipe != "none" else ""
        raise CnnlabError(f"--tta flip{source} mirrors the test images, and the classes of {data.name} change when "
                          "mirrored; add --tta none")


def evaluation_report(run: Any, data: ImageData, tta: str | None = None) -> dict[str, Any]:
    """``cnnlab eval --json``: accuracy, loss, per-class precision and recall (None for a class never
    predicted, or absent) and the confusion matrix (rows: true class) of ``run``'s model on ``data.test``."""
    tta = tta or run.config.tta
    check_tta(tta, data)
    loss, acc, preds = evaluate(run.model, data.test, run.mean, run.std, "cpu", tta=tta)
    cm = confusion_matrix(data.test.labels, preds, len(data.classes))
    pc = per_class(cm)

    def num(v: float) -> float | None:   # JSON has no NaN
        return None if math.isnan(v) else v

    return {"accuracy": acc, "loss": loss, "tta": tta, "images": len(data.test), "classes": data.classes,
            "precision": [num(p) for p, _ in pc], "recall": [num(r) for _, r in pc], "confusion": cm.tolist()}


@torch.no_grad()
def predict_top(run: Any, image: torch.Tensor, k: int) -> list[dict[str, Any]]:
    """The ``k`` most probable classes of one uint8 image ``(C, H, W)`` (resized to the run's size first),
    as ``[{"class", "probability"}]``, most probable first."""
    from torchvision.transforms.v2 import functional as TF

    _, h, w = run.shape
    if tuple(image.shape[1:]) != (h, w):
        image = TF.resize(image, [h, w], antialias=True)
    if run.config.permute_pixels:
        image = permute_pixels(image.unsqueeze(0))[0]
    prob = torch.softmax(run.model(run.normalise(image.unsqueeze(0))).float(), dim=1)[0]
    top = prob.topk(min(k, len(run.classes)))
    return [{"class": run.classes[int(i)], "probability": float(p)} for p, i in zip(top.values, top.indices)]


def confusion_matrix(labels: torch.Tensor, preds: torch.Tensor, classes: int) -> torch.Tensor:
    """Counts with rows = true class, columns = predicted class."""
    return torch.bincount(labels * classes + preds, minlength=classes * classes).reshape(classes, classes)


def per_class(cm: torch.Tensor) -> list[tuple[float, float]]:
    """(precision, recall) per class from a confusion matrix (rows: true, columns: predicted)."""
    out = []
    for i in range(cm.shape[0]):
        tp = float(cm[i, i])
        pred, true = float(cm[:, i].sum()), float(cm[i].sum())
        out.append((tp / pred if pred else math.nan, tp / true if true else math.nan))
    return out


def best_epoch(history: list[dict[str, float]], monitor: str) -> int | None:
    """The epoch whose weights the engine kept: the highest ``monitor``, ties to the lowest validation loss."""
    if not history:
        return None
    return int(max(history, key=lambda h: (h[monitor], -h.get("val_loss", float("inf"))))["epoch"])


class Classification(Task):
    """One class per image."""

    name = "classification"
    metric = "acc"
    monitor = "val_acc"

    def load_data(self) -> ImageData:
        c = self.cfg
        data = load_data(c.data, c.data_dir, c.val_fraction, c.seed, c.channels, c.size, c.strict, c.images)
        data = transform_data(data, c.train_size, c.permute_pixels, c.seed)
        self.mean, self.std = standardiser(data.train)
        self.augment = make_augment(c.augment, data.shape[1:], data.flip_ok)
        check_tta(c.tta, data, c.recipe)
        return data

    def describe_data(self, data: ImageData) -> dict[str, Any]:
        return {"name": data.name, "classes": data.classes, "shape": list(data.shape),
                "sizes": {"train": len(data.train), "val": len(data.val), "test": len(data.test)},
                "mean": self.mean.flatten().tolist(), "std": self.std.flatten().tolist(),
                "skipped_images": len(data.skipped), "permuted_pixels": self.cfg.permute_pixels}

    def build_model(self, data: ImageData, saved: dict[str, Any] | None = None) -> tuple[nn.Module, dict[str, Any]]:
        saved = saved or {}
        return build_model(self.cfg.model, data.shape, len(data.classes), saved.get("spec_text"),
                           saved.get("keras_text"))

    def batch(self, split: Split, indices: torch.Tensor, rows: slice,
              generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        idx = indices[rows]
        images = split.images[idx]
        if self.augment is not None:
            images = self.augment(images, generator, first=rows.start or 0, total=len(indices))
        return normalise(images, self.mean, self.std), split.labels[idx]

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return classification_loss(outputs, targets, self.cfg.label_smoothing)

    def step_stats(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        return {"correct": float((outputs.detach().argmax(1) == targets).sum())}

    def train_metrics(self, sums: dict[str, float], seen: float) -> dict[str, float]:
        return {"train_acc": sums.get("correct", 0.0) / max(seen, 1.0)}

    def validate(self, model: nn.Module, split: Split, device: str) -> dict[str, float]:
        loss, acc, _ = evaluate(model, split, self.mean, self.std, device, channels_last=self.cfg.channels_last)
        return {"val_loss": loss, "val_acc": acc}

    def test_report(self, folder: Path, model: nn.Module, data: ImageData, device: str,
                    history: list[dict[str, float]]) -> dict[str, Any]:
        from cnnlab.viz.train import plot_confusion, plot_curves

        loss, acc, preds = evaluate(model, data.test, self.mean, self.std, device,
                                    channels_last=self.cfg.channels_last, tta=self.cfg.tta)
        cm = confusion_matrix(data.test.labels, preds, len(data.classes))
        report = {"test_loss": loss, "test_acc": acc, "tta": self.cfg.tta, "confusion": cm.tolist(),
                  "classes": data.classes, "best_epoch": best_epoch(history, self.monitor)}
        atomic_write_text(folder / "test.json", json.dumps(report, indent=2))
        plot_curves(history, folder / "curves.png")
        plot_confusion(cm, data.classes, folder / "confusion.png", title=f"test accuracy {acc:.4f}")
        return report

    def rebuild_model(self, doc: dict[str, Any]) -> nn.Module:
        target = doc["config"]["model"] if doc["model"]["kind"] in ("spec", "keras") else doc["model"]["name"]
        return build_model(target, tuple(doc["data"]["shape"]), len(doc["data"]["classes"]),
                           doc["model"].get("spec_text"), doc["model"].get("keras_text"))[0]

    def summary(self, report: dict[str, Any]) -> str:
        tta = " with mirror-image test-time augmentation" if report.get("tta") == "flip" else ""
        return (f"test accuracy {report['test_acc']:.4f}, loss {report['test_loss']:.4f}{tta} "
                f"(best epoch {report['best_epoch']})")
