"""Replication challenges: a claim, a deadline, and the attempts linked to it.

An attempt is an ordinary submission whose ``challenge_id`` points here (app/submissions).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, BigIntPK, CreatedAtMixin, IdMixin


class Challenge(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "challenge"

    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("user.id"))
    # On a submission's claim (copied from ``source_version``), or on a paper's claim (both None).
    submission_id: Mapped[int | None] = mapped_column(
        BigIntPK, ForeignKey("submission.id"), index=True
    )
    source_version: Mapped[int | None]
    source_url: Mapped[str | None] = mapped_column(String(500))
    benchmark_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("benchmark.id"))
    benchmark_slug: Mapped[str] = mapped_column(String(64), index=True)
    claim: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"metrics": {name: claimed metric}}
    deadline: Mapped[dt.datetime] = mapped_column(index=True)
