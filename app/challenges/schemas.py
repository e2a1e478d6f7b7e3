"""Replication challenges on the wire."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from pydantic import AwareDatetime, Field, field_validator, model_validator

from app.core.schemas import RequestModel, ResponseModel
from app.submissions.manifest import ClaimedMetric


class ChallengeCreate(RequestModel):
    """A challenge on a submission's claim (``submission_id``), or on a paper's claim
    (``benchmark`` + ``metrics`` + ``source_url``)."""

    title: str = Field(min_length=3, max_length=200)
    description: str = Field(default="", max_length=20_000)
    deadline: AwareDatetime = Field(description="attempts are accepted until this instant")
    submission_id: int | None = Field(default=None, description="challenge this submission's claim")
    benchmark: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{1,63}$")
    benchmark_version: int | None = Field(default=None, ge=1, description="default: the latest")
    metrics: dict[str, ClaimedMetric] | None = Field(
        default=None,
        min_length=1,
        max_length=20,
        description="claimed metrics as in reprise.toml's [claim.metrics]; a spread needs n",
    )
    source_url: str | None = Field(default=None, max_length=500, description="shown, never fetched")

    @field_validator("source_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s]+$", value):
            raise ValueError("must be an http(s) URL")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> ChallengeCreate:
        paper = self.benchmark is not None or self.metrics is not None
        if (self.submission_id is None) == (not paper):
            raise ValueError(
                "give either submission_id, or benchmark and metrics (a claim from a paper)"
            )
        if paper:
            if self.benchmark is None or self.metrics is None:
                raise ValueError("a claim from a paper needs benchmark and metrics")
            if self.source_url is None:
                raise ValueError("a claim from a paper needs source_url, where the claim is made")
            for name, metric in self.metrics.items():
                if metric.spread is not None and metric.n is None:
                    raise ValueError(
                        f"metrics.{name}: a spread needs n, the number of seeds behind it"
                    )
        return self


class Source(ResponseModel):
    kind: Literal["submission", "paper"]
    submission_id: int | None
    version: int | None
    url: str | None


class AttemptMetric(ResponseModel):
    reproduced_mean: float | None
    reproduced_sd: float | None
    n: int
    se: float | None
    weight: float | None = Field(description="share of the fixed-effect pooled weight")
    verdict: str | None


class AttemptOut(ResponseModel):
    submission_id: int
    owner: str
    created_at: dt.datetime
    state: str
    verdict: str | None
    quality: float | None
    independent: bool = Field(description="counted in the pooled estimate and the consensus")
    excluded_because: str | None
    metrics: dict[str, AttemptMetric]
    links: dict[str, str]


class PooledMetric(ResponseModel):
    metric: str
    primary: bool
    direction: str
    tolerance: float
    claimed_mean: float
    k: int
    estimate: float = Field(description="fixed-effect inverse-variance pooled reproduced mean")
    se: float
    ci95_low: float
    ci95_high: float
    q: float
    df: int
    p_heterogeneity: float | None
    i2: float = Field(description="I², share of variation beyond chance (0–1)")
    tau2: float
    random_effects: dict[str, float] = Field(description="DerSimonian–Laird estimate and se")
    difference: float | None = Field(description="pooled (random effects) − claim, better > 0")
    difference_ci90: list[float] | None
    verdict: str | None


class ConsensusOut(ResponseModel):
    verdict: str
    line: str
    independent_attempts: int
    reproduced_individually: int


class ChallengeOut(ResponseModel):
    id: int
    title: str
    status: Literal["open", "closed"]
    deadline: dt.datetime
    created_at: dt.datetime
    created_by: str
    benchmark: dict[str, Any]
    source: Source
    attempt_count: int
    judged_count: int
    consensus: ConsensusOut
    links: dict[str, str]


class ChallengeDetail(ChallengeOut):
    description: str
    claim: dict[str, Any]
    attempts: list[AttemptOut]
    pooled: list[PooledMetric]
