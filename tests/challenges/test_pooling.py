"""Pooling attempts: inverse-variance weighting, I², DerSimonian–Laird, and the consensus —
against a hand computation and against statsmodels."""

from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.stats.meta_analysis import combine_effects

from app.challenges.pooling import (
    Estimate,
    claim_consensus,
    consensus_line,
    metric_consensus,
    pool,
)

# Three attempts, three fresh seeds each (the API test runs the same numbers end to end):
#   A [2.0, 2.1, 2.2]: mean 2.1, sd 0.1 → se² = 0.01/3,  w = 300
#   B [1.9, 2.0, 2.1]: mean 2.0, sd 0.1 → se² = 0.01/3,  w = 300
#   C [1.7, 1.9, 2.1]: mean 1.9, sd 0.2 → se² = 0.04/3,  w = 75
# Σw = 675; ŷ = (630 + 600 + 142.5)/675 = 2.0333…; SE = 1/√675 = 0.0384900
# Q = 300·(1/15)² + 300·(1/30)² + 75·(2/15)² = 4/3 + 1/3 + 4/3 = 3; df = 2; I² = 1/3
# C = 675 − (300² + 300² + 75²)/675 = 400; τ² = (3 − 2)/400 = 0.0025
THREE = [
    Estimate(1, 2.1, 0.1 / math.sqrt(3)),
    Estimate(2, 2.0, 0.1 / math.sqrt(3)),
    Estimate(3, 1.9, 0.2 / math.sqrt(3)),
]


def test_three_attempts_pool_as_computed_by_hand() -> None:
    p = pool(THREE)
    assert p is not None
    assert p.k == 3
    assert p.estimate == pytest.approx(1372.5 / 675, abs=1e-12)
    assert p.se == pytest.approx(1 / math.sqrt(675), abs=1e-12)
    assert p.q == pytest.approx(3.0, abs=1e-9)
    assert p.df == 2
    assert p.i2 == pytest.approx(1 / 3, abs=1e-9)
    assert p.tau2 == pytest.approx(0.0025, abs=1e-12)
    assert p.weights == pytest.approx({1: 300 / 675, 2: 300 / 675, 3: 75 / 675})
    assert p.p_heterogeneity == pytest.approx(math.exp(-3 / 2), abs=1e-12)  # χ²(2) tail
    assert p.ci95_low == pytest.approx(2.0333333 - 1.959964 * 0.0384900, abs=1e-6)


def test_pooling_agrees_with_statsmodels() -> None:
    rng = np.random.default_rng(7)
    means = rng.normal(2.0, 0.5, size=6)  # heterogeneous: τ² > 0
    ses = rng.uniform(0.03, 0.3, size=6)
    p = pool(
        [Estimate(i, float(m), float(s)) for i, (m, s) in enumerate(zip(means, ses, strict=True))]
    )
    ref = combine_effects(means, ses**2, method_re="dl")
    frame = ref.summary_frame()
    assert ref.tau2 > 0  # statsmodels does not truncate a negative τ² at 0; DerSimonian–Laird does
    assert p is not None
    assert p.estimate == pytest.approx(frame.loc["fixed effect", "eff"], rel=1e-10)
    assert p.se == pytest.approx(frame.loc["fixed effect", "sd_eff"], rel=1e-10)
    assert p.re_estimate == pytest.approx(frame.loc["random effect", "eff"], rel=1e-10)
    assert p.re_se == pytest.approx(frame.loc["random effect", "sd_eff"], rel=1e-10)
    assert p.q == pytest.approx(ref.q, rel=1e-10)
    assert p.i2 == pytest.approx(ref.i2, rel=1e-10)
    assert p.tau2 == pytest.approx(ref.tau2, rel=1e-10)


def test_edge_cases() -> None:
    assert pool([]) is None
    assert pool([Estimate(1, 2.0, 0.0)]) is None  # no variance, no weight
    one = pool([Estimate(1, 2.0, 0.1)])
    assert one is not None
    assert one.i2 == 0
    assert one.p_heterogeneity is None
    assert one.tau2 == 0
    same = pool([Estimate(1, 2.0, 0.1), Estimate(2, 2.0, 0.1)])
    assert same is not None
    assert same.q == 0
    assert same.i2 == 0


def test_consensus_rules_and_line() -> None:
    p = pool(THREE)
    assert p is not None
    ok = metric_consensus(
        p, claimed_mean=2.0, claim_se=0.1 / math.sqrt(5), direction="higher", tolerance=0.5
    )
    assert ok.verdict == "reproduced"
    se = math.sqrt(p.re_se**2 + 0.002)
    assert ok.difference == pytest.approx(p.re_estimate - 2.0)
    assert ok.ci_low == pytest.approx(ok.difference - 1.6448536 * se, abs=1e-6)
    worse = metric_consensus(p, claimed_mean=3.0, claim_se=0.0, direction="higher", tolerance=0.5)
    assert worse.verdict == "not_reproduced"
    better = metric_consensus(p, claimed_mean=3.0, claim_se=0.0, direction="lower", tolerance=0.5)
    assert better.verdict == "exceeded"
    vague = metric_consensus(p, claimed_mean=2.45, claim_se=0.0, direction="higher", tolerance=0.5)
    assert vague.verdict == "inconclusive"

    primary = {"score": True, "loss": False}
    assert claim_consensus({"score": ok, "loss": worse}, primary, independent=3) == "reproduced"
    assert claim_consensus({"score": worse}, primary, independent=3) == "not_reproduced"
    assert claim_consensus({"score": better}, primary, independent=3) == "exceeded"
    assert claim_consensus({"score": vague}, primary, independent=3) == "inconclusive"
    assert claim_consensus({"score": ok}, primary, independent=1) == "pending"
    assert claim_consensus({"score": None}, primary, independent=3) == "pending"

    line = consensus_line(
        "reproduced", independent=3, reproduced_individually=3, metrics={"score": (p, ok, 2.0)}
    )
    assert line.startswith("Consensus of 3 independent attempts: the claim is reproduced")
    assert "lies inside the ±0.5 margin (I² = 33%)" in line
    assert consensus_line("pending", independent=1, reproduced_individually=1, metrics={}) == (
        "No consensus yet: 1 independent judged attempt; at least 2 are needed."
    )
