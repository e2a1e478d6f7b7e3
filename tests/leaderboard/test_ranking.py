"""Ranks and bands at board scale agree with the statistics' own rank_bands, in both directions;
the technique aggregate is STATISTICS.md §6 computed by the scoring functions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.leaderboard.ranking import (
    PROFILE_TAUS,
    NormalizedGroup,
    RankIndex,
    normalized_group,
    rank_space,
    ranked_metric,
    technique_aggregate,
)
from app.scoring.aggregate import performance_profile, rank_bands, stratified_bootstrap_iqm

Entry = tuple[str, float, float, float]


def board_ranks(entries: list[Entry], direction: str) -> dict[str, tuple[int, int]]:
    """(rank, band) of every entry through rank space and the sorted index."""
    spaces = {key: rank_space(direction, m, lo, hi) for key, m, lo, hi in entries}  # type: ignore[arg-type]
    index = RankIndex(
        [s.key for s in spaces.values() if s.key is not None],
        [s.high for s in spaces.values() if s.high is not None],
    )
    return {key: (index.rank(s.key), index.band(s.low)) for key, s in spaces.items()}  # type: ignore[misc]


def test_lower_is_better_puts_the_smallest_mean_first() -> None:
    entries = [("a", -3.0, -3.2, -2.8), ("b", -5.0, -5.1, -4.9), ("c", -1.0, -1.5, -0.5)]
    lower = board_ranks(entries, "lower")
    assert lower == {"b": (1, 1), "a": (2, 2), "c": (3, 3)}
    higher = board_ranks(entries, "higher")
    assert higher == {"c": (1, 1), "a": (2, 2), "b": (3, 3)}


def test_overlapping_intervals_share_a_band_and_ties_share_a_rank() -> None:
    entries = [
        ("best", 3.0, 2.9, 3.1),
        ("wide", 2.1, 1.85, 2.35),  # overlaps "narrow"
        ("narrow", 2.0, 1.88, 2.12),
        ("twin", 2.0, 1.88, 2.12),
        ("last", 1.0, 0.9, 1.1),
    ]
    ranks = board_ranks(entries, "higher")
    assert ranks["best"] == (1, 1)
    assert ranks["wide"] == (2, 2)
    assert ranks["narrow"] == ranks["twin"] == (3, 2)
    assert ranks["last"] == (5, 5)


interval = st.tuples(st.floats(-50, 50, allow_nan=False), st.floats(0, 5, allow_nan=False)).map(
    lambda t: (t[0], t[0] - t[1], t[0] + t[1])
)


@settings(max_examples=200, deadline=None)
@given(st.lists(interval, min_size=1, max_size=40), st.sampled_from(["higher", "lower"]))
def test_bands_equal_rank_bands_from_the_statistics(
    intervals: list[tuple[float, float, float]], direction: str
) -> None:
    entries = [(str(i), m, lo, hi) for i, (m, lo, hi) in enumerate(intervals)]
    expected = {e.key: e.rank for e in rank_bands(entries, direction)}  # type: ignore[arg-type]
    got = board_ranks(entries, direction)
    assert {k: band for k, (_rank, band) in got.items()} == expected


def test_entries_without_a_complete_interval_are_unranked() -> None:
    assert rank_space("higher", 2.0, None, 2.5).key is None
    assert rank_space("lower", math.nan, 1.0, 2.0).key is None
    index = RankIndex([], [])
    assert index.rank(None) is None
    assert index.band(None) is None
    assert index.rank(0.5) == 1
    assert len(index) == 0


def test_the_ranked_metric_is_the_benchmarks_first_primary_the_claim_includes() -> None:
    scored = {"b": {"primary": True}, "a": {"primary": True}, "loss": {"primary": False}}
    assert ranked_metric(kind="optimizer", benchmark_primaries=["a", "b"], scored=scored) == "a"
    assert ranked_metric(kind="optimizer", benchmark_primaries=["c"], scored=scored) == "b"
    assert ranked_metric(kind="command", benchmark_primaries=[], scored=scored) == "b"
    assert ranked_metric(kind="command", benchmark_primaries=[], scored={}) is None


def test_technique_aggregate_is_the_stratified_bootstrap_iqm_and_the_profile() -> None:
    low = normalized_group(
        "rosenbrock", [-2.0, -2.5, -3.0], reference_low=-1.725, reference_high=-3.594
    )
    high = normalized_group(
        "logreg", [0.96, 0.97, 0.965], reference_low=0.949, reference_high=0.9713
    )
    assert low is not None
    assert high is not None
    # Lower is better on rosenbrock: a smaller value normalizes to a larger score.
    assert low.values[2] > low.values[0] > 0
    got = technique_aggregate([low, high])
    assert got is not None
    interval = stratified_bootstrap_iqm([high.values, low.values])  # benchmark order
    assert got.iqm == pytest.approx(interval.estimate, abs=1e-12)
    assert (got.ci95_low, got.ci95_high) == (interval.low, interval.high)
    assert got.profile == performance_profile(high.values + low.values, PROFILE_TAUS)
    assert technique_aggregate([high, low]) == got
    assert (got.runs, got.benchmarks) == (6, 2)
    assert got.ci95_low <= got.iqm <= got.ci95_high


def test_groups_without_references_or_values_are_left_out() -> None:
    assert normalized_group("x", [1.0], reference_low=None, reference_high=1.0) is None
    assert normalized_group("x", [], reference_low=0.0, reference_high=1.0) is None
    assert normalized_group("x", [1.0], reference_low=1.0, reference_high=1.0) is None
    assert technique_aggregate([]) is None
    assert technique_aggregate([NormalizedGroup("x", [])]) is None


def test_the_rank_index_answers_a_board_of_100000_in_microseconds() -> None:
    rng = np.random.default_rng(1)
    keys = rng.normal(size=100_000)
    index = RankIndex(keys.tolist(), (keys + 0.1).tolist())
    assert index.rank(float(keys.min())) == 1
    assert index.rank(float(keys.max()) + 1) == 100_001
    assert index.band(-100.0) == 1
