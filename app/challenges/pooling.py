"""Pooling independent attempts at one claim, and the consensus line (pure functions).

Each attempt i gives, per metric, its fresh-seed mean yᵢ and standard error sᵢ = sdᵢ/√nᵢ.

- Fixed effect (inverse-variance): wᵢ = 1/sᵢ², ŷ = Σwᵢyᵢ / Σwᵢ, SE(ŷ) = 1/√Σwᵢ.
- Heterogeneity: Cochran's Q = Σwᵢ(yᵢ − ŷ)², df = k − 1, I² = max(0, (Q − df)/Q)
  (0 when Q = 0), p from χ²(df).
- Random effects (DerSimonian–Laird): τ² = max(0, (Q − df)/C), C = Σwᵢ − Σwᵢ²/Σwᵢ;
  wᵢ* = 1/(sᵢ² + τ²), ŷ* and SE(ŷ*) as above with wᵢ*.

The headline pooled estimate is the fixed-effect ŷ. The consensus uses the random-effects ŷ*,
whose interval widens when attempts disagree beyond their own noise, so disagreement is not
averaged away. Per primary metric, with direction sign s, claimed mean μc and the claim's own
standard error s_c (sd/√n when it has a spread, else 0):

    Δ = s·(ŷ* − μc),  SE = √(SE(ŷ*)² + s_c²),  [L, U] = Δ ∓ z₀.₉₅·SE   (a 90% interval)

and the rules of STATISTICS.md §1–2 with normal quantiles: reproduced when −δ < L and U < δ;
not reproduced when the Holm-adjusted p_worse = Φ((Δ+δ)/SE) < α; exceeded when every primary
metric is reproduced or exceeded and a Holm-adjusted p_better = 1 − Φ((Δ−δ)/SE) < α;
otherwise inconclusive. Fewer than ``MIN_ATTEMPTS`` independent attempts: ``pending``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from scipy import stats

from app.scoring.multiple import holm

MIN_ATTEMPTS = 2
Consensus = Literal["pending", "reproduced", "not_reproduced", "exceeded", "inconclusive"]


@dataclass(frozen=True)
class Estimate:
    key: int  # the attempt (submission) id
    mean: float
    se: float


@dataclass(frozen=True)
class Pooled:
    k: int
    estimate: float
    se: float
    ci95_low: float
    ci95_high: float
    q: float
    df: int
    p_heterogeneity: float | None
    i2: float
    tau2: float
    re_estimate: float
    re_se: float
    weights: dict[int, float]  # each attempt's share of the fixed-effect weight


def pool(estimates: Sequence[Estimate]) -> Pooled | None:
    """Inverse-variance pooling with I² and DerSimonian–Laird τ²; None without estimates."""
    usable = [e for e in estimates if math.isfinite(e.mean) and math.isfinite(e.se) and e.se > 0]
    if not usable:
        return None
    w = [1.0 / e.se**2 for e in usable]
    total = math.fsum(w)
    fixed = math.fsum(wi * e.mean for wi, e in zip(w, usable, strict=True)) / total
    se = math.sqrt(1.0 / total)
    q = math.fsum(wi * (e.mean - fixed) ** 2 for wi, e in zip(w, usable, strict=True))
    df = len(usable) - 1
    i2 = max(0.0, (q - df) / q) if q > 0 else 0.0
    c = total - math.fsum(wi**2 for wi in w) / total
    tau2 = max(0.0, (q - df) / c) if c > 0 else 0.0
    w_re = [1.0 / (e.se**2 + tau2) for e in usable]
    total_re = math.fsum(w_re)
    z = float(stats.norm.ppf(0.975))
    return Pooled(
        k=len(usable),
        estimate=fixed,
        se=se,
        ci95_low=fixed - z * se,
        ci95_high=fixed + z * se,
        q=q,
        df=df,
        p_heterogeneity=float(stats.chi2.sf(q, df)) if df > 0 else None,
        i2=i2,
        tau2=tau2,
        re_estimate=math.fsum(wi * e.mean for wi, e in zip(w_re, usable, strict=True)) / total_re,
        re_se=math.sqrt(1.0 / total_re),
        weights={e.key: wi / total for wi, e in zip(w, usable, strict=True)},
    )


@dataclass(frozen=True)
class MetricConsensus:
    verdict: Literal["reproduced", "not_reproduced", "exceeded", "inconclusive"]
    difference: float
    se: float
    ci_low: float
    ci_high: float
    p_worse: float
    p_better: float
    tolerance: float


def metric_consensus(
    pooled: Pooled,
    *,
    claimed_mean: float,
    claim_se: float,
    direction: Literal["higher", "lower"],
    tolerance: float,
    alpha: float = 0.05,
) -> MetricConsensus:
    """The pooled (random-effects) difference from the claim, judged against ±tolerance."""
    sign = 1.0 if direction == "higher" else -1.0
    delta = sign * (pooled.re_estimate - claimed_mean)
    se = math.sqrt(pooled.re_se**2 + claim_se**2)
    z = float(stats.norm.ppf(1 - alpha))
    low, high = delta - z * se, delta + z * se
    if se > 0:
        p_worse = float(stats.norm.cdf((delta + tolerance) / se))
        p_better = float(stats.norm.sf((delta - tolerance) / se))
    else:
        p_worse = 0.0 if delta <= -tolerance else 1.0
        p_better = 0.0 if delta >= tolerance else 1.0
    verdict: Literal["reproduced", "not_reproduced", "exceeded", "inconclusive"]
    if -tolerance < low and high < tolerance:
        verdict = "reproduced"
    elif high < -tolerance:
        verdict = "not_reproduced"
    elif low > tolerance:
        verdict = "exceeded"
    else:
        verdict = "inconclusive"
    return MetricConsensus(verdict, delta, se, low, high, p_worse, p_better, tolerance)


def claim_consensus(
    metrics: Mapping[str, MetricConsensus | None],
    primary: Mapping[str, bool],
    *,
    independent: int,
    alpha: float = 0.05,
) -> Consensus:
    """The claim-level consensus over the primary metrics (intersection–union, Holm)."""
    names = [n for n in metrics if primary.get(n, False)]
    judged = {n: metrics[n] for n in names}
    if independent < MIN_ATTEMPTS or not names or any(m is None for m in judged.values()):
        return "pending"
    ok = {n: m for n, m in judged.items() if m is not None}
    worse = holm([m.p_worse for m in ok.values()])
    better = holm([m.p_better for m in ok.values()])
    verdicts = [m.verdict for m in ok.values()]
    if all(v == "reproduced" for v in verdicts):
        return "reproduced"
    if any(p < alpha for p in worse):
        return "not_reproduced"
    if all(v in ("reproduced", "exceeded") for v in verdicts) and any(p < alpha for p in better):
        return "exceeded"
    return "inconclusive"


_WORDS = {
    "reproduced": "the claim is reproduced",
    "not_reproduced": "the claim is not reproduced",
    "exceeded": "the attempts do better than the claim",
    "inconclusive": "inconclusive",
}


def _where(m: MetricConsensus) -> str:
    if m.verdict == "reproduced":
        return "lies inside"
    if m.verdict == "not_reproduced":
        return "falls below"
    if m.verdict == "exceeded":
        return "lies above"
    return "is not inside"


def consensus_line(
    verdict: Consensus,
    *,
    independent: int,
    reproduced_individually: int,
    metrics: Mapping[str, tuple[Pooled, MetricConsensus, float]],
) -> str:
    """One sentence a person can read: what the attempts say together, and why."""
    if verdict == "pending":
        return (
            f"No consensus yet: {independent} independent judged attempt"
            f"{'' if independent == 1 else 's'}; at least {MIN_ATTEMPTS} are needed."
        )
    parts = []
    for name, (pooled, m, claimed) in metrics.items():
        parts.append(
            f"pooled {name} {pooled.re_estimate:.4g} against the claimed {claimed:.4g}: the 90% "
            f"interval of the difference, {m.ci_low:+.3g} to {m.ci_high:+.3g}, {_where(m)} the "
            f"±{m.tolerance:g} margin (I² = {pooled.i2:.0%})"
        )
    return (
        f"Consensus of {independent} independent attempts: {_WORDS[verdict]}; "
        + "; ".join(parts)
        + f". {reproduced_individually} of {independent} reproduced it on their own."
    )
