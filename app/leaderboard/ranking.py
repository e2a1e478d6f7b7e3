"""Ranks and rank bands at board scale, and the cross-benchmark aggregate of one technique.

Pure functions over numbers (no database). Everything is in *rank space*, where lower is better
whatever the metric's direction: a reproduced mean m with 95% interval [lo, hi] and direction
sign s (+1 higher-is-better, −1 lower-is-better) becomes key −s·m and interval
[min(−s·lo, −s·hi), max(−s·lo, −s·hi)].

The rank band is the rule of ``app.scoring.aggregate.rank_bands`` — 1 + the number of entries
whose whole interval is better than this entry's whole interval — computed with two sorted
arrays and binary search, O(log n) per row instead of O(n) (``rank_bands`` compares all pairs,
which is 10¹⁰ comparisons for a board of 100,000). tests/leaderboard/test_ranking.py checks the
two agree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.scoring.aggregate import normalize, performance_profile, stratified_bootstrap_iqm
from app.scoring.comparison import Direction, direction_sign

# τ for the performance profile F(τ): 0 is plain SGD (reference_low), 1 the best reference.
PROFILE_TAUS: tuple[float, ...] = tuple(round(-0.5 + 0.1 * i, 1) for i in range(21))


@dataclass(frozen=True)
class RankSpace:
    """An entry's position in rank space (None when it has no complete, finite interval)."""

    key: float | None
    low: float | None
    high: float | None


def rank_space(
    direction: Direction, mean: float | None, low: float | None, high: float | None
) -> RankSpace:
    """Map a reproduced mean and its 95% interval to rank space (lower is better)."""
    values = (mean, low, high)
    if any(v is None or not math.isfinite(v) for v in values):
        return RankSpace(None, None, None)
    assert mean is not None and low is not None and high is not None
    s = direction_sign(direction)
    a, b = -s * low, -s * high
    return RankSpace(-s * mean + 0.0, min(a, b) + 0.0, max(a, b) + 0.0)


class RankIndex:
    """The sorted keys and interval ends of one board, answering rank and band per row."""

    def __init__(self, keys: Sequence[float], band_highs: Sequence[float]) -> None:
        self._keys = np.sort(np.asarray(keys, dtype=float))
        self._highs = np.sort(np.asarray(band_highs, dtype=float))

    def __len__(self) -> int:
        return int(self._keys.size)

    def rank(self, key: float | None) -> int | None:
        """1 + the number of entries with a strictly better key (ties share a rank)."""
        if key is None:
            return None
        return 1 + int(np.searchsorted(self._keys, key, side="left"))

    def band(self, low: float | None) -> int | None:
        """1 + the number of entries whose whole interval lies better than ``low``."""
        if low is None:
            return None
        return 1 + int(np.searchsorted(self._highs, low, side="left"))


def ranked_metric(
    *, kind: str, benchmark_primaries: Sequence[str], scored: Mapping[str, Mapping[str, Any]]
) -> str | None:
    """The metric a scored version is ranked by on its board.

    Optimizer benchmarks rank by their first primary metric the claim includes (every claim
    includes at least one); command benchmarks define no metrics, so the claim's first primary
    metric is used and each metric name forms its own board.
    """
    if kind == "optimizer":
        for name in benchmark_primaries:
            if name in scored:
                return name
    return next((name for name, m in scored.items() if m.get("primary")), None)


@dataclass(frozen=True)
class TechniqueAggregate:
    """IQM of a technique's normalized runs with its stratified-bootstrap 95% interval."""

    iqm: float
    ci95_low: float
    ci95_high: float
    runs: int
    benchmarks: int
    profile: list[float]


@dataclass(frozen=True)
class NormalizedGroup:
    """One benchmark's runs of a technique, normalized between the benchmark's references."""

    benchmark: str
    values: list[float]


def normalized_group(
    benchmark: str,
    values: Sequence[float],
    *,
    reference_low: float | None,
    reference_high: float | None,
) -> NormalizedGroup | None:
    """Normalize runs to 0 at reference_low (plain SGD) and 1 at reference_high; None if unknown."""
    finite = [float(v) for v in values if math.isfinite(v)]
    if reference_low is None or reference_high is None or not finite:
        return None
    try:
        scaled = normalize(finite, reference_low=reference_low, reference_high=reference_high)
    except ValueError:
        return None
    return NormalizedGroup(benchmark, scaled)


def technique_aggregate(groups: Sequence[NormalizedGroup]) -> TechniqueAggregate | None:
    """STATISTICS.md §6: IQM of all runs, 95% stratified bootstrap (runs resampled within each
    benchmark, fixed seed, percentile), and F(τ) on ``PROFILE_TAUS``. Groups are taken in the
    order of their benchmark ids, so the interval does not depend on the order of scoring."""
    groups = sorted((g for g in groups if g.values), key=lambda g: g.benchmark)
    if not groups:
        return None
    interval = stratified_bootstrap_iqm([g.values for g in groups])
    pooled = [v for g in groups for v in g.values]
    return TechniqueAggregate(
        iqm=interval.estimate,
        ci95_low=interval.low,
        ci95_high=interval.high,
        runs=len(pooled),
        benchmarks=len(groups),
        profile=performance_profile(pooled, PROFILE_TAUS),
    )
