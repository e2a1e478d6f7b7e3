"""Aggregates: IQM, stratified bootstrap, profiles, P(improvement), AlgoPerf, Wilson, ranks."""

import numpy as np
import pytest
from scipy import stats

from app.scoring.aggregate import (
    algoperf_scores,
    iqm,
    mean_interval95,
    normalize,
    performance_profile,
    probability_of_improvement,
    rank_bands,
    reproduction_rate,
    stratified_bootstrap_iqm,
    wilson_interval,
)


def test_iqm_is_scipy_trim_mean() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=37)
    assert iqm(x.tolist()) == pytest.approx(stats.trim_mean(x, 0.25))


def test_normalize() -> None:
    assert normalize(
        [0.912, 0.968, 0.94], reference_low=0.912, reference_high=0.968
    ) == pytest.approx([0.0, 1.0, 0.5])
    # A lower-is-better metric: reference_low is SGD's (higher) loss, reference_high the best.
    assert normalize([0.5, 0.3], reference_low=0.5, reference_high=0.3) == pytest.approx([0.0, 1.0])
    with pytest.raises(ValueError, match="differ"):
        normalize([1.0], reference_low=1.0, reference_high=1.0)


def test_stratified_bootstrap_is_seeded_and_sensible() -> None:
    rng = np.random.default_rng(2)
    groups = [rng.normal(0.5, 0.1, size=10).tolist(), rng.normal(0.8, 0.05, size=6).tolist()]
    a = stratified_bootstrap_iqm(groups)
    b = stratified_bootstrap_iqm(groups)
    assert a == b
    assert a.low < a.estimate < a.high
    assert a.estimate == pytest.approx(iqm(groups[0] + groups[1]))
    assert a.to_dict()["level"] == 0.95


def test_bootstrap_matches_scipy_percentile_for_one_group() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=40)
    ours = stratified_bootstrap_iqm([x.tolist()], resamples=20_000)
    ref = stats.bootstrap(
        (x,),
        lambda s, axis: stats.trim_mean(s, 0.25, axis=axis),
        n_resamples=20_000,
        method="percentile",
        rng=np.random.default_rng(4),
    ).confidence_interval
    # Two independent Monte Carlo estimates of the same quantiles: agree to a few % of the width.
    width = ref.high - ref.low
    assert ours.low == pytest.approx(ref.low, abs=0.05 * width)
    assert ours.high == pytest.approx(ref.high, abs=0.05 * width)


def test_bootstrap_resamples_within_groups() -> None:
    # Constant groups: every stratified resample has the same pooled IQM.
    interval = stratified_bootstrap_iqm([[1.0] * 4, [2.0] * 4], resamples=500)
    assert interval.low == interval.high == interval.estimate == 1.5
    with pytest.raises(ValueError, match="no runs"):
        stratified_bootstrap_iqm([[], []])


def test_performance_profile() -> None:
    assert performance_profile([0.1, 0.5, 0.9, 1.2], [0.0, 0.5, 1.0]) == [1.0, 0.5, 0.25]
    assert performance_profile([], [0.0]) == [0.0]


def test_probability_of_improvement_averages_benchmarks() -> None:
    x = {"a": [1.0, 2.0], "b": [5.0, 5.0], "only_x": [1.0]}
    y = {"a": [1.5, 1.5], "b": [5.0, 4.0]}
    # a: 2 of 4 pairs → 0.5; b: (0.5 + 1 + 0.5 + 1)/4 = 0.75.
    assert probability_of_improvement(x, y) == pytest.approx(0.625)
    assert probability_of_improvement({"a": [1.0]}, {"b": [1.0]}) is None


def test_algoperf_closed_form() -> None:
    times = {
        "fast": {"w1": 10.0, "w2": 20.0},
        "slow": {"w1": 20.0, "w2": None},  # w2 never reached: r = ∞
        "slower": {"w1": 50.0, "w2": 40.0},  # r = 5 > 4 on w1 counts as ∞
    }
    scores = algoperf_scores(times)
    assert scores["fast"] == pytest.approx(1.0)
    assert scores["slow"] == pytest.approx(((4 - 2) / 3 + 0) / 2)
    assert scores["slower"] == pytest.approx((0 + (4 - 2) / 3) / 2)


def test_algoperf_matches_the_profile_integral() -> None:
    rng = np.random.default_rng(5)
    times = {f"t{i}": {f"w{j}": float(rng.uniform(1, 10)) for j in range(6)} for i in range(4)}
    scores = algoperf_scores(times)
    taus = np.linspace(1, 4, 30001)
    for name, per in times.items():
        ratios = np.array([per[w] / min(t[w] for t in times.values()) for w in per])
        rho = (ratios[None, :] <= taus[:, None]).mean(axis=1)
        assert scores[name] == pytest.approx(np.trapezoid(rho, taus) / 3, abs=1e-3)


def test_wilson_and_rates() -> None:
    assert wilson_interval(0, 0) is None
    low, high = wilson_interval(0, 10) or (None, None)
    assert low == 0.0
    assert high == pytest.approx(0.2775328, abs=1e-6)
    rate = reproduction_rate(162, 255)
    assert rate.proportion == pytest.approx(162 / 255)
    assert (rate.low, rate.high) == pytest.approx((0.5746124, 0.6919600), abs=1e-6)
    assert reproduction_rate(0, 0).to_dict() == {
        "successes": 0,
        "trials": 0,
        "proportion": None,
        "low": None,
        "high": None,
    }


def test_mean_interval95() -> None:
    assert mean_interval95([1.0]) is None
    interval = mean_interval95([1.0, 2.0, 3.0])
    assert interval is not None
    low, high = stats.t.interval(0.95, 2, loc=2.0, scale=stats.sem([1.0, 2.0, 3.0]))
    assert (interval.low, interval.high) == pytest.approx((low, high))


def test_rank_bands_share_ranks_when_intervals_overlap() -> None:
    entries = [
        ("a", 0.96, 0.955, 0.965),
        ("b", 0.958, 0.950, 0.962),  # overlaps a
        ("c", 0.940, 0.935, 0.945),  # entirely below a and b
        ("d", None, None, None),
    ]
    ranked = rank_bands(entries, "higher")
    assert [(e.key, e.rank) for e in ranked] == [("a", 1), ("b", 1), ("c", 3), ("d", None)]
    lower = rank_bands([("x", 0.2, 0.1, 0.3), ("y", 0.5, 0.45, 0.55)], "lower")
    assert [(e.key, e.rank) for e in lower] == [("x", 1), ("y", 2)]


def test_row_iqm_equals_trim_mean_row_by_row() -> None:
    from app.scoring.aggregate import _row_iqm

    rng = np.random.default_rng(6)
    for n in (1, 2, 3, 4, 5, 7, 8, 13):
        rows = rng.normal(size=(50, n))
        expected = [stats.trim_mean(r, 0.25) for r in rows]
        assert _row_iqm(rows.copy()) == pytest.approx(expected, rel=1e-12)
