"""The speedrun recipe with one change the command line has no flag for, run as ``cnnlab train`` runs it.

    python benchmarks/speedrun_variants.py OUT SEED [shift=F] [lookahead=K:ALPHA] [FIELD=VALUE ...]

``--recipe speedrun`` on Fashion-MNIST through :class:`cnnlab.train.engine.Trainer` (seed 0 with no change gives
the command's figures to the last digit), with: ``shift=F`` mirror images and a random shift of up to F of the
size (``shift=0.0357``: one pixel of 28; the ``basic`` preset is 0.1); ``lookahead=K:ALPHA`` every K steps the
weights move ALPHA of the way from slow weights to the fast ones and both become that; any other ``FIELD=VALUE``
a :class:`~cnnlab.train.config.TrainConfig` field (``warmup=0.05``, ``model=net.yaml``, ``optimizer=nesterov``).
Prints the best and last validation accuracy, the last validation loss and the test accuracy. The figures of
docs/benchmarks.md, "The speedrun's head", come from it.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from typing import Any

import torch

from cnnlab.data.augment import Augment
from cnnlab.train.config import TrainConfig
from cnnlab.train.engine import Trainer


def _value(field: str, text: str) -> Any:
    """``text`` as the type of the TrainConfig field's default (``bool("false")`` would be True: read as a word)."""
    default = getattr(TrainConfig, field, None)
    if isinstance(default, bool):
        return text.lower() in ("1", "true", "yes")
    return text if default is None or isinstance(default, str) else type(default)(text)


class Variant(Trainer):
    """A Trainer with the variant's augmentation and Lookahead."""

    shift: float | None = None
    lookahead: tuple[int, float] | None = None

    def _set_up_data_and_model(self, saved: dict[str, Any] | None) -> None:
        super()._set_up_data_and_model(saved)
        if self.shift is not None:
            self.task.augment = Augment(tuple(self.data.shape[1:]), True, shift=self.shift)

    def _step(self, x: torch.Tensor, y: Any) -> torch.Tensor:
        loss = super()._step(x, y)
        if self.lookahead:
            k, alpha = self.lookahead
            fast = [t for t in self.model.state_dict().values() if t.is_floating_point()]
            if not hasattr(self, "slow"):
                self.slow, self.steps = [t.detach().clone() for t in fast], 0
            self.steps += 1
            if self.steps % k == 0:
                with torch.no_grad():
                    for s, t in zip(self.slow, fast):
                        s.lerp_(t, alpha)
                        t.copy_(s)
        return loss


def main() -> None:
    t0 = time.perf_counter()
    out, seed, *changes = sys.argv[1:]
    opts = dict(c.split("=", 1) for c in changes)
    if "shift" in opts:
        Variant.shift = float(opts.pop("shift"))
    if "lookahead" in opts:
        k, alpha = opts.pop("lookahead").split(":")
        Variant.lookahead = (int(k), float(alpha))
    cfg = TrainConfig.for_recipe("speedrun", data="fashion-mnist", seed=int(seed), out=out,
                                 **{k: _value(k, v) for k, v in opts.items()})
    Variant(cfg, progress=False).run()
    with open(f"{out}/metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    test = json.loads(open(f"{out}/test.json").read())["test_acc"]
    print(f"{out} seed {seed} {changes}: best validation {100 * max(float(r['val_acc']) for r in rows):.2f} %, "
          f"last {100 * float(rows[-1]['val_acc']):.2f} % (loss {float(rows[-1]['val_loss']):.4f}), "
          f"test {100 * test:.2f} %, {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
