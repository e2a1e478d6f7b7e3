"""Submissions and their versions. A version is immutable once created; a new package is a new
version that re-runs everything and keeps the history."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, BigIntPK, CreatedAtMixin, IdMixin, utcnow


class SubmissionStatus(enum.StrEnum):
    active = "active"
    withdrawn = "withdrawn"


class VersionStatus(enum.StrEnum):
    queued = "queued"  # jobs waiting
    running = "running"  # at least one job started
    finished = "finished"  # every job ended; scored when the statistics ran
    cancelled = "cancelled"  # withdrawn or superseded before it finished


class Submission(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "submission"
    __table_args__ = (Index("ix_submission_owner_id_created_at", "owner_id", "created_at"),)

    owner_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("user.id"))
    benchmark_slug: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(
        String(16), default=SubmissionStatus.active.value, index=True
    )
    latest_version: Mapped[int] = mapped_column(default=1)
    # Set when this submission is an attempt at a replication challenge (app/challenges).
    challenge_id: Mapped[int | None] = mapped_column(
        BigIntPK, ForeignKey("challenge.id", use_alter=True), index=True
    )
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    withdrawn_at: Mapped[dt.datetime | None]


class SubmissionVersion(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "submission_version"
    __table_args__ = (UniqueConstraint("submission_id", "number"),)

    submission_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("submission.id"))
    number: Mapped[int]
    benchmark_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("benchmark.id"), index=True)
    package_sha256: Mapped[str] = mapped_column(String(64), index=True)
    package_size: Mapped[int] = mapped_column(BigInteger)
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)
    lint_report: Mapped[dict[str, Any]] = mapped_column(JSON)
    environment: Mapped[dict[str, Any]] = mapped_column(JSON)  # base, requirements, input_hash
    fresh_seeds: Mapped[list[int]] = mapped_column(JSON)
    # The claim this version is judged against when it is not its own (a challenge attempt):
    # {"challenge_id": …, "metrics": {name: claimed metric}}. None: its manifest's claim.
    reference_claim: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=VersionStatus.queued.value)
    finished_at: Mapped[dt.datetime | None]


class SubmissionTag(Base):
    """The tags of a submission's latest version, one row each, for indexed tag filters."""

    __tablename__ = "submission_tag"

    submission_id: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("submission.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)


# Join condition from a submission to its latest version (one row per submission).
LATEST_VERSION = (SubmissionVersion.submission_id == Submission.id) & (
    SubmissionVersion.number == Submission.latest_version
)
