"""The one-metric comparison: modes, spread conversion, verdicts, and statsmodels cross-checks."""

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats import weightstats

from app.scoring.comparison import (
    ClaimSummary,
    claimed_mean_agrees,
    compare,
    probability_better,
    spread_to_sd,
    summarize_claim,
)
from tests.scoring.worked import R1, C

RNG_SEED = 20240611


def test_spread_conversions() -> None:
    assert spread_to_sd(0.4, "sd", 5) == 0.4
    assert spread_to_sd(0.4, "two_sd", None) == pytest.approx(0.2)
    assert spread_to_sd(0.1, "sem", 9) == pytest.approx(0.3)
    half = stats.t.ppf(0.975, 4) * 0.3 / math.sqrt(5)
    assert spread_to_sd(half, "ci95_half", 5) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="n ≥ 2"):
        spread_to_sd(0.1, "sem", None)


@pytest.mark.parametrize(
    ("kind", "spread"),
    [("sd", 0.3), ("two_sd", 0.6), ("sem", 0.3 / math.sqrt(5)), ("ci95_half", None)],
)
def test_every_spread_kind_gives_the_same_comparison(kind: str, spread: float | None) -> None:
    if spread is None:
        spread = stats.t.ppf(0.975, 4) * 0.3 / math.sqrt(5)
    claim = summarize_claim(97.1, spread=spread, spread_kind=kind, n=5)  # type: ignore[arg-type]
    c = compare(claim=claim, reproduced=R1, direction="higher", tolerance=0.5)
    assert c.claimed_sd == pytest.approx(0.3)
    assert c.t_difference == pytest.approx(-0.5019646441, abs=1e-6)


def test_point_claim_is_one_sample() -> None:
    c = compare(claim=summarize_claim(97.1), reproduced=R1, direction="higher", tolerance=0.5)
    assert c.mode == "one_sample"
    assert c.df == 4
    assert c.se == pytest.approx(stats.sem(R1))
    assert c.hedges_g is None
    assert c.prob_improvement is None
    ref = stats.ttest_1samp(R1, 97.1)
    assert c.t_difference == pytest.approx(ref.statistic)
    assert c.p_difference == pytest.approx(ref.pvalue)


def test_spread_without_n_falls_back_to_one_sample() -> None:
    claim = summarize_claim(97.1, spread=0.3, spread_kind="sd")
    assert claim.sd == 0.3
    assert not claim.two_sample
    claim = summarize_claim(97.1, spread=0.1, spread_kind="sem")
    assert claim.sd is None


def test_spread_needs_its_kind() -> None:
    with pytest.raises(ValueError, match="spread_kind"):
        summarize_claim(1.0, spread=0.1)


def _random_case(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    m, n = rng.integers(2, 12, size=2)
    scale = 10.0 ** rng.uniform(-3, 1)
    x = rng.normal(0.0, scale * rng.uniform(0.3, 2), size=m)
    y = rng.normal(rng.normal(0, scale), scale * rng.uniform(0.3, 2), size=n)
    delta = scale * rng.uniform(0.2, 4)
    return x, y, delta


def test_welch_tost_matches_statsmodels_on_random_inputs() -> None:
    rng = np.random.default_rng(RNG_SEED)
    for _ in range(200):
        x, y, delta = _random_case(rng)
        claim = summarize_claim(float(np.mean(y)), values=y.tolist())
        c = compare(claim=claim, reproduced=x.tolist(), direction="higher", tolerance=delta)
        p, lower, upper = weightstats.ttost_ind(x, y, -delta, delta, usevar="unequal")
        assert c.p_tost == pytest.approx(p, rel=1e-7, abs=1e-12)
        assert c.t_lower == pytest.approx(lower[0], rel=1e-9)
        assert c.t_upper == pytest.approx(upper[0], rel=1e-9)
        assert c.df == pytest.approx(lower[2], rel=1e-9)
        t, p2, _df = weightstats.ttest_ind(x, y, usevar="unequal")
        assert c.t_difference == pytest.approx(t, rel=1e-9)
        assert c.p_difference == pytest.approx(p2, rel=1e-7, abs=1e-12)
        # The one-sided minimum-effect tests are TOST's two halves read the other way.
        assert c.p_worse == pytest.approx(1.0 - lower[1], abs=1e-9)
        assert c.p_better == pytest.approx(1.0 - upper[1], abs=1e-9)


def test_one_sample_tost_matches_statsmodels_paired_on_random_inputs() -> None:
    rng = np.random.default_rng(RNG_SEED + 1)
    for _ in range(200):
        x, y, delta = _random_case(rng)
        mu = float(y[0])
        c = compare(
            claim=summarize_claim(mu), reproduced=x.tolist(), direction="higher", tolerance=delta
        )
        p, lower, _upper = weightstats.ttost_paired(x, np.full_like(x, mu), -delta, delta)
        assert c.p_tost == pytest.approx(p, rel=1e-7, abs=1e-12)
        assert c.t_lower == pytest.approx(lower[0], rel=1e-9)
        assert c.df == lower[2]


def test_interval_and_verdict_agree_with_p_values_on_random_inputs() -> None:
    rng = np.random.default_rng(RNG_SEED + 2)
    for _ in range(300):
        x, y, delta = _random_case(rng)
        c = compare(
            claim=summarize_claim(float(np.mean(y)), values=y.tolist()),
            reproduced=x.tolist(),
            direction="higher",
            tolerance=delta,
        )
        assert c.ci_low is not None
        assert c.ci_high is not None
        inside = -delta < c.ci_low and c.ci_high < delta
        assert (c.verdict == "reproduced") == inside
        if c.verdict == "not_reproduced":
            assert c.ci_high < -delta
        if c.verdict == "exceeded":
            assert c.ci_low > delta


def test_hedges_g_matches_direct_formula_on_random_inputs() -> None:
    rng = np.random.default_rng(RNG_SEED + 3)
    for _ in range(100):
        x, y, delta = _random_case(rng)
        c = compare(
            claim=summarize_claim(float(np.mean(y)), values=y.tolist()),
            reproduced=x.tolist(),
            direction="higher",
            tolerance=delta,
        )
        m, n = len(x), len(y)
        pooled = math.sqrt(((m - 1) * x.var(ddof=1) + (n - 1) * y.var(ddof=1)) / (m + n - 2))
        d = (x.mean() - y.mean()) / pooled
        assert c.cohens_d == pytest.approx(d, rel=1e-9)
        assert c.hedges_g == pytest.approx(d * (1 - 3 / (4 * (m + n) - 9)), rel=1e-9)


def test_probability_of_improvement_is_mann_whitney_u_over_mn() -> None:
    rng = np.random.default_rng(RNG_SEED + 4)
    for size in (3, 5, 30):
        x = np.round(rng.normal(size=size), 1)
        y = np.round(rng.normal(size=size + 2), 1)  # rounding makes ties
        u = stats.mannwhitneyu(x, y).statistic
        assert probability_better(x.tolist(), y.tolist()) == pytest.approx(u / (len(x) * len(y)))
    c = compare(
        claim=summarize_claim(97.1, values=C), reproduced=R1, direction="higher", tolerance=0.5
    )
    assert c.prob_improvement == pytest.approx(stats.mannwhitneyu(R1, C).statistic / 25)


def test_lower_is_better_flips_the_difference() -> None:
    claim = summarize_claim(0.30, values=[0.31, 0.29, 0.30])
    c = compare(claim=claim, reproduced=[0.25, 0.26, 0.24], direction="lower", tolerance=0.01)
    assert c.delta == pytest.approx(0.05)
    assert c.verdict == "exceeded"
    c = compare(claim=claim, reproduced=[0.35, 0.36, 0.34], direction="lower", tolerance=0.01)
    assert c.verdict == "not_reproduced"


def test_inconclusive_leans() -> None:
    claim = summarize_claim(10.0)
    worse = compare(claim=claim, reproduced=[9.0, 9.4, 8.7, 9.2], direction="higher", tolerance=0.9)
    assert worse.verdict == "inconclusive"
    assert worse.lean == "worse"
    assert worse.ci_high is not None
    assert worse.ci_high < 0
    better = compare(
        claim=claim, reproduced=[11.0, 10.6, 11.3, 10.8], direction="higher", tolerance=0.9
    )
    assert (better.verdict, better.lean) == ("inconclusive", "better")
    wide = compare(
        claim=claim, reproduced=[8.0, 12.0, 9.0, 11.0], direction="higher", tolerance=0.9
    )
    assert (wide.verdict, wide.lean) == ("inconclusive", "none")
    assert wide.point_rule is True


@pytest.mark.parametrize(
    ("reproduced", "verdict"),
    [([1.0, 1.0, 1.0], "reproduced"), ([0.5, 0.5], "not_reproduced"), ([1.5, 1.5], "exceeded")],
)
def test_se_zero_point_claim(reproduced: list[float], verdict: str) -> None:
    c = compare(
        claim=summarize_claim(1.0), reproduced=reproduced, direction="higher", tolerance=0.5
    )
    assert c.se == 0.0
    assert c.se_zero
    assert c.verdict == verdict
    assert c.ci_low == c.ci_high == c.delta
    assert c.t_difference is None
    assert c.lean is None


@pytest.mark.parametrize(
    ("claim", "value", "tol", "verdict", "point_rule"),
    [
        (1.0, 0.9, 0.1, "not_reproduced", True),
        (1.0, 1.1, 0.1, "exceeded", True),
        (0.3, 0.2, 0.1, "not_reproduced", True),
        (0.962, 0.956, 0.006, "not_reproduced", True),
        (0.962, 0.9561, 0.006, "reproduced", True),
    ],
)
def test_se_zero_margin_is_judged_as_written(
    claim: float, value: float, tol: float, verdict: str, point_rule: bool
) -> None:
    c = compare(
        claim=summarize_claim(claim), reproduced=[value] * 3, direction="higher", tolerance=tol
    )
    assert c.verdict == verdict
    assert c.point_rule is point_rule


def test_se_zero_boundaries() -> None:
    claim = ClaimSummary(mean=1.0, sd=0.0, n=3, values=(1.0, 1.0, 1.0))
    at_minus = compare(claim=claim, reproduced=[0.5, 0.5, 0.5], direction="higher", tolerance=0.5)
    assert at_minus.verdict == "not_reproduced"
    assert at_minus.p_worse == 0.0
    assert at_minus.df is None
    at_plus = compare(claim=claim, reproduced=[1.5, 1.5, 1.5], direction="higher", tolerance=0.5)
    assert at_plus.verdict == "exceeded"
    inside = compare(claim=claim, reproduced=[1.25, 1.25], direction="higher", tolerance=0.5)
    assert inside.verdict == "reproduced"
    assert inside.p_tost == 0.0


@pytest.mark.parametrize("reproduced", [[], [1.0], [1.0, float("nan")], [1.0, float("inf"), 2.0]])
def test_insufficient_data(reproduced: list[float]) -> None:
    c = compare(
        claim=summarize_claim(1.0), reproduced=reproduced, direction="higher", tolerance=0.5
    )
    assert c.verdict == "insufficient_data"
    assert c.p_tost is None
    assert c.lean is None
    if len(reproduced) == 1:
        assert c.delta == 0.0
        assert c.point_rule is True


def test_non_finite_claim_is_insufficient() -> None:
    claim = summarize_claim(float("nan"))
    c = compare(claim=claim, reproduced=[1.0, 2.0], direction="higher", tolerance=0.5)
    assert c.verdict == "insufficient_data"


def test_bad_parameters_raise() -> None:
    claim = summarize_claim(1.0)
    with pytest.raises(ValueError, match="tolerance"):
        compare(claim=claim, reproduced=[1.0, 2.0], direction="higher", tolerance=0.0)
    with pytest.raises(ValueError, match="alpha"):
        compare(claim=claim, reproduced=[1.0, 2.0], direction="higher", tolerance=1.0, alpha=0.5)
    with pytest.raises(ValueError, match="direction"):
        compare(claim=claim, reproduced=[1.0, 2.0], direction="up", tolerance=1.0)  # type: ignore[arg-type]


def test_reproduced_mean_interval_is_a_t_interval() -> None:
    c = compare(claim=summarize_claim(97.1), reproduced=R1, direction="higher", tolerance=0.5)
    low, high = stats.t.interval(0.95, 4, loc=np.mean(R1), scale=stats.sem(R1))
    assert (c.ci95_low, c.ci95_high) == pytest.approx((low, high))


def test_to_dict_is_json_safe() -> None:
    c = compare(
        claim=summarize_claim(1.0),
        reproduced=[1.0, float("nan")],
        direction="higher",
        tolerance=0.5,
    )
    d = c.to_dict()
    assert all(not isinstance(v, float) or math.isfinite(v) for v in d.values())
    assert all(type(v) in (str, int, float, bool, type(None)) for v in d.values())


def test_claimed_mean_agrees_to_written_precision() -> None:
    values = [0.961, 0.958, 0.966, 0.963, 0.962]
    assert claimed_mean_agrees(0.962, values)
    assert claimed_mean_agrees(0.96, values)
    assert not claimed_mean_agrees(0.97, values)
    assert not claimed_mean_agrees(0.9625, values)
    assert not claimed_mean_agrees(float("nan"), values)
