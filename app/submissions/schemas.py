"""Submissions on the wire."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from app.core.schemas import ResponseModel
from app.jobs.schemas import JobOut


class Links(ResponseModel):
    self: str
    web: str
    jobs: str | None = None
    badge: str | None = None


class VersionBrief(ResponseModel):
    number: int
    status: str
    created_at: dt.datetime
    finished_at: dt.datetime | None
    package_sha256: str


class VersionOut(VersionBrief):
    benchmark: dict[str, Any]
    package_size: int
    claim: dict[str, Any]
    hyperparameters: dict[str, Any]
    environment: dict[str, Any]
    seeds: dict[str, list[int]]
    lint_report: dict[str, Any]
    job_counts: dict[str, int]
    verdict: dict[str, Any] | None = None


class SubmissionOut(ResponseModel):
    id: int
    owner: str
    benchmark: str
    name: str
    title: str
    status: str
    latest_version: int
    state: str
    verdict: str | None = None
    quality: float | None = None
    challenge_id: int | None = None  # set when this submission is a challenge attempt
    created_at: dt.datetime
    updated_at: dt.datetime
    links: Links


class SubmissionDetail(SubmissionOut):
    version: VersionOut
    versions: list[VersionBrief]
    jobs: list[JobOut]


class VersionRef(ResponseModel):
    number: int
    created_at: dt.datetime
    package_sha256: str
    status: str


class Change(ResponseModel):
    path: str
    kind: Literal["added", "removed", "changed"]
    before: Any
    after: Any
    change: float | None = None  # after − before, for numbers


class VersionDiff(ResponseModel):
    """Version ``base`` → version ``target``: the manifest by section, then the outcome."""

    submission_id: int
    base: VersionRef
    target: VersionRef
    same_package: bool
    manifest: dict[str, list[Change]]
    outcome: list[Change]
    outcome_before: dict[str, Any]
    outcome_after: dict[str, Any]
