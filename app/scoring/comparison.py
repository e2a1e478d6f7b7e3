"""One claim, one metric: the equivalence comparison of STATISTICS.md §1.

Everything is computed in Δ space, Δ = s·(x̄ − μc) with s = +1 when higher is better and −1 when
lower is better, so a positive difference always means "the reproduction did better than the
claim". With higher-is-better metrics Δ space is plain metric units.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Literal

import numpy as np

from app.scoring._util import (
    all_finite,
    json_fields,
    mean,
    record,
    sample_sd,
    t_cdfs,
    t_ppf,
    t_ppf_975,
)

Direction = Literal["higher", "lower"]
SpreadKind = Literal["sd", "sem", "ci95_half", "two_sd"]
Verdict = Literal["reproduced", "not_reproduced", "exceeded", "inconclusive", "insufficient_data"]
Lean = Literal["worse", "better", "none"]
Mode = Literal["two_sample", "one_sample"]

VERDICTS: tuple[Verdict, ...] = (
    "insufficient_data",
    "reproduced",
    "not_reproduced",
    "exceeded",
    "inconclusive",
)


def direction_sign(direction: Direction) -> int:
    """+1 when higher is better, −1 when lower is better."""
    if direction == "higher":
        return 1
    if direction == "lower":
        return -1
    raise ValueError(f"direction must be 'higher' or 'lower', not {direction!r}")


def spread_to_sd(spread: float, kind: SpreadKind, n: int | None) -> float:
    """Convert a claim's spread to a standard deviation (ddof=1) as STATISTICS.md §1 says."""
    if kind == "sd":
        return spread
    if kind == "two_sd":
        return spread / 2.0
    if n is None or n < 2:
        raise ValueError(f"spread_kind {kind!r} needs n ≥ 2 to be converted to an sd")
    if kind == "sem":
        return spread * math.sqrt(n)
    if kind == "ci95_half":
        return spread * math.sqrt(n) / t_ppf_975(n - 1)
    raise ValueError(f"unknown spread_kind {kind!r}")


def claimed_mean_agrees(mean_: float, values: Sequence[float]) -> bool:
    """Whether `mean_` equals the mean of `values` to the precision it is written with."""
    if not values or not all_finite([mean_, *values]):
        return False
    exponent = Decimal(repr(float(mean_))).as_tuple().exponent
    half_unit = 0.5 * 10.0 ** int(exponent) if isinstance(exponent, int) else 0.0
    actual = mean(values)
    return abs(mean_ - actual) <= half_unit + 1e-9 * max(1.0, abs(actual))


@record
class ClaimSummary:
    """The claim side of a comparison: its mean and, when known, its sd and number of seeds."""

    mean: float
    sd: float | None = None
    n: int | None = None
    values: tuple[float, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        out = json_fields(self)
        out["values"] = None if self.values is None else list(self.values)
        return out

    @property
    def two_sample(self) -> bool:
        """Whether the claim carries an sd and n ≥ 2 (Welch mode)."""
        return self.sd is not None and self.n is not None and self.n >= 2

    @property
    def finite(self) -> bool:
        """Whether every number of the claim is finite."""
        numbers = [self.mean, *(self.values or ()), *(() if self.sd is None else (self.sd,))]
        return all_finite(numbers)


def summarize_claim(
    mean_: float,
    *,
    values: Sequence[float] | None = None,
    spread: float | None = None,
    spread_kind: SpreadKind | None = None,
    n: int | None = None,
) -> ClaimSummary:
    """Build a ClaimSummary from per-seed values, a spread with its kind and n, or a bare mean."""
    if values is not None and len(values) > 0:
        vals = tuple(float(v) for v in values)
        if len(vals) >= 2:
            return ClaimSummary(mean=float(mean_), sd=sample_sd(vals), n=len(vals), values=vals)
        return ClaimSummary(mean=float(mean_), sd=None, n=1, values=vals)
    if spread is not None:
        if spread_kind is None:
            raise ValueError("a spread needs its spread_kind")
        if spread_kind in ("sem", "ci95_half") and (n is None or n < 2):
            # Without n a standard error cannot be turned into an sd: treat as a point claim.
            return ClaimSummary(mean=float(mean_), sd=None, n=n)
        return ClaimSummary(mean=float(mean_), sd=spread_to_sd(float(spread), spread_kind, n), n=n)
    return ClaimSummary(mean=float(mean_), sd=None, n=n)


@record
class Comparison:
    """Every number of one metric's comparison; None where a number does not apply."""

    verdict: Verdict
    lean: Lean | None
    mode: Mode
    direction: Direction
    tolerance: float
    alpha: float
    n_reproduced: int
    n_non_finite: int
    delta: float | None
    se: float | None
    df: float | None
    ci_low: float | None
    ci_high: float | None
    t_lower: float | None
    t_upper: float | None
    p_tost: float | None
    p_worse: float | None
    p_better: float | None
    t_difference: float | None
    p_difference: float | None
    cohens_d: float | None
    hedges_g: float | None
    prob_improvement: float | None
    point_rule: bool | None
    se_zero: bool
    reproduced_mean: float | None
    reproduced_sd: float | None
    ci95_low: float | None
    ci95_high: float | None
    claimed_mean: float
    claimed_sd: float | None
    claimed_n: int | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: finite floats or None."""
        return json_fields(self)


def margin_gap(delta: float, tolerance: float, *, scale: float) -> float:
    """|Δ| − δ, snapped to 0 within 1e-12 of the numbers' scale.

    Decimal inputs are judged as written: 0.9 against a claim of 1.0 with δ = 0.1 is exactly at
    the margin, although the float Δ is −0.09999999999999998.
    """
    gap = abs(delta) - tolerance
    return 0.0 if abs(gap) <= 1e-12 * max(scale, tolerance) else gap


def welch_df(var_r: float, m: int, var_c: float, n: int) -> float:
    """Welch–Satterthwaite degrees of freedom from two variances and sample sizes."""
    a, b = var_r / m, var_c / n
    # The share form of (a + b)² / (a²/(m−1) + b²/(n−1)): no underflow for tiny variances.
    w = a / (a + b)
    return 1.0 / (w**2 / (m - 1) + (1.0 - w) ** 2 / (n - 1))


def hedges_g(
    d_mean: float, sd_r: float, m: int, sd_c: float, n: int
) -> tuple[float | None, float | None]:
    """Cohen's d with the pooled sd and Hedges' g = J·d, J = 1 − 3/(4(m+n) − 9)."""
    pooled = math.sqrt(((m - 1) * sd_r**2 + (n - 1) * sd_c**2) / (m + n - 2))
    if pooled == 0.0:
        return None, None
    d = d_mean / pooled
    return d, (1.0 - 3.0 / (4.0 * (m + n) - 9.0)) * d


def probability_better(x: Sequence[float], y: Sequence[float]) -> float:
    """U/(m·n): the share of pairs where x beats y (larger is better), ties counted ½."""
    if len(x) * len(y) <= 400:  # a handful of seeds: plain Python beats numpy's call overhead
        if all_finite(x) and all_finite(y):  # sortable: count the pairs by bisection
            ys = sorted(y)
            below = sum(bisect_left(ys, a) for a in x)  # pairs with a > b
            up_to = sum(bisect_right(ys, a) for a in x)  # pairs with a ≥ b
            return 0.5 * (below + up_to) / (len(x) * len(y))
        wins = sum((a > b) + 0.5 * (a == b) for a in x for b in y)
        return wins / (len(x) * len(y))
    diff = np.subtract.outer(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    wins_np = np.count_nonzero(diff > 0) + 0.5 * np.count_nonzero(diff == 0)
    return float(wins_np / diff.size)


def _t_interval95(values: Sequence[float], mean_r: float, sd_r: float) -> tuple[float, float]:
    m = len(values)
    half = t_ppf_975(m - 1) * sd_r / math.sqrt(m)
    return mean_r - half, mean_r + half


def _check_parameters(tolerance: float, alpha: float) -> None:
    if not (math.isfinite(tolerance) and tolerance > 0):
        raise ValueError(f"tolerance must be a finite number > 0, not {tolerance!r}")
    if not (0.0 < alpha < 0.5):
        raise ValueError(f"alpha must lie in (0, 0.5), not {alpha!r}")


def compare(
    *,
    claim: ClaimSummary,
    reproduced: Sequence[float],
    direction: Direction,
    tolerance: float,
    alpha: float = 0.05,
) -> Comparison:
    """Compare reproduced per-seed values with a claim: verdict, interval, TOST and the rest."""
    _check_parameters(tolerance, alpha)
    s = direction_sign(direction)
    xs = [float(v) for v in reproduced]
    m = len(xs)
    mode: Mode = "two_sample" if claim.two_sample else "one_sample"
    n_non_finite = 0 if all_finite(xs) else sum(1 for v in xs if not math.isfinite(v))
    base: dict[str, Any] = {
        "mode": mode,
        "direction": direction,
        "tolerance": float(tolerance),
        "alpha": float(alpha),
        "n_reproduced": m,
        "n_non_finite": n_non_finite,
        "claimed_mean": claim.mean,
        "claimed_sd": claim.sd,
        "claimed_n": claim.n,
    }
    if m < 2 or n_non_finite or not claim.finite:
        return _insufficient(base, xs, claim, s, tolerance)

    mean_r = mean(xs)
    sd_r = sample_sd(xs, mean_r)
    delta = s * (mean_r - claim.mean)
    scale = max(abs(mean_r), abs(claim.mean))
    if claim.two_sample:
        assert claim.sd is not None
        assert claim.n is not None
        var_term = sd_r**2 / m + claim.sd**2 / claim.n
        se = math.sqrt(var_term)
        df: float | None = welch_df(sd_r**2, m, claim.sd**2, claim.n) if se > 0 else None
        cohens_d, g = hedges_g(s * (mean_r - claim.mean), sd_r, m, claim.sd, claim.n)
    else:
        se = sd_r / math.sqrt(m)
        df = float(m - 1)
        cohens_d, g = None, None
    prob = None
    if claim.values is not None and len(claim.values) >= 1:
        prob = probability_better([s * v for v in xs], [s * v for v in claim.values])
    ci95_low, ci95_high = _t_interval95(xs, mean_r, sd_r)
    numbers: dict[str, Any] = {
        **base,
        "delta": delta,
        "se": se,
        "df": df,
        "cohens_d": cohens_d,
        "hedges_g": g,
        "prob_improvement": prob,
        "point_rule": margin_gap(delta, tolerance, scale=scale) <= 0.0,
        "reproduced_mean": mean_r,
        "reproduced_sd": sd_r,
        "ci95_low": ci95_low,
        "ci95_high": ci95_high,
    }
    if se == 0.0:
        return _se_zero(numbers, delta, margin_gap(delta, tolerance, scale=scale))
    assert df is not None
    t_star = t_ppf(1.0 - alpha, df)
    ci_low, ci_high = delta - t_star * se, delta + t_star * se
    t_lower, t_upper = (delta + tolerance) / se, (delta - tolerance) / se
    t_diff = delta / se
    # One ufunc call for the five tail areas; an upper tail is the lower tail of −t.
    p_worse, p_better, sf_lower, cdf_upper, half_p_difference = t_cdfs(
        (t_lower, -t_upper, -t_lower, t_upper, -abs(t_diff)), df
    )
    p_tost = max(sf_lower, cdf_upper)
    verdict: Verdict
    lean: Lean | None = None
    if p_tost < alpha:
        verdict = "reproduced"
    elif p_worse < alpha:
        verdict = "not_reproduced"
    elif p_better < alpha:
        verdict = "exceeded"
    else:
        verdict = "inconclusive"
        lean = "worse" if ci_high < 0 else "better" if ci_low > 0 else "none"
    return Comparison(
        **numbers,
        verdict=verdict,
        lean=lean,
        ci_low=ci_low,
        ci_high=ci_high,
        t_lower=t_lower,
        t_upper=t_upper,
        p_tost=p_tost,
        p_worse=p_worse,
        p_better=p_better,
        t_difference=t_diff,
        p_difference=2.0 * half_p_difference,
        se_zero=False,
    )


def _se_zero(numbers: dict[str, Any], delta: float, gap: float) -> Comparison:
    # Bit-identical runs on both sides: no spread to test, so the rule works on Δ itself and the
    # p-values are the limits of the tests as SE → 0 (0 where the rule fires, 1 where it does not).
    verdict: Verdict
    if gap < 0.0:
        verdict = "reproduced"
    elif delta < 0.0:
        verdict = "not_reproduced"
    else:
        verdict = "exceeded"
    return Comparison(
        **numbers,
        verdict=verdict,
        lean=None,
        ci_low=delta,
        ci_high=delta,
        t_lower=None,
        t_upper=None,
        p_tost=0.0 if verdict == "reproduced" else 1.0,
        p_worse=0.0 if verdict == "not_reproduced" else 1.0,
        p_better=0.0 if verdict == "exceeded" else 1.0,
        t_difference=None,
        p_difference=None,
        se_zero=True,
    )


def _insufficient(
    base: dict[str, Any], xs: list[float], claim: ClaimSummary, s: int, tolerance: float
) -> Comparison:
    finite = all_finite(xs) and claim.finite and len(xs) >= 1
    mean_r = mean(xs) if finite else None
    delta = s * (mean_r - claim.mean) if mean_r is not None else None
    return Comparison(
        **base,
        verdict="insufficient_data",
        lean=None,
        delta=delta,
        se=None,
        df=None,
        ci_low=None,
        ci_high=None,
        t_lower=None,
        t_upper=None,
        p_tost=None,
        p_worse=None,
        p_better=None,
        t_difference=None,
        p_difference=None,
        cohens_d=None,
        hedges_g=None,
        prob_improvement=None,
        point_rule=None
        if delta is None or mean_r is None
        else margin_gap(delta, tolerance, scale=max(abs(mean_r), abs(claim.mean))) <= 0.0,
        se_zero=False,
        reproduced_mean=mean_r,
        reproduced_sd=sample_sd(xs) if finite and len(xs) >= 2 else None,
        ci95_low=None,
        ci95_high=None,
    )
