"""``fit``: the largest batch and the remedies, each a prediction."""

from __future__ import annotations

from pathlib import Path

import torch

from cnnlab.memory.fit import fit, headroom
from cnnlab.memory.estimate import estimate_memory
from cnnlab.models import create_model


ROOT = Path(__file__).resolve().parents[2]


def meta(name: str):
    with torch.device("meta"):
        return create_model(name)


def test_max_batch_is_the_largest_that_fits_and_remedies_are_ranked():
    net = meta("resnet18")
    at_12 = estimate_memory(net, (3, 32, 32), 12, "adam", include_inference=False).training.peak_bytes
    budget = at_12 + max(256 * 1024, -(-at_12 // 199))   # the usable part (budget less headroom) holds batch 12
    assert budget - headroom(budget) >= at_12
    report = fit(net, (3, 32, 32), budget, batch_size=64, optimizer="adam", name="resnet18")
    at_13 = estimate_memory(net, (3, 32, 32), 13, "adam", include_inference=False).training.peak_bytes
    assert at_13 > report.usable_bytes
    assert not report.fits and report.max_batch == 12
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


def test_spec_networks_get_stride_and_layer_removal_remedies_with_shapes_and_params():
    from cnnlab.spec import build, load_spec

    spec = load_spec(ROOT / "examples" / "geron_ex2.yaml").with_input((3, 100, 150))
    net = build(spec, device="meta")
    peak = estimate_memory(net, (3, 100, 150), 16, include_inference=False).training.peak_bytes
    report = fit(net, (3, 100, 150), peak * 6 // 10, batch_size=16, name="geron", spec=spec)
    stride = next(r for r in report.remedies if r.name == "larger stride")
    assert stride.details["change"].startswith("stride 2 -> 3") and stride.details["layer"] == "conv_1"
    assert stride.details["layer_output_shape"] == [100, 34, 50]
    assert stride.details["params"] == stride.details["params_before"] == 903_400
    assert stride.saved_bytes > 0 and stride.max_batch is not None
    # the last conv may go too (it is not a classifier); no single removal fits, so the best pair is tried
    single = next(r for r in report.remedies if r.name == "remove layer")
    assert single.details["layer"] == "conv_3" and not single.fits
    pair = next(r for r in report.remedies if r.name == "remove layers")
    assert pair.details["layer"] == "conv_2 and conv_3" and pair.fits and pair.peak_bytes < single.peak_bytes
    assert pair.details["params"] == sum(p.numel() for p in torch.nn.Conv2d(3, 100, 3).parameters())


def test_pools_without_a_stride_get_both_remedies():
    """The packaged small CNN's pools step by their window (no ``stride`` field): fit used to crash on them."""
    from cnnlab.memory.remedies import architecture_candidates
    from cnnlab.spec import build, load_spec

    spec = load_spec(ROOT / "src" / "cnnlab" / "train" / "small_cnn.yaml")
    pools = [i for i, layer in enumerate(spec.layers) if layer.TYPE == "maxpool"]
    assert pools and all(spec.layers[i].stride is None for i in pools)
    report = fit(build(spec, device="meta"), spec.input_shape, 1_000_000, batch_size=64, name="small_cnn",
                 spec=spec)
    assert any(r.name == "larger stride" for r in report.remedies)
    found = {(c.kind, c.layer, c.change) for c in architecture_candidates(spec, lambda s: s.total_params())}
    names, window = spec.layer_names(), spec.layers[pools[0]].size[0]
    assert ("larger stride", names[pools[0]], f"stride {window} -> {window + 1}") in found
    assert ("remove layer", names[pools[0]], f"remove {names[pools[0]]} (maxpool)") in found


def test_checkpointing_advice_uses_the_same_peak_as_memory():
    """fit's checkpointing figure is the one ``cnnlab memory --checkpointing`` predicts (MAC counting aside)."""
    net = meta("resnet50")
    plain = estimate_memory(net, (3, 128, 128), 8, include_inference=False).training.peak_bytes
    ck = estimate_memory(net, (3, 128, 128), 8, checkpointing=True, include_inference=False).training.peak_bytes
    assert ck < plain
    report = fit(net, (3, 128, 128), (ck + plain) // 2, batch_size=8, name="resnet50")
    remedy = next(r for r in report.remedies if r.name == "activation checkpointing")
    assert remedy.peak_bytes == ck and remedy.fits
    assert remedy.details["recompute_macs"] > 0


def test_a_flat_curve_is_bisected_not_counted_down():
    # CUDA rounds small tensors to 512-byte blocks: a tiny network's slope can come out 0, so the curve's answer
    # is its 2^24 cap; the real largest batch must be found in a few dozen predictions, not 16 million
    from cnnlab.memory.fit import _exact_max_batch
    from cnnlab.memory.estimate import BatchModel

    calls = []

    def predict(batch: int) -> int:
        calls.append(batch)
        return 1000 + 512 * (batch // 1000)           # fits up to batch 1999 in a budget of 1600

    best = _exact_max_batch(BatchModel((1000,), (0,)), 1600, predict)
    assert best == 1999 and len(calls) <= 30
    assert _exact_max_batch(BatchModel((1000,), (100,)), 1600, lambda b: 1000 + 100 * b) == 6   # the curve holds


def test_fit_of_a_tiny_network_for_cuda_answers_at_once():
    import torch

    from cnnlab.memory.fit import fit

    r = fit(torch.nn.Linear(4, 2), (4,), 300 * 1024, 32, device="cuda")   # fake tensors: no GPU needed
    assert r.fits and r.max_batch > 32
