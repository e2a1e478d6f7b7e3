"""``reprise.toml``, format 1: the package manifest, validated field by field.

Everything here is a public interface (researchers write it by hand), so every rule has a
message that names the field and says how to fix it. Cross-checks against the benchmark catalog
and the archive's content live in ``package.py``.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{2,63}$"
OPTIMIZER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
SpreadKind = Literal["sd", "sem", "ci95_half", "two_sd"]
MAX_SEED = 2**32 - 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _finite(value: float, what: str = "value") -> float:
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number (nan and inf are not allowed)")
    return value


FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class PackageSection(_Strict):
    name: str = Field(pattern=NAME_PATTERN, description="lowercase letters, digits and '-'")
    version: str = Field(min_length=1, max_length=40)
    title: str = Field(min_length=3, max_length=200)
    description: str = Field(default="", max_length=50_000)
    authors: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        min_length=1, max_length=50
    )
    license: str = Field(min_length=1, max_length=200, description="an SPDX identifier")
    paper: str | None = Field(default=None, max_length=500)
    tags: list[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]] = Field(
        default_factory=list, max_length=20
    )

    @field_validator("paper")
    @classmethod
    def _paper_is_url(cls, value: str | None) -> str | None:
        # Recorded and shown, never fetched by the server.
        if value is not None and not re.match(r"^https?://[^\s]+$", value):
            raise ValueError("must be an http(s) URL")
        return value


class BenchmarkRef(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,63}$")
    version: int = Field(ge=1)


class EntrySection(_Strict):
    optimizer: str | None = Field(default=None, pattern=OPTIMIZER_PATTERN)
    command: list[Annotated[str, Field(min_length=1, max_length=1000)]] | None = Field(
        default=None, min_length=1, max_length=64
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> EntrySection:
        if (self.optimizer is None) == (self.command is None):
            raise ValueError(
                "set exactly one of entry.optimizer (module:Attribute) or entry.command"
            )
        return self


class ClaimedMetric(_Strict):
    mean: FiniteFloat
    values: list[FiniteFloat] | None = Field(default=None, min_length=1, max_length=1000)
    spread: FiniteFloat | None = Field(default=None, ge=0)
    spread_kind: SpreadKind | None = None
    n: int | None = Field(default=None, ge=2, le=100_000)
    direction: Literal["higher", "lower"] | None = None  # kind "command" only
    tolerance: FiniteFloat | None = Field(default=None, gt=0)  # kind "command" only

    @model_validator(mode="after")
    def _spread_rules(self) -> ClaimedMetric:
        if self.values is not None and self.spread is not None:
            raise ValueError("give either values (per seed, preferred) or spread, not both")
        if self.spread is not None and self.spread_kind is None:
            raise ValueError("spread needs spread_kind: one of sd, sem, ci95_half, two_sd")
        if self.spread_kind is not None and self.spread is None:
            raise ValueError("spread_kind is set but spread is missing")
        if self.values is not None:
            average = sum(self.values) / len(self.values)
            if abs(average - self.mean) > mean_tolerance(self.mean):
                raise ValueError(
                    f"mean {self.mean} disagrees with the mean of values ({average:.10g}); "
                    "the mean must be the average of the per-seed values"
                )
        return self

    @property
    def has_spread(self) -> bool:
        return self.values is not None or self.spread is not None


def mean_tolerance(mean: float) -> float:
    """How far a written mean may sit from its values: half a unit of its last written digit."""
    text = repr(mean)
    if "e" in text or "E" in text:
        return 1e-9 * max(1.0, abs(mean))
    decimals = len(text.split(".", 1)[1]) if "." in text else 0
    return 0.5 * 10.0 ** (-decimals) + 1e-12 * max(1.0, abs(mean))


class ClaimSection(_Strict):
    seeds: list[Annotated[int, Field(ge=0, le=MAX_SEED)]] = Field(min_length=1, max_length=50)
    variance_sources: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(
        default_factory=list, max_length=10
    )
    compute: str | None = Field(default=None, max_length=500)
    metrics: dict[str, ClaimedMetric] = Field(min_length=1, max_length=20)

    @field_validator("seeds")
    @classmethod
    def _unique(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError("seeds must be distinct")
        return seeds

    @model_validator(mode="after")
    def _values_match_seeds(self) -> ClaimSection:
        for name, metric in self.metrics.items():
            if metric.values is not None and len(metric.values) != len(self.seeds):
                raise ValueError(
                    f"metrics.{name}.values has {len(metric.values)} entries but seeds has "
                    f"{len(self.seeds)}: give one value per seed, in the order of seeds"
                )
        return self


class EnvironmentSection(_Strict):
    base: str | None = Field(default=None, max_length=64)
    requirements: str | None = Field(default=None, max_length=200, pattern=r"^[A-Za-z0-9._/-]+$")
    python: str | None = Field(default=None, pattern=r"^3\.\d{1,2}$")


HyperValue = bool | int | float | str | list[bool | int | float | str]


class PackageManifest(_Strict):
    format: Literal[1]
    package: PackageSection
    benchmark: BenchmarkRef
    entry: EntrySection
    hyperparameters: dict[str, HyperValue] | None = None
    claim: ClaimSection
    environment: EnvironmentSection = Field(default_factory=EnvironmentSection)

    @field_validator("hyperparameters")
    @classmethod
    def _hyper_keys(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        if len(value) > 100:
            raise ValueError("at most 100 hyperparameters")
        for key, item in value.items():
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", key):
                raise ValueError(f"{key!r} is not a valid keyword argument name")
            for v in item if isinstance(item, list) else [item]:
                if isinstance(v, float):
                    _finite(v, f"hyperparameters.{key}")
        return value
