"""Semantic vs instance segmentation on touching objects of one class: who keeps them apart?

A semantic mask labels pixels by class, so two touching shirts can only be
told apart if a gap of another class runs between them; its *connected
components* (scipy.ndimage.label, 4-connectivity) are the objects it implies.
Mask R-CNN gives each object its own mask. For every pair of true instances of
the same class whose masks touch (a pixel of one is a 4-neighbour of a pixel
of the other):

- the semantic prediction **merges** the pair when the component holding most
  of one instance's correctly-labelled pixels also holds most of the other's;
- Mask R-CNN **separates** the pair when both instances are found by two
  different detections (scoring ≥ the threshold, same class, mask IoU ≥ 0.5;
  each detection matched to at most one instance, best IoU first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def touching_pairs(masks: torch.Tensor, labels: torch.Tensor) -> list[tuple[int, int]]:
    """Index pairs (i < j) of same-class instances whose masks are 4-neighbours somewhere."""
    import torch.nn.functional as F

    cross = torch.tensor([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=torch.float32)[None, None]
    grown = F.conv2d(masks.float()[:, None], cross, padding=1)[:, 0] > 0
    return [(i, j) for i in range(len(labels)) for j in range(i + 1, len(labels))
            if labels[i] == labels[j] and bool((grown[i] & masks[j]).any())]


def semantic_merges(pred: np.ndarray, masks: torch.Tensor, labels: torch.Tensor, i: int, j: int) -> bool | None:
    """Does the semantic prediction put instances i and j in one connected component of their class?

    ``None`` when one of them has no pixel predicted as its class (then it is missed, not merged)."""
    from scipy import ndimage

    comp, _ = ndimage.label(pred == int(labels[i]))
    majority = []
    for k in (i, j):
        ids = comp[masks[k].numpy()]
        ids = ids[ids > 0]
        if ids.size == 0:
            return None
        majority.append(int(np.bincount(ids).argmax()))
    return majority[0] == majority[1]


def matched(det: dict[str, torch.Tensor], masks: torch.Tensor, labels: torch.Tensor, threshold: float,
            iou: float = 0.5) -> list[int | None]:
    """For each true instance, the detection that found it (or None), greedy by mask IoU."""
    keep = det["scores"] >= threshold
    dm, dl = det["masks"][keep].bool(), det["labels"][keep]
    if len(dl) == 0:
        return [None] * len(labels)
    inter = (masks[:, None] & dm[None]).flatten(2).sum(-1).double()
    union = (masks[:, None] | dm[None]).flatten(2).sum(-1).double()
    ious = torch.where(labels[:, None] == dl[None], inter / union.clamp_min(1), torch.zeros(()))
    out: list[int | None] = [None] * len(labels)
    used: set[int] = set()
    for flat in torch.argsort(ious.flatten(), descending=True).tolist():
        t, d = divmod(flat, len(dl))
        if ious[t, d] < iou:
            break
        if out[t] is None and d not in used:
            out[t] = d
            used.add(d)
    return out


@dataclass
class PairCounts:
    """Touching same-class pairs and what each kind of segmentation made of them."""

    pairs: int = 0
    semantic_merged: int = 0
    semantic_separated: int = 0
    semantic_missed: int = 0        # an instance with no pixel of its class predicted
    instance_separated: int = 0

    def add(self, pred: np.ndarray, det: dict[str, torch.Tensor], masks: torch.Tensor, labels: torch.Tensor,
            threshold: float) -> list[tuple[int, int]]:
        """Count one scene; returns its touching pairs."""
        pairs = touching_pairs(masks, labels)
        found = matched(det, masks, labels, threshold) if pairs else []
        for i, j in pairs:
            self.pairs += 1
            merged = semantic_merges(pred, masks, labels, i, j)
            if merged is None:
                self.semantic_missed += 1
            elif merged:
                self.semantic_merged += 1
            else:
                self.semantic_separated += 1
            if found[i] is not None and found[j] is not None and found[i] != found[j]:
                self.instance_separated += 1
        return pairs
