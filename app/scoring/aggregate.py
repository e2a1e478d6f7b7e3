"""Rankings and aggregates across claims and benchmarks: STATISTICS.md §6."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
from scipy import stats

from app.scoring._util import json_fields, mean, sample_sd, t_ppf_975
from app.scoring.comparison import Direction, direction_sign, probability_better

K = TypeVar("K")

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 20210429  # fixed, so that the same runs always give the same interval
ALGOPERF_R_MAX = 4.0


@dataclass(frozen=True)
class Interval:
    """A point estimate with its interval at `level`."""

    estimate: float
    low: float
    high: float
    level: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return json_fields(self)


def iqm(values: Sequence[float]) -> float:
    """Interquartile mean: scipy.stats.trim_mean(x, 0.25)."""
    return float(stats.trim_mean(np.asarray(values, dtype=float), 0.25))


def _row_iqm(samples: np.ndarray) -> np.ndarray:
    """trim_mean(row, 0.25) of each row by one in-place sort (scipy's axis=1 path is ~5× slower)."""
    n = samples.shape[1]
    cut = int(0.25 * n)  # the same cut as scipy.stats.trim_mean
    samples.sort(axis=1)
    result: np.ndarray = samples[:, cut : n - cut].mean(axis=1)
    return result


def normalize(
    values: Sequence[float], *, reference_low: float, reference_high: float
) -> list[float]:
    """Map a metric to 0 at reference_low (plain SGD) and 1 at reference_high; not clipped."""
    span = reference_high - reference_low
    if span == 0 or not math.isfinite(span):
        raise ValueError("reference_low and reference_high must be finite and differ")
    return [(v - reference_low) / span for v in values]


def stratified_bootstrap_iqm(
    groups: Sequence[Sequence[float]],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    level: float = 0.95,
    seed: int = BOOTSTRAP_SEED,
) -> Interval:
    """IQM of the pooled runs with a percentile interval, resampling runs within each group."""
    arrays = [np.asarray(g, dtype=float) for g in groups if len(g) > 0]
    if not arrays:
        raise ValueError("no runs to aggregate")
    rng = np.random.default_rng(seed)
    samples = np.concatenate(
        [a[rng.integers(0, a.size, size=(resamples, a.size))] for a in arrays], axis=1
    )
    replicates = _row_iqm(samples)
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(replicates, [tail, 100.0 - tail])
    return Interval(iqm(np.concatenate(arrays).tolist()), float(low), float(high), level)


def performance_profile(scores: Sequence[float], taus: Sequence[float]) -> list[float]:
    """F(τ): the fraction of runs whose normalized score is greater than τ, for each τ."""
    x = np.asarray(scores, dtype=float)
    if x.size == 0:
        return [0.0 for _ in taus]
    t = np.asarray(taus, dtype=float)
    return [float(v) for v in (x[None, :] > t[:, None]).mean(axis=1)]


def probability_of_improvement(
    x: Mapping[str, Sequence[float]], y: Mapping[str, Sequence[float]]
) -> float | None:
    """P(X > Y): per shared benchmark U/(nx·ny) with ties ½, averaged (higher is better)."""
    shared = [b for b in x if b in y and len(x[b]) > 0 and len(y[b]) > 0]
    if not shared:
        return None
    return math.fsum(probability_better(x[b], y[b]) for b in shared) / len(shared)


def algoperf_scores(
    times: Mapping[str, Mapping[str, float | None]], *, r_max: float = ALGOPERF_R_MAX
) -> dict[str, float]:
    """AlgoPerf score per technique: mean over workloads of max(0, r_max − r)/(r_max − 1)."""
    workloads = sorted({w for per in times.values() for w in per})
    if not workloads:
        return {name: 0.0 for name in times}

    def finite(value: float | None) -> float | None:
        return value if value is not None and math.isfinite(value) and value > 0 else None

    best: dict[str, float | None] = {}
    for w in workloads:
        reached = [t for per in times.values() if (t := finite(per.get(w))) is not None]
        best[w] = min(reached) if reached else None
    scores: dict[str, float] = {}
    for name, per in times.items():
        total = 0.0
        for w in workloads:
            t, b = finite(per.get(w)), best[w]
            if t is None or b is None:
                continue  # target not reached: r = ∞
            total += max(0.0, r_max - t / b) / (r_max - 1.0)
        scores[name] = total / len(workloads)
    return scores


def wilson_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float, float] | None:
    """Wilson score interval of a proportion (scipy.stats.binomtest); None without trials."""
    if trials <= 0:
        return None
    ci = stats.binomtest(successes, trials).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


@dataclass(frozen=True)
class Rate:
    """A reproduction rate: k of n, the proportion and its Wilson 95% interval."""

    successes: int
    trials: int
    proportion: float | None
    low: float | None
    high: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return json_fields(self)


def reproduction_rate(successes: int, trials: int) -> Rate:
    """The share of reproduced claims with its Wilson 95% interval."""
    interval = wilson_interval(successes, trials)
    if interval is None:
        return Rate(successes, trials, None, None, None)
    return Rate(successes, trials, successes / trials, interval[0], interval[1])


def mean_interval95(values: Sequence[float]) -> Interval | None:
    """The mean of reproduced values with its 95% t-interval; None for fewer than 2 values."""
    if len(values) < 2:
        return None
    m = mean(values)
    sd = sample_sd(values, m)
    half = t_ppf_975(len(values) - 1) * sd / math.sqrt(len(values))
    return Interval(m, m - half, m + half, 0.95)


@dataclass(frozen=True)
class RankedEntry(Generic[K]):
    """A leaderboard entry with its rank band (1 + entries whose interval is entirely better)."""

    key: K
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    rank: int | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (the key as given)."""
        return json_fields(self)


def rank_bands(
    entries: Sequence[tuple[K, float | None, float | None, float | None]], direction: Direction
) -> list[RankedEntry[K]]:
    """Rank (key, mean, ci_low, ci_high) entries so that overlapping 95% intervals share a rank."""
    s = direction_sign(direction)
    ranked: list[tuple[K, float, float, float]] = []
    unranked: list[RankedEntry[K]] = []
    for key, m, lo, hi in entries:
        if m is None or lo is None or hi is None or not all(map(math.isfinite, (m, lo, hi))):
            unranked.append(RankedEntry(key, m, lo, hi, None))
        else:
            ranked.append((key, m, lo, hi))
    # In "better" space, an entry is entirely better than another when its worst end beats the
    # other's best end.
    worst = [min(s * lo, s * hi) for _, _, lo, hi in ranked]
    best = [max(s * lo, s * hi) for _, _, lo, hi in ranked]
    out = []
    for i, (key, m, lo, hi) in enumerate(ranked):
        rank = 1 + sum(1 for j in range(len(ranked)) if j != i and worst[j] > best[i])
        out.append(RankedEntry(key, m, lo, hi, rank))
    out.sort(key=lambda e: (e.rank, -s * (e.mean or 0.0)))
    return out + unranked
