"""The honesty rules every study shares: spreads over seeds and when a difference may be claimed."""

from __future__ import annotations

from cnnlab.study.common import pct_spread, spread, verdict


def test_a_difference_is_claimed_only_when_every_seed_is_on_one_side():
    a, b = spread([0.91, 0.92, 0.93]), spread([0.88, 0.89, 0.905])
    assert (verdict(a, b), verdict(b, a)) == ("higher", "lower")
    overlapping = spread([0.80, 0.95, 0.96])          # median above b's, one seed below b's best
    assert verdict(overlapping, b) == "not shown"
    two_seeds = (spread([0.99, 0.99]), spread([0.10, 0.10]))
    assert verdict(*two_seeds) == "not shown"         # fewer than three seeds: never a claim
    assert a["median"] == 0.92 and (a["min"], a["max"]) == (0.91, 0.93)


def test_a_spread_reads_as_median_and_range():
    assert pct_spread(spread([0.9, 0.95, 0.92])) == "92.00 % (90.00–95.00 %, 3 seeds)"
    assert pct_spread(spread([0.9])) == "90.00 %"
