"""Small numeric helpers shared by the scoring modules (private)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from scipy import special


def finite_or_none(x: float | None) -> float | None:
    """Return ``x`` as a plain float when it is finite, else None (JSON-safe output)."""
    if x is None:
        return None
    value = float(x)
    return value if math.isfinite(value) else None


def all_finite(values: Iterable[float]) -> bool:
    """Whether every value is a finite number."""
    return all(math.isfinite(v) for v in values)


def t_cdf(x: float, df: float) -> float:
    """Student-t CDF (scipy.special.stdtr: the ufunc behind scipy.stats.t, without its overhead)."""
    return float(special.stdtr(df, x))


def t_sf(x: float, df: float) -> float:
    """Student-t survival function 1 − F(x), computed as F(−x) to keep precision in the tail."""
    return float(special.stdtr(df, -x))


def t_ppf(q: float, df: float) -> float:
    """Student-t quantile (scipy.special.stdtrit)."""
    return float(special.stdtrit(df, q))


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean (math.fsum: correctly rounded, and symmetric under negation)."""
    first = values[0]
    if all(v == first for v in values):
        return float(first)  # identical runs must have exactly their value as mean, and sd 0
    return math.fsum(values) / len(values)


def sample_sd(values: Sequence[float]) -> float:
    """Sample standard deviation with ddof=1 (0.0 for fewer than two values)."""
    n = len(values)
    if n < 2:
        return 0.0
    m = mean(values)
    if all(v == m for v in values):
        return 0.0
    return math.sqrt(math.fsum((v - m) ** 2 for v in values) / (n - 1))


def json_fields(obj: Any) -> dict[str, Any]:
    """A dataclass's fields as a shallow dict, non-finite floats as None (cheaper than asdict)."""
    out: dict[str, Any] = {}
    for name in obj.__dataclass_fields__:
        value = getattr(obj, name)
        if isinstance(value, float):  # also turns numpy floats into plain ones
            value = float(value) if math.isfinite(value) else None
        out[name] = value
    return out
