"""How many seeds: the TOST power of STATISTICS.md §4, by numerical integration.

power(m) = ∫₀^∞ P(|Δ̂| < δ − t*·SE(s)) · f(s) ds, with Δ̂ ~ N(Δ₀, σ²·k²), SE(s) = s·k, and
ν·s²/σ² ~ χ²(ν); one-sample mode k = 1/√m, ν = m − 1; two-sample mode (pooled) k = √(1/m + 1/n),
ν = m + n − 2. The inner probability is 0 where δ − t*·s·k ≤ 0, so the integral stops at
s = δ/(t*·k).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from scipy import integrate, special, stats

from app.scoring._util import finite_or_none, t_ppf

PowerMode = Literal["one_sample", "two_sample"]

WARN_RATIO = 1.5
DEFAULT_TARGET = 0.8
MAX_SEEDS = 1000
CHI_TAIL = 1e-15  # the chi density's mass beyond the integration's upper end, at most


def _shape(mode: PowerMode, seeds: int, claim_n: int | None) -> tuple[float, float]:
    if seeds < 2:
        raise ValueError(f"seeds must be at least 2, not {seeds}")
    if mode == "one_sample":
        return 1.0 / math.sqrt(seeds), float(seeds - 1)
    if mode == "two_sample":
        if claim_n is None or claim_n < 2:
            raise ValueError("two_sample mode needs claim_n ≥ 2")
        return math.sqrt(1.0 / seeds + 1.0 / claim_n), float(seeds + claim_n - 2)
    raise ValueError(f"mode must be 'one_sample' or 'two_sample', not {mode!r}")


def tost_power(
    *,
    sd: float,
    tolerance: float,
    seeds: int,
    alpha: float = 0.05,
    mode: PowerMode = "one_sample",
    claim_n: int | None = None,
    true_difference: float = 0.0,
) -> float:
    """Probability that TOST declares equivalence with `seeds` fresh seeds (scipy quad)."""
    if not (sd > 0 and math.isfinite(sd)):
        raise ValueError(f"sd must be a finite number > 0, not {sd!r}")
    if not (tolerance > 0 and math.isfinite(tolerance)):
        raise ValueError(f"tolerance must be a finite number > 0, not {tolerance!r}")
    if not (0.0 < alpha < 0.5):
        raise ValueError(f"alpha must lie in (0, 0.5), not {alpha!r}")
    k, nu = _shape(mode, seeds, claim_n)
    t_star = t_ppf(1.0 - alpha, nu)
    # Work in units of σ: u = s/σ has the chi(ν) density scaled by 1/√ν.
    d, d0 = tolerance / sd, abs(true_difference) / sd
    # δ − Δ₀ in units of σ, from the raw values: d − d0 would cancel to 0 at d ≈ d0 ≈ 1e308.
    margin = (tolerance - abs(true_difference)) / sd
    if not (math.isfinite(d) and math.isfinite(d0)):
        # δ or Δ₀ lies beyond 1e308 σ: the estimate is exact at that scale. TOST then always
        # succeeds when δ > |Δ₀|, never when δ < |Δ₀|, and with probability α (its size) at
        # δ = |Δ₀|.
        return 1.0 if margin > 0 else 0.0 if margin < 0 else alpha
    chi = stats.chi(nu, scale=1.0 / math.sqrt(nu))
    # The inner probability is 0 past u_max; the density is negligible past the chi tail
    # (quad over [0, 1e12] would miss the narrow peak near u = 1 altogether).
    u_max = min(d / (t_star * k), float(chi.isf(CHI_TAIL)))

    def integrand(u: float) -> float:
        shrink = t_star * u * k  # h = d − shrink; the terms are (h − d0)/k and (−h − d0)/k
        inner = special.ndtr((margin - shrink) / k) - special.ndtr((shrink - d - d0) / k)
        return float(inner * chi.pdf(u))

    # The density peaks near u = 1 and narrows as ν grows: tell quad where to look.
    points = [p for p in (1.0 - 4.0 / math.sqrt(nu), 1.0) if 0.0 < p < u_max]
    value, _ = integrate.quad(integrand, 0.0, u_max, points=points or None, limit=200)
    return min(1.0, max(0.0, float(value)))


def seeds_needed(
    *,
    sd: float,
    tolerance: float,
    alpha: float = 0.05,
    mode: PowerMode = "one_sample",
    claim_n: int | None = None,
    true_difference: float = 0.0,
    target_power: float = DEFAULT_TARGET,
    max_seeds: int = MAX_SEEDS,
) -> int | None:
    """Smallest number of fresh seeds whose TOST power reaches the target; None past max_seeds."""
    if not (0.0 < target_power < 1.0):
        raise ValueError(f"target_power must lie in (0, 1), not {target_power!r}")

    def reaches(m: int) -> bool:
        power = tost_power(
            sd=sd,
            tolerance=tolerance,
            seeds=m,
            alpha=alpha,
            mode=mode,
            claim_n=claim_n,
            true_difference=true_difference,
        )
        return power >= target_power

    # Power grows with m: double until the target is reached, then bisect.
    low, high = 1, 2
    while not reaches(high):
        if high >= max_seeds:
            return None
        low, high = high, min(2 * high, max_seeds)
    while high - low > 1:
        mid = (low + high) // 2
        if reaches(mid):
            high = mid
        else:
            low = mid
    return high


def power_warning(*, sd: float | None, tolerance: float) -> str | None:
    """A warning when δ/σ̂ < 1.5: such a claim will most likely end inconclusive."""
    if sd is None or not math.isfinite(sd) or sd <= 0:
        return None
    ratio = tolerance / sd
    if ratio >= WARN_RATIO:
        return None
    return (
        f"The tolerance is only {ratio:.2f} times the seed-to-seed sd ({tolerance:g} vs "
        f"{sd:g}); below {WARN_RATIO} the comparison will most likely end inconclusive."
    )


@dataclass(frozen=True)
class PowerResult:
    """TOST power for the requested seeds and the seeds needed for the target power."""

    power: float
    seeds: int
    seeds_needed: int | None
    target_power: float
    mode: PowerMode
    warning: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "power": finite_or_none(self.power),
            "seeds": self.seeds,
            "seeds_needed": self.seeds_needed,
            "target_power": self.target_power,
            "mode": self.mode,
            "warning": self.warning,
        }


def plan(
    *,
    sd: float,
    tolerance: float,
    alpha: float = 0.05,
    mode: PowerMode = "one_sample",
    claim_n: int | None = None,
    true_difference: float = 0.0,
    seeds: int = 5,
    target_power: float = DEFAULT_TARGET,
) -> PowerResult:
    """Power for `seeds` seeds, seeds needed for `target_power`, and the δ/σ warning."""
    common: dict[str, Any] = {
        "sd": sd,
        "tolerance": tolerance,
        "alpha": alpha,
        "mode": mode,
        "claim_n": claim_n,
        "true_difference": true_difference,
    }
    return PowerResult(
        power=tost_power(seeds=seeds, **common),
        seeds=seeds,
        seeds_needed=seeds_needed(target_power=target_power, **common),
        target_power=target_power,
        mode=mode,
        warning=power_warning(sd=sd, tolerance=tolerance),
    )
