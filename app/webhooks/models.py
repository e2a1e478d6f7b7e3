"""Outgoing webhooks and their deliveries (the delivery table is also the retry queue)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, BigIntPK, CreatedAtMixin, IdMixin, utcnow


class DeliveryStatus(enum.StrEnum):
    pending = "pending"  # due at next_attempt_at
    delivering = "delivering"  # claimed by a delivery loop until locked_until
    succeeded = "succeeded"
    failed = "failed"  # gave up after the last attempt


class Webhook(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "webhook"

    owner_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("user.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(200), default="")
    events: Mapped[list[str]] = mapped_column(JSON)
    # Needed in clear to sign; shown once at creation, never returned again.
    secret: Mapped[str] = mapped_column(String(80))
    active: Mapped[bool] = mapped_column(default=True)


class WebhookDelivery(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "webhook_delivery"
    __table_args__ = (
        Index("ix_webhook_delivery_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_webhook_delivery_webhook_id_id", "webhook_id", "id"),
    )

    webhook_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("webhook.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(40))
    event_id: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.pending.value)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[dt.datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    log: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    delivered_at: Mapped[dt.datetime | None]
