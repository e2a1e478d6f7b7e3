"""The worker protocol on the wire (docs/worker-protocol.md) and the public job view."""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from app.core.schemas import RequestModel, ResponseModel

Label = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
Outcome = Literal[
    "succeeded",
    "user_error",
    "timeout",
    "oom",
    "invalid_output",
    "infrastructure_error",
    "cancelled",
]
LOG_TAIL_MAX = 64 * 1024


class LeaseRequest(RequestModel):
    worker_id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    labels: dict[Label, Label] | None = Field(
        default=None, max_length=16, description="labels to match; default: all of the token's"
    )
    wait_s: float = Field(default=20.0, ge=0, le=300)
    backend: Literal["docker", "local", "fake", "other"] = "other"


class LeaseRef(RequestModel):
    lease_token: str = Field(min_length=8, max_length=64)
    attempt: int = Field(ge=1)


class HeartbeatRequest(LeaseRef):
    nul_replaced = frozenset({"log_tail"})  # a package's output, relayed

    phase: Literal["prepare", "ingest", "score", "report"] | None = None
    log_tail: str | None = Field(default=None, max_length=LOG_TAIL_MAX)


class HeartbeatResponse(ResponseModel):
    lease_expires_at: dt.datetime
    cancel: bool


class PhaseReport(RequestModel):
    nul_replaced = frozenset({"log_tail"})  # a package's output, relayed

    phase: Literal["prepare", "ingest", "score"]
    exit_code: int | None = None
    timed_out: bool = False
    oom_killed: bool = False
    wall_s: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    cpu_s: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    peak_memory_mb: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    log_tail: str = Field(default="", max_length=LOG_TAIL_MAX)
    log_dropped_bytes: int = Field(default=0, ge=0)


class Curve(RequestModel):
    step: list[float] = Field(default_factory=list, max_length=1000)
    loss: list[float] = Field(default_factory=list, max_length=1000)

    @field_validator("step", "loss")
    @classmethod
    def _finite(cls, values: list[float]) -> list[float]:
        if not all(math.isfinite(v) for v in values):
            raise ValueError("curve values must be finite")
        return values


class ResultRequest(LeaseRef):
    nul_replaced = frozenset({"reason"})  # may quote what a package wrote (error.json)

    outcome: Outcome
    reason: str | None = Field(default=None, max_length=2000)
    metrics: dict[
        Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")],
        Annotated[float, Field(allow_inf_nan=False)],
    ] = Field(default_factory=dict, max_length=64)
    curve: Curve | None = None
    self_reported: bool = False
    phases: list[PhaseReport] = Field(default_factory=list, max_length=4)
    provenance: dict[str, Any] = Field(default_factory=dict)

    @field_validator("provenance")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > 64 or len(repr(value)) > 16_384:
            raise ValueError("provenance is limited to 64 keys and 16 KiB")
        return value


class ResultResponse(ResponseModel):
    recorded: bool
    duplicate: bool = False


class ReleaseResponse(ResponseModel):
    released: bool


class PackageRef(ResponseModel):
    sha256: str
    size: int
    url: str


class BenchmarkRef(ResponseModel):
    id: str
    version: int
    kind: str
    content_hash: str
    ingest_url: str
    score_url: str
    ingest_sha256: str  # of the bundle each URL serves: the worker checks what it received
    score_sha256: str
    limits: dict[str, Any]


class EnvironmentRef(ResponseModel):
    base: str
    requirements: str | None
    input_hash: str


class LeaseResponse(ResponseModel):
    job_id: int
    attempt: int
    lease_token: str
    lease_expires_at: dt.datetime
    lease_ttl_s: float
    kind: str
    seed: int
    submission_id: int
    version: int
    package: PackageRef
    benchmark: BenchmarkRef
    environment: EnvironmentRef
    run_config: dict[str, Any]


class JobOut(ResponseModel):
    id: int
    submission_id: int
    version: int
    kind: str
    seed: int
    status: str
    attempt: int
    max_attempts: int
    phase: str | None
    reason: str | None
    cancel_requested: bool
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


class RunResultOut(ResponseModel):
    attempt: int
    outcome: str
    reason: str | None
    metrics: dict[str, float]
    curve: dict[str, Any] | None
    self_reported: bool
    phases: list[dict[str, Any]]
    provenance: dict[str, Any]
    worker_id: str | None
    recorded_at: dt.datetime


class JobDetail(JobOut):
    log_tail: str | None
    result: RunResultOut | None
    attempts: list[RunResultOut]
