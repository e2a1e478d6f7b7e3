"""Users, their API tokens, and worker tokens (stored as hashes only)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, BigIntPK, CreatedAtMixin, IdMixin


class Role(enum.StrEnum):
    member = "member"
    reviewer = "reviewer"
    maintainer = "maintainer"


class User(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "user"

    name: Mapped[str] = mapped_column(String(40), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(16), default=Role.member.value)
    disabled_at: Mapped[dt.datetime | None]


class ApiToken(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "api_token"

    user_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("user.id"), index=True)
    name: Mapped[str] = mapped_column(String(80), default="default")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]


class WorkerToken(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "worker_token"

    name: Mapped[str] = mapped_column(String(80))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(BigIntPK, ForeignKey("user.id"))
    last_seen_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]
