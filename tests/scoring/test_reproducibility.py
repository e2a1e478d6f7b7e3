"""Exactness, the seed-selection gap and the determinism probe."""

import numpy as np
import pytest
from scipy import stats

from app.scoring.reproducibility import (
    check_determinism,
    check_exactness,
    is_exact,
    seed_selection_gap,
    summarize_seed_selection,
)


def test_is_exact_relative_tolerance() -> None:
    assert is_exact(0.5, 0.5 + 1e-10)
    assert not is_exact(0.5, 0.5 + 2e-9)
    assert is_exact(1e6, 1e6 + 1e-4)
    assert not is_exact(1e6, 1e6 + 1e-2)


def test_exactness_lists_every_seed() -> None:
    result = check_exactness(
        claimed_seeds=[1, 2],
        claimed_values={"acc": [0.9, 0.8]},
        reruns={1: ("succeeded", {"acc": 0.9}), 2: ("succeeded", {"acc": 0.81})},
    )
    assert result.exactly_reproducible is False
    assert [c.exact for c in result.checks] == [True, False]
    assert result.max_difference == pytest.approx(0.01)
    assert "seed 2" in result.reason
    missing = check_exactness(claimed_seeds=[1], claimed_values={"acc": [0.9]}, reruns={})
    assert missing.exactly_reproducible is None
    assert missing.checks[0].outcome == "missing"


def test_seed_gap_matches_scipy_one_sided_welch() -> None:
    rng = np.random.default_rng(9)
    for _ in range(50):
        a = rng.normal(0.1, 1, size=rng.integers(2, 9))
        b = rng.normal(0, 2, size=rng.integers(2, 9))
        gap = seed_selection_gap(
            metric="m", claimed_seed_values=a.tolist(), fresh_values=b.tolist(), direction="higher"
        )
        ref = stats.ttest_ind(a, b, equal_var=False, alternative="greater")
        assert gap.p == pytest.approx(ref.pvalue, rel=1e-9)
        assert gap.flag == (ref.pvalue < 0.05)
        assert gap.ci_low is not None
        assert (gap.ci_low > 0) == gap.flag
        down = seed_selection_gap(
            metric="m",
            claimed_seed_values=(-a).tolist(),
            fresh_values=(-b).tolist(),
            direction="lower",
        )
        assert down.p == gap.p


def test_seed_gap_edge_cases() -> None:
    one = seed_selection_gap(
        metric="m", claimed_seed_values=[1.0], fresh_values=[0.5, 0.6], direction="higher"
    )
    assert one.gap == pytest.approx(0.45)
    assert one.p is None
    assert not one.flag
    empty = seed_selection_gap(
        metric="m", claimed_seed_values=[], fresh_values=[1.0, 2.0], direction="higher"
    )
    assert empty.gap is None
    flat = seed_selection_gap(
        metric="m", claimed_seed_values=[2.0, 2.0], fresh_values=[1.0, 1.0], direction="higher"
    )
    assert flat.p == 0.0
    assert flat.flag


def test_seed_selection_holm_over_primaries() -> None:
    strong = seed_selection_gap(
        metric="a",
        claimed_seed_values=[3.0, 3.1, 2.9],
        fresh_values=[1.0, 1.1, 0.9],
        direction="higher",
    )
    weak = seed_selection_gap(
        metric="b",
        claimed_seed_values=[1.0, 1.4, 1.2],
        fresh_values=[1.0, 0.9, 1.1],
        direction="higher",
    )
    summary = summarize_seed_selection({"a": strong, "b": weak}, {"a": True, "b": True})
    assert summary.metric == "a"
    assert summary.p_holm == pytest.approx(min(1.0, 2 * strong.p))
    assert summary.flag
    only_secondary = summarize_seed_selection({"a": strong}, {"a": False})
    assert only_secondary.metric is None
    assert not only_secondary.flag


def test_determinism_cases() -> None:
    same = check_determinism(seed=3, first={"a": 1.0, "b": 2.0}, second={"a": 1.0, "b": 2.0})
    assert same.deterministic is True
    assert same.max_difference == 0.0
    differ = check_determinism(seed=3, first={"a": 1.0, "b": 2.0}, second={"a": 1.0, "b": 2.5})
    assert differ.deterministic is False
    assert differ.max_difference == 0.5
    nan = check_determinism(seed=3, first={"a": float("nan")}, second={"a": float("nan")})
    assert nan.deterministic is True
    one_nan = check_determinism(seed=3, first={"a": float("nan")}, second={"a": 1.0})
    assert one_nan.deterministic is False
    missing = check_determinism(seed=3, first={"a": 1.0}, second={"a": 1.0, "b": 1.0})
    assert missing.deterministic is False
    assert "b" in missing.reason
    failed = check_determinism(seed=3, first=None, second={"a": 1.0})
    assert failed.deterministic is None
    assert check_determinism(seed=None, first=None, second=None).to_dict()["deterministic"] is None
