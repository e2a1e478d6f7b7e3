"""Catalog rows: one per (benchmark id, version), immutable once recorded."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, CreatedAtMixin, IdMixin


class Benchmark(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "benchmark"
    __table_args__ = (UniqueConstraint("slug", "version"),)

    slug: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int]
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # optimizer | command
    description: Mapped[str] = mapped_column(Text)
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    ingest_bundle_sha256: Mapped[str] = mapped_column(String(64))
    score_bundle_sha256: Mapped[str] = mapped_column(String(64))
    requires: Mapped[str] = mapped_column(String(200), default="")
    last_seen_at: Mapped[dt.datetime | None]
