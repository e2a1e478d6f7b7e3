"""Computational reproducibility and cherry-picking: STATISTICS.md §3."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from app.scoring._util import (
    all_finite,
    finite_or_none,
    json_fields,
    mean,
    record,
    sample_sd,
    t_ppf,
    t_sf,
)
from app.scoring.comparison import Direction, direction_sign, welch_df
from app.scoring.multiple import holm

EXACT_RELATIVE = 1e-9


def is_exact(claimed: float, reproduced: float) -> bool:
    """Whether a re-run value equals the claimed one within 1e-9·max(1, |claimed|)."""
    return abs(reproduced - claimed) <= EXACT_RELATIVE * max(1.0, abs(claimed))


@record
class SeedCheck:
    """One claimed seed and metric: the claimed and re-run values and whether they agree."""

    seed: int
    metric: str
    outcome: str
    claimed: float
    reproduced: float | None
    difference: float | None
    exact: bool | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return json_fields(self)


@record
class Exactness:
    """Whether the claimed seeds re-run to the claimed per-seed values."""

    exactly_reproducible: bool | None
    max_difference: float | None
    checks: tuple[SeedCheck, ...]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "exactly_reproducible": self.exactly_reproducible,
            "max_difference": finite_or_none(self.max_difference),
            "checks": [c.to_dict() for c in self.checks],
            "reason": self.reason,
        }


def check_exactness(
    *,
    claimed_seeds: Sequence[int],
    claimed_values: Mapping[str, Sequence[float]],
    reruns: Mapping[int, tuple[str, Mapping[str, float]]],
) -> Exactness:
    """Compare re-runs of the claimed seeds (seed → (outcome, metrics)) with per-seed claims."""
    if not claimed_values:
        return Exactness(None, None, (), "The claim gives no per-seed values to compare with.")
    checks: list[SeedCheck] = []
    for metric, values in claimed_values.items():
        for seed, claimed in zip(claimed_seeds, values, strict=False):
            outcome, metrics = reruns.get(seed, ("missing", {}))
            raw = metrics.get(metric) if outcome == "succeeded" else None
            value = None if raw is None else float(raw)  # plain floats, never numpy's
            if value is None:
                checks.append(SeedCheck(seed, metric, outcome, claimed, None, None, None))
                continue
            diff = abs(value - claimed)
            exact = is_exact(claimed, value) if math.isfinite(diff) else False
            checks.append(SeedCheck(seed, metric, outcome, float(claimed), value, diff, exact))
    diffs = [c.difference for c in checks if c.difference is not None]
    max_diff = max(diffs) if diffs else None
    differing = [c for c in checks if c.exact is False]
    unknown = [c for c in checks if c.exact is None]
    if differing:
        worst = max(differing, key=lambda c: c.difference if c.difference is not None else math.inf)
        return Exactness(
            False,
            max_diff,
            tuple(checks),
            f"{len(differing)} of {len(checks)} re-run values differ from the claimed ones; the "
            f"largest difference is {worst.difference:.3g} ({worst.metric}, seed {worst.seed}).",
        )
    if unknown:
        seeds = sorted({c.seed for c in unknown})
        return Exactness(
            None,
            max_diff,
            tuple(checks),
            f"Claimed seed(s) {', '.join(map(str, seeds))} gave no value (failed or missing run), "
            "so exactness cannot be established.",
        )
    return Exactness(
        True,
        max_diff,
        tuple(checks),
        f"All {len(checks)} re-run values equal the claimed per-seed values.",
    )


@record
class SeedGap:
    """Claimed-seed mean minus fresh-seed mean in the better direction, with Welch's test."""

    metric: str
    n_claimed: int
    n_fresh: int
    gap: float | None
    se: float | None
    df: float | None
    ci_low: float | None
    ci_high: float | None
    p: float | None
    flag: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return json_fields(self)


def seed_selection_gap(
    *,
    metric: str,
    claimed_seed_values: Sequence[float],
    fresh_values: Sequence[float],
    direction: Direction,
    alpha: float = 0.05,
) -> SeedGap:
    """Welch test of claimed-seed versus fresh-seed results; flag when claimed seeds do better."""
    s = direction_sign(direction)
    a, b = list(claimed_seed_values), list(fresh_values)
    na, nb = len(a), len(b)
    if na == 0 or nb == 0 or not all_finite(a + b):
        return SeedGap(metric, na, nb, None, None, None, None, None, None, False)
    mean_a, mean_b = mean(a), mean(b)
    gap = s * (mean_a - mean_b)
    if na < 2 or nb < 2:
        return SeedGap(metric, na, nb, gap, None, None, None, None, None, False)
    va, vb = sample_sd(a, mean_a) ** 2, sample_sd(b, mean_b) ** 2
    se = math.sqrt(va / na + vb / nb)
    if se == 0.0:
        p = 0.0 if gap > 0 else 1.0
        return SeedGap(metric, na, nb, gap, 0.0, None, gap, gap, p, p < alpha)
    df = welch_df(va, na, vb, nb)
    half = t_ppf(1.0 - alpha, df) * se
    p = t_sf(gap / se, df)
    return SeedGap(metric, na, nb, gap, se, df, gap - half, gap + half, p, p < alpha)


@record
class SeedSelection:
    """The seed-selection report: the most telling primary metric, the flag and every metric."""

    metric: str | None
    gap: float | None
    ci_low: float | None
    ci_high: float | None
    p: float | None
    p_holm: float | None
    flag: bool
    per_metric: dict[str, SeedGap]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "metric": self.metric,
            "gap": finite_or_none(self.gap),
            "ci_low": finite_or_none(self.ci_low),
            "ci_high": finite_or_none(self.ci_high),
            "p": finite_or_none(self.p),
            "p_holm": finite_or_none(self.p_holm),
            "flag": self.flag,
            "per_metric": {k: v.to_dict() for k, v in self.per_metric.items()},
        }


def summarize_seed_selection(
    gaps: Mapping[str, SeedGap], primary: Mapping[str, bool], alpha: float = 0.05
) -> SeedSelection:
    """Flag when a primary metric's Holm-adjusted one-sided p is below α (Holm over primaries)."""
    names = [n for n in gaps if primary.get(n, False)]
    tested = [n for n in names if gaps[n].p is not None]
    if not names:
        return SeedSelection(None, None, None, None, None, None, False, dict(gaps))
    if not tested:
        first = gaps[names[0]]
        return SeedSelection(first.metric, first.gap, None, None, None, None, False, dict(gaps))
    raw = [1.0 if (p := gaps[n].p) is None else p for n in names]
    adjusted = holm(raw)
    best = min(range(len(names)), key=lambda i: (adjusted[i], raw[i], i))
    chosen = gaps[names[best]]
    return SeedSelection(
        metric=chosen.metric,
        gap=chosen.gap,
        ci_low=chosen.ci_low,
        ci_high=chosen.ci_high,
        p=chosen.p,
        p_holm=adjusted[best],
        flag=adjusted[best] < alpha,
        per_metric=dict(gaps),
    )


@record
class Determinism:
    """The determinism probe: one seed run twice, compared over every metric."""

    seed: int | None
    deterministic: bool | None
    max_difference: float | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return json_fields(self)


def check_determinism(
    *,
    seed: int | None,
    first: Mapping[str, float] | None,
    second: Mapping[str, float] | None,
) -> Determinism:
    """Compare the two runs of the probe seed; None for a run that failed or is missing."""
    if seed is None:
        return Determinism(None, None, None, "No determinism probe was run.")
    if first is None or second is None:
        return Determinism(
            seed, None, None, f"A run of probe seed {seed} failed, so determinism is unknown."
        )
    names = sorted(set(first) | set(second))
    if not names:
        return Determinism(seed, None, None, f"The runs of probe seed {seed} reported no metric.")
    missing = [n for n in names if n not in first or n not in second]
    diffs: list[float] = []
    mismatch = bool(missing)
    for name in names:
        if name in missing:
            continue
        x, y = float(first[name]), float(second[name])
        if x == y or (math.isnan(x) and math.isnan(y)):
            diffs.append(0.0)
        elif math.isfinite(x - y):
            diffs.append(abs(x - y))
        else:
            mismatch = True
    max_diff = max(diffs) if diffs else None
    deterministic = not mismatch and max_diff == 0.0
    if deterministic:
        reason = f"Seed {seed} run twice gave bit-identical values for all {len(names)} metric(s)."
    elif missing:
        reason = f"The two runs of seed {seed} reported different metrics: {', '.join(missing)}."
    elif max_diff is None or mismatch:
        reason = f"The two runs of seed {seed} disagree (a non-finite value on one side)."
    else:
        reason = f"The two runs of seed {seed} differ by up to {max_diff:.3g}."
    return Determinism(seed, deterministic, max_diff, reason)
