"""Small numeric helpers shared by the scoring modules (private)."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, dataclass_transform

import numpy as np
from scipy import special

T = TypeVar("T")


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def record(cls: type[T]) -> type[T]:
    """A scoring result: read-only to the type checker, a slotted dataclass at run time.

    Scoring builds some thirty results per claim (about 300 fields). A frozen dataclass sets every
    field through ``object.__setattr__`` in ``__init__``, which made building them a fifth of the
    time of ``score_version``; here mypy rejects any assignment to a field instead (``make test``
    runs it), and ``__init__`` is a plain one. Unlike a frozen dataclass, a record has no hash.
    """
    return dataclass(slots=True)(cls)


def finite_or_none(x: float | None) -> float | None:
    """Return ``x`` as a plain float when it is finite, else None (JSON-safe output)."""
    if x is None:
        return None
    value = float(x)
    return value if math.isfinite(value) else None


def all_finite(values: Iterable[float]) -> bool:
    """Whether every value is a finite number."""
    return all(map(math.isfinite, values))


def t_sf(x: float, df: float) -> float:
    """Student-t survival function 1 − F(x), computed as F(−x) to keep precision in the tail."""
    return float(special.stdtr(df, -x))


def t_cdfs(xs: Sequence[float], df: float) -> list[float]:
    """Student-t CDF at several points of one distribution, in one ufunc call."""
    result: list[float] = special.stdtr(df, np.array(xs, dtype=float)).tolist()
    return result


def t_ppf(q: float, df: float) -> float:
    """Student-t quantile (scipy.special.stdtrit)."""
    return float(special.stdtrit(df, q))


@functools.lru_cache(maxsize=256)
def t_ppf_975(df: int) -> float:
    """The 97.5% t quantile for a whole number of degrees of freedom (a seed count − 1), cached."""
    return t_ppf(0.975, df)


def _identical(values: Sequence[float]) -> bool:
    # list.count compares in C; `first == first` keeps a NaN (equal to itself by identity in
    # count) from passing for a run of identical values.
    first = values[0]
    if isinstance(values, list | tuple):
        return first == first and values.count(first) == len(values)
    return all(v == first for v in values)


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean (math.fsum: correctly rounded, and symmetric under negation)."""
    if _identical(values):
        return float(values[0])  # identical runs must have exactly their value as mean, and sd 0
    return math.fsum(values) / len(values)


def sample_sd(values: Sequence[float], center: float | None = None) -> float:
    """Sample standard deviation with ddof=1 (0.0 for fewer than two values).

    ``center`` is the mean of ``values`` when the caller already has it.
    """
    n = len(values)
    if n < 2 or _identical(values):
        return 0.0
    m = mean(values) if center is None else center
    return math.sqrt(math.fsum([(v - m) ** 2 for v in values]) / (n - 1))


def json_fields(obj: Any) -> dict[str, Any]:
    """A dataclass's fields as a shallow dict, non-finite floats as None (cheaper than asdict)."""
    out: dict[str, Any] = {}
    for name in obj.__dataclass_fields__:
        value = getattr(obj, name)
        if isinstance(value, float):  # also turns numpy floats into plain ones
            value = float(value) if math.isfinite(value) else None
        out[name] = value
    return out
