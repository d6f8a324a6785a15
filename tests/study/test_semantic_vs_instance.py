"""Touching same-class objects: merged by a semantic mask, separated by instance masks (hand-made scenes)."""

from __future__ import annotations

import numpy as np
import torch

from cnnlab.study.semantic_vs_instance import PairCounts, matched, semantic_merges, touching_pairs


def rect(y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
    m = torch.zeros(12, 12, dtype=torch.bool)
    m[y0:y1, x0:x1] = True
    return m


LEFT, RIGHT, FAR = rect(2, 8, 1, 5), rect(2, 8, 5, 9), rect(10, 12, 10, 12)   # LEFT and RIGHT share an edge


def test_touching_means_4_neighbours_of_one_class():
    masks = torch.stack([LEFT, RIGHT, FAR])
    assert touching_pairs(masks, torch.tensor([1, 1, 1])) == [(0, 1)]
    assert touching_pairs(masks, torch.tensor([1, 2, 1])) == []                 # different classes
    diagonal = torch.stack([rect(0, 2, 0, 2), rect(2, 4, 2, 4)])                 # corners only: not 4-neighbours
    assert touching_pairs(diagonal, torch.tensor([1, 1])) == []


def det(*masks: torch.Tensor, labels=None, scores=None) -> dict[str, torch.Tensor]:
    n = len(masks)
    return {"masks": torch.stack(masks) if n else torch.zeros(0, 12, 12, dtype=torch.bool),
            "labels": torch.tensor(labels or [1] * n), "scores": torch.tensor(scores or [0.9] * n)}


def test_one_blob_merges_and_a_gap_separates():
    masks, labels = torch.stack([LEFT, RIGHT]), torch.tensor([1, 1])
    blob = (LEFT | RIGHT).numpy().astype(np.uint8)
    gap = blob.copy()
    gap[:, 5] = 0                                   # a background column between them
    assert semantic_merges(blob, masks, labels, 0, 1) is True
    assert semantic_merges(gap, masks, labels, 0, 1) is False
    assert semantic_merges(np.zeros_like(blob), masks, labels, 0, 1) is None
    c = PairCounts()
    c.add(blob, det(LEFT, RIGHT), masks, labels, 0.5)
    c.add(gap, det(LEFT | RIGHT), masks, labels, 0.5)          # one detection over both: not separated
    c.add(np.zeros((12, 12), np.uint8), det(LEFT, RIGHT, scores=[0.9, 0.3]), masks, labels, 0.5)
    assert (c.pairs, c.semantic_merged, c.semantic_separated, c.semantic_missed) == (3, 1, 1, 1)
    assert c.instance_separated == 1


def test_each_detection_finds_at_most_one_instance():
    masks, labels = torch.stack([LEFT, RIGHT]), torch.tensor([1, 1])
    assert matched(det(LEFT, RIGHT), masks, labels, 0.5) == [0, 1]
    assert matched(det(LEFT), masks, labels, 0.5) == [0, None]
    assert matched(det(LEFT, labels=[2]), masks, labels, 0.5) == [None, None]    # the wrong class finds nothing
