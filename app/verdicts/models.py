"""One verdict per scored version, and one row per claimed metric with its key numbers.

The full ``score`` document (every number, the quality parts with reasons, the explanation) is
kept as JSON; the columns leaderboards filter and sort on are copied out and indexed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, BigIntPK, IdMixin, utcnow


class Verdict(IdMixin, Base):
    __tablename__ = "verdict"

    version_id: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("submission_version.id"), unique=True
    )
    submission_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("submission.id"), index=True)
    benchmark_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("benchmark.id"))
    claim_verdict: Mapped[str] = mapped_column(String(24))
    claim_lean: Mapped[str | None] = mapped_column(String(8))
    point_rule: Mapped[bool | None]
    quality: Mapped[float] = mapped_column(Float)
    primary_metric: Mapped[str | None] = mapped_column(String(64))
    reproduced_mean: Mapped[float | None] = mapped_column(Float)
    ci95_low: Mapped[float | None] = mapped_column(Float)
    ci95_high: Mapped[float | None] = mapped_column(Float)
    claimed_mean: Mapped[float | None] = mapped_column(Float)
    seed_selection_flag: Mapped[bool] = mapped_column(default=False)
    deterministic: Mapped[bool | None]
    exactly_reproducible: Mapped[bool | None]
    self_reported: Mapped[bool] = mapped_column(default=False)
    failed_runs: Mapped[int] = mapped_column(default=0)
    scoring_version: Mapped[str] = mapped_column(String(16))
    explanation: Mapped[str] = mapped_column(Text)
    score: Mapped[dict[str, Any]] = mapped_column(JSON)
    scored_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_verdict_benchmark_id_claim_verdict", "benchmark_id", "claim_verdict"),
    )


class VerdictMetric(IdMixin, Base):
    __tablename__ = "verdict_metric"
    __table_args__ = (UniqueConstraint("verdict_id", "name"),)

    verdict_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("verdict.id"))
    name: Mapped[str] = mapped_column(String(64))
    primary: Mapped[bool]
    verdict: Mapped[str] = mapped_column(String(24))
    lean: Mapped[str | None] = mapped_column(String(8))
    mode: Mapped[str] = mapped_column(String(16))
    delta: Mapped[float | None] = mapped_column(Float)
    se: Mapped[float | None] = mapped_column(Float)
    df: Mapped[float | None] = mapped_column(Float)
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    p_tost: Mapped[float | None] = mapped_column(Float)
    p_worse: Mapped[float | None] = mapped_column(Float)
    p_better: Mapped[float | None] = mapped_column(Float)
    reproduced_mean: Mapped[float | None] = mapped_column(Float)
    reproduced_sd: Mapped[float | None] = mapped_column(Float)
    n_reproduced: Mapped[int]
    claimed_mean: Mapped[float] = mapped_column(Float)
    tolerance: Mapped[float] = mapped_column(Float)
