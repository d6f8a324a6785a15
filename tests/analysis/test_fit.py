"""``fit``: the largest batch and the remedies, each a prediction."""

from __future__ import annotations

import torch

from cnnlab.analysis.fit import fit
from cnnlab.analysis.memory import estimate_memory
from cnnlab.models import create_model


def meta(name: str):
    with torch.device("meta"):
        return create_model(name)


def test_max_batch_is_the_largest_that_fits_and_remedies_are_ranked():
    net = meta("resnet18")
    at_12 = estimate_memory(net, (3, 32, 32), 12, "adam", include_inference=False).training.peak_bytes
    report = fit(net, (3, 32, 32), at_12, batch_size=64, optimizer="adam", name="resnet18")
    assert not report.fits and report.max_batch == 12
    at_13 = estimate_memory(net, (3, 32, 32), 13, "adam", include_inference=False).training.peak_bytes
    assert at_13 > at_12
    names = [r.name for r in report.remedies]
    assert {"smaller batch", "mixed precision", "plain SGD", "data parallel ×8", "fully sharded ×8"} <= set(names)
    fitting = [r for r in report.remedies if r.fits]
    assert fitting and report.try_first == fitting[0].name
    assert all(not r.fits for r in report.remedies[len(fitting):])
    dp8 = next(r for r in report.remedies if r.name == "data parallel ×8")
    fs8 = next(r for r in report.remedies if r.name == "fully sharded ×8")
    assert fs8.peak_bytes < dp8.peak_bytes  # sharding parameters, gradients and Adam state saves more
    assert report.to_dict()["remedies"][0]["peak_bytes"] > 0


def test_a_network_that_cannot_fit_even_at_batch_1_gets_an_honest_answer():
    report = fit(meta("lenet5"), (1, 32, 32), budget=1000, batch_size=8, name="lenet5")
    assert report.max_batch == 0 and not report.fits
    assert report.remedies[0].fits or report.try_first is None
