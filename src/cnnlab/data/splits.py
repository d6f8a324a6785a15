"""Seeded random splits, shared by every data kind (image classes, masks, instances): no image in two splits."""

from __future__ import annotations

from typing import Any, TypeVar

import torch

TEST_FRACTION = 0.2     # of a data set that comes without its own test split
S = TypeVar("S")


def random_split(s: S, fraction: float, seed: int) -> tuple[S, S]:
    """(rest, part): a seeded random ``fraction`` of ``s`` as ``part``, both in their original order.

    ``s`` has ``len`` and ``subset(index_tensor)``."""
    n = len(s)  # type: ignore[arg-type]
    k = int(round(n * fraction))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return s.subset(perm[k:].sort().values), s.subset(perm[:k].sort().values)  # type: ignore[attr-defined]


def three_way(splits: dict[str, Any], val_fraction: float, seed: int) -> tuple[Any, Any, Any]:
    """(train, val, test) from a folder's splits: ``{"all": …}`` or ``train`` with optional ``val`` and ``test``;
    a missing test split is :data:`TEST_FRACTION` of the rest (seed), a missing validation split ``val_fraction``
    of what remains (seed + 1)."""
    if "all" in splits:
        rest, test = random_split(splits["all"], TEST_FRACTION, seed)
        train, val = random_split(rest, val_fraction, seed + 1)
        return train, val, test
    train = splits["train"]
    train, test = (train, splits["test"]) if "test" in splits else random_split(train, TEST_FRACTION, seed)
    train, val = (train, splits["val"]) if "val" in splits else random_split(train, val_fraction, seed + 1)
    return train, val, test
