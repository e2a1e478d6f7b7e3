"""TOST power by integration, checked against a seeded Monte Carlo simulation of the test."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from app.scoring.power import plan, power_warning, seeds_needed, tost_power

SIMULATIONS = 200_000


def _simulated_power(
    *,
    sd: float,
    tolerance: float,
    m: int,
    alpha: float,
    true_difference: float,
    claim_n: int | None,
    seed: int,
) -> float:
    """Share of simulated experiments in which TOST (pooled SE for two samples) rejects."""
    rng = np.random.default_rng(seed)
    x = rng.normal(true_difference, sd, size=(SIMULATIONS, m))
    if claim_n is None:
        diff = x.mean(axis=1)
        s = x.std(axis=1, ddof=1)
        se, df = s / math.sqrt(m), m - 1
    else:
        y = rng.normal(0.0, sd, size=(SIMULATIONS, claim_n))
        diff = x.mean(axis=1) - y.mean(axis=1)
        df = m + claim_n - 2
        pooled = np.sqrt(
            ((m - 1) * x.var(axis=1, ddof=1) + (claim_n - 1) * y.var(axis=1, ddof=1)) / df
        )
        se = pooled * math.sqrt(1 / m + 1 / claim_n)
    t_star = stats.t.ppf(1 - alpha, df)
    return float(np.mean((diff - t_star * se > -tolerance) & (diff + t_star * se < tolerance)))


@pytest.mark.parametrize(
    ("sd", "tolerance", "m", "alpha", "true_difference", "claim_n"),
    [
        (1.0, 2.5, 5, 0.05, 0.0, None),
        (1.0, 1.0, 8, 0.05, 0.3, None),
        (0.5, 0.6, 3, 0.10, 0.0, None),
        (1.0, 2.5, 5, 0.05, 0.0, 5),
        (2.0, 3.0, 10, 0.05, -1.0, 4),
        (1.0, 1.5, 2, 0.05, 0.0, 3),
    ],
)
def test_integral_matches_monte_carlo(sd, tolerance, m, alpha, true_difference, claim_n) -> None:
    mode = "one_sample" if claim_n is None else "two_sample"
    exact = tost_power(
        sd=sd,
        tolerance=tolerance,
        seeds=m,
        alpha=alpha,
        mode=mode,
        claim_n=claim_n,
        true_difference=true_difference,
    )
    simulated = _simulated_power(
        sd=sd,
        tolerance=tolerance,
        m=m,
        alpha=alpha,
        true_difference=true_difference,
        claim_n=claim_n,
        seed=m * 1000 + (claim_n or 0),
    )
    # A binomial share of 200,000 draws has SE ≤ 0.5/√200000 ≈ 0.0011; allow 5 SE (≈ 1 in 3.5
    # million chance of a false alarm per case; the seeds are fixed so the test is deterministic).
    se = math.sqrt(max(exact * (1 - exact), 1e-4) / SIMULATIONS)
    assert abs(exact - simulated) < 5 * se + 1e-9


def test_power_is_zero_when_the_margin_cannot_be_reached_and_grows_with_seeds() -> None:
    powers = [tost_power(sd=1.0, tolerance=1.0, seeds=m) for m in range(2, 40)]
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(powers))
    assert powers[0] < 0.2
    assert powers[-1] > 0.99


def test_seeds_needed_is_the_smallest_reaching_the_target() -> None:
    for sd, tol, target in [(1.0, 1.0, 0.8), (1.0, 2.5, 0.8), (0.3, 0.5, 0.95)]:
        m = seeds_needed(sd=sd, tolerance=tol, target_power=target)
        assert m is not None
        assert tost_power(sd=sd, tolerance=tol, seeds=m) >= target
        if m > 2:
            assert tost_power(sd=sd, tolerance=tol, seeds=m - 1) < target


def test_seeds_needed_none_when_unreachable() -> None:
    # Two-sample mode: a claim with 2 seeds keeps SE ≥ σ/√2 however many fresh seeds are run.
    assert seeds_needed(sd=1.0, tolerance=0.5, mode="two_sample", claim_n=2) is None


def test_true_difference_sign_does_not_matter() -> None:
    a = tost_power(sd=1.0, tolerance=2.0, seeds=6, true_difference=0.7)
    b = tost_power(sd=1.0, tolerance=2.0, seeds=6, true_difference=-0.7)
    assert a == pytest.approx(b, abs=1e-12)


def test_scale_invariance() -> None:
    a = tost_power(sd=1.0, tolerance=2.0, seeds=6, true_difference=0.5)
    b = tost_power(sd=0.001, tolerance=0.002, seeds=6, true_difference=0.0005)
    assert a == pytest.approx(b, abs=1e-9)


def test_large_seed_counts_stay_accurate() -> None:
    # The chi density is narrow for large ν; the integral must still find it.
    assert tost_power(sd=1.0, tolerance=0.1, seeds=2000) == pytest.approx(
        _normal_limit(1.0, 0.1, 2000), abs=2e-3
    )


def _normal_limit(sd: float, tol: float, m: int) -> float:
    se = sd / math.sqrt(m)
    h = tol - stats.norm.ppf(0.95) * se
    return float(stats.norm.cdf(h / se) - stats.norm.cdf(-h / se))


def test_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match="sd"):
        tost_power(sd=0.0, tolerance=1.0, seeds=5)
    with pytest.raises(ValueError, match="seeds"):
        tost_power(sd=1.0, tolerance=1.0, seeds=1)
    with pytest.raises(ValueError, match="claim_n"):
        tost_power(sd=1.0, tolerance=1.0, seeds=5, mode="two_sample")
    with pytest.raises(ValueError, match="target_power"):
        seeds_needed(sd=1.0, tolerance=1.0, target_power=1.0)


def test_warning_below_one_and_a_half() -> None:
    assert power_warning(sd=1.0, tolerance=1.5) is None
    warning = power_warning(sd=1.0, tolerance=1.2)
    assert warning is not None
    assert "inconclusive" in warning
    assert power_warning(sd=None, tolerance=1.0) is None


def test_plan() -> None:
    result = plan(sd=0.0022, tolerance=0.006, seeds=5)
    d = result.to_dict()
    assert d["seeds"] == 5
    assert 0 < d["power"] <= 1
    assert d["seeds_needed"] is not None
    assert d["warning"] is None


@pytest.mark.parametrize("m", [2, 3, 5, 10, 30])
def test_one_sided_limit_matches_statsmodels_power(m: int) -> None:
    # With a huge margin and the truth 0.7σ inside one edge, the far test always rejects, so TOST
    # power equals the power of the near one-sided t-test: statsmodels' noncentral-t power.
    from statsmodels.stats.power import TTestIndPower, TTestPower

    tol, true_difference = 20.0, 19.3
    one = tost_power(sd=1.0, tolerance=tol, seeds=m, true_difference=true_difference)
    expected = TTestPower().power(
        effect_size=tol - true_difference, nobs=m, alpha=0.05, alternative="larger"
    )
    assert one == pytest.approx(expected, abs=1e-7)
    two = tost_power(
        sd=1.0,
        tolerance=tol,
        seeds=m,
        true_difference=true_difference,
        mode="two_sample",
        claim_n=4,
    )
    expected = TTestIndPower().power(
        effect_size=tol - true_difference, nobs1=m, ratio=4 / m, alpha=0.05, alternative="larger"
    )
    assert two == pytest.approx(expected, abs=1e-7)


def test_tost_power_is_below_each_one_sided_power() -> None:
    from statsmodels.stats.power import TTestPower

    for tol, d0, m in [(1.0, 0.2, 5), (2.0, 0.0, 3), (0.8, 0.5, 12)]:
        power = tost_power(sd=1.0, tolerance=tol, seeds=m, true_difference=d0)
        for effect in (tol - d0, tol + d0):
            bound = TTestPower().power(effect_size=effect, nobs=m, alpha=0.05, alternative="larger")
            assert power <= bound + 1e-9
