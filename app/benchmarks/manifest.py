"""The ``benchmark.toml`` format (version 1), validated with messages that name the field."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{1,63}$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BenchmarkLimits(_Strict):
    cpus: float = Field(default=1.0, gt=0, le=64)
    memory_mb: int = Field(default=1024, ge=64, le=262_144)
    timeout_s: float = Field(default=120, gt=0, le=86_400)
    pids: int = Field(default=256, ge=16, le=32_768)
    tmpfs_mb: int = Field(default=256, ge=16, le=65_536)
    output_mb: int = Field(default=64, ge=1, le=65_536)
    requires: dict[str, str] = Field(
        default_factory=dict, description="worker labels a run needs, e.g. {gpu = 'true'}"
    )


class DataFile(_Strict):
    path: str = Field(pattern=r"^data/[A-Za-z0-9._/-]+$")
    sha256: str = Field(pattern=SHA256_PATTERN)

    @field_validator("path")
    @classmethod
    def _no_traversal(cls, value: str) -> str:
        if ".." in value.split("/"):
            raise ValueError("must stay inside data/")
        return value


class BenchmarkData(_Strict):
    train: DataFile | None = None
    test: DataFile | None = None


class MetricSpec(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    direction: Literal["higher", "lower"]
    tolerance: float = Field(gt=0)
    primary: bool = False
    seed_sd: float | None = Field(default=None, ge=0)
    reference_low: float | None = None
    reference_high: float | None = None
    description: str | None = None


class BenchmarkManifest(_Strict):
    id: str = Field(pattern=SLUG_PATTERN)
    version: int = Field(ge=1)
    title: str = Field(min_length=3, max_length=200)
    kind: Literal["optimizer", "command"]
    description: str = Field(min_length=1)
    fresh_seeds: int = Field(default=5, ge=2, le=50)
    harness_version: str | None = None
    limits: BenchmarkLimits = Field(default_factory=BenchmarkLimits)
    data: BenchmarkData = Field(default_factory=BenchmarkData)
    metrics: list[MetricSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _metrics_consistent(self) -> BenchmarkManifest:
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError("metric names must be unique")
        if self.kind == "optimizer":
            if not self.metrics:
                raise ValueError("an optimizer benchmark defines at least one [[metrics]] entry")
            if not any(m.primary for m in self.metrics):
                raise ValueError("at least one metric must be primary = true")
        elif self.metrics:
            raise ValueError("a command benchmark defines no metrics: each claim declares its own")
        return self

    def metric(self, name: str) -> MetricSpec | None:
        return next((m for m in self.metrics if m.name == name), None)

    @property
    def requires_key(self) -> str:
        """The canonical label requirement string stored on jobs (``""`` when none)."""
        return requirement_key(self.limits.requires)


def requirement_key(requires: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(requires.items()))


def parse_requirement_key(key: str) -> dict[str, str]:
    if not key:
        return {}
    return dict(part.split("=", 1) for part in key.split(","))


def satisfies(labels: dict[str, str], requirement: str) -> bool:
    """True when a worker with ``labels`` may run jobs requiring ``requirement``."""
    return all(labels.get(k) == v for k, v in parse_requirement_key(requirement).items())
