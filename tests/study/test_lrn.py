"""cnnlab study lrn: the correlation measure against NumPy, the hooked maps against torch's LRN, and the quick
study's numbers against its run folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnlab.cli.main import main
from cnnlab.study.lrn import ARMS, first_layer_maps, lrn_strength, map_correlation


def test_map_correlation_is_numpys_corrcoef_over_images_and_positions():
    g = torch.Generator().manual_seed(0)
    maps = torch.rand(6, 4, 5, 5, generator=g)
    maps[:, 2] = 0.5 * maps[:, 1] + 0.1 * torch.rand(6, 5, 5, generator=g)     # maps 1 and 2 correlated
    maps[:, 3] = 0.0                                                            # a dead map
    flat = maps.permute(1, 0, 2, 3).reshape(4, -1).numpy()[:3]
    ref = np.abs(np.corrcoef(flat))
    got = map_correlation(maps)
    assert got["all_pairs"] == pytest.approx(ref[~np.eye(3, dtype=bool)].mean())
    assert got["neighbours"] == pytest.approx((ref[0, 1] + ref[1, 2]) / 2)
    assert got["dead_maps"] == 1 and got["maps"] == 4


def test_lrn_strength_is_alexnets_sum_over_five_neighbouring_maps():
    a = torch.zeros(1, 7, 1, 1)
    a[0, 3] = 10.0                                   # one active map: its neighbours within 2 see 100
    s = lrn_strength(a)                              # median over 7 maps: 5 of them have Σa² = 100
    assert s == pytest.approx(1e-4 * 100 / 2)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lrn")
    assert main(["study", "lrn", "--quick", "--epochs", "2", "--seeds", "0,1", "--out", str(out),
                 "--no-progress"]) == 0
    return out


@pytest.mark.slow
def test_the_hooked_maps_are_the_first_relu_and_torchs_lrn_of_it(report):
    from cnnlab.data import load_data

    images = load_data("digits", seed=0).test.images[:50]
    maps = first_layer_maps(report / "runs" / "lrn-s0", images)
    assert set(maps) == {"relu", "lrn"} and maps["relu"].min() >= 0
    # AlexNet's constants in torch's spelling: alpha is α·n
    assert torch.allclose(maps["lrn"], F.local_response_norm(maps["relu"], 5, alpha=5e-4, beta=0.75, k=2.0),
                          atol=1e-6)
    assert set(first_layer_maps(report / "runs" / "none-s0", images)) == {"relu"}


@pytest.mark.slow
def test_every_number_is_its_run_folders(report):
    r = json.loads((report / "report.json").read_text())
    for arm in ARMS:
        accs = [json.loads((report / "runs" / f"{arm}-s{s}" / "test.json").read_text())["test_acc"] for s in (0, 1)]
        assert r["arms"][arm]["test_acc"]["values"] == pytest.approx(accs)
        spec = (report / "specs" / f"{arm}.yaml").read_text()
        assert ("lrn" in spec.split("layers:")[1]) == (arm == "lrn")
        assert ("batchnorm" in spec) == (arm == "batchnorm")
    assert [line.split("**")[1] for line in r["findings"]] == ["Specialisation.", "Accuracy.", "Cost."]
    assert f"{r['arms']['none']['corr_relu']['all_pairs']['median']:.3f} without" in r["findings"][0]
    assert "not shown" in r["findings"][1]           # two seeds: no difference is claimed
    assert (report / r["figures"][0]).stat().st_size > 0 and "| LRN" in (report / "report.md").read_text()


def test_fewer_than_two_living_maps_have_no_correlation_to_report():
    maps = torch.zeros(3, 4, 2, 2)
    maps[:, 1] = torch.rand(3, 2, 2)
    assert map_correlation(maps) == {"all_pairs": 0.0, "neighbours": 0.0, "dead_maps": 3, "maps": 4}
