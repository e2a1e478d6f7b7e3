"""The queue (one ``job`` row per run to do) and what the runs produced (``run_result``)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, BigIntPK, CreatedAtMixin, IdMixin, utcnow


class JobKind(enum.StrEnum):
    claimed = "claimed"  # a seed the claim names
    fresh = "fresh"  # a seed the service chose
    probe = "probe"  # a second run of one seed: determinism


class JobStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    user_error = "user_error"
    timeout = "timeout"
    oom = "oom"
    invalid_output = "invalid_output"
    infrastructure_error = "infrastructure_error"
    cancelled = "cancelled"


FINAL_STATUSES = frozenset(s.value for s in JobStatus) - {"queued", "running"}
OUTCOMES = FINAL_STATUSES


class Job(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "job"
    __table_args__ = (
        # The claim scans queued jobs only: a partial index keeps it a 10x matter (PERFORMANCE.md).
        Index(
            "ix_job_queued",
            "requires",
            "id",
            postgresql_where=text("status = 'queued'"),
            sqlite_where=text("status = 'queued'"),
        ),
        Index("ix_job_status_lease_expires_at", "status", "lease_expires_at"),
        Index("ix_job_version_id", "version_id"),
    )

    version_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("submission_version.id"))
    owner_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("user.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    seed: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(24), default=JobStatus.queued.value)
    requires: Mapped[str] = mapped_column(String(200), default="")
    attempt: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=3)
    lease_token: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[dt.datetime | None]
    worker_id: Mapped[str | None] = mapped_column(String(64))
    worker_token_id: Mapped[int | None] = mapped_column(BigIntPK, ForeignKey("worker_token.id"))
    phase: Mapped[str | None] = mapped_column(String(16))
    log_tail: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class RunResult(IdMixin, Base):
    __tablename__ = "run_result"
    __table_args__ = (UniqueConstraint("job_id", "attempt"),)

    job_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("job.id"))
    attempt: Mapped[int]
    lease_token: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str | None] = mapped_column(Text)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    curve: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    self_reported: Mapped[bool] = mapped_column(default=False)
    phases: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    provenance: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    worker_id: Mapped[str | None] = mapped_column(String(64))
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
