"""Webhooks and their delivery log on the wire."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field

from app.core.schemas import RequestModel, ResponseModel

EventName = Literal[
    "job.finished",
    "verdict.published",
    "review.received",
    "comment.reply",
    "challenge.attempt_judged",
]


class WebhookCreate(RequestModel):
    url: str = Field(min_length=8, max_length=2000, examples=["https://ci.example.org/reprise"])
    events: list[EventName] | None = Field(
        default=None, min_length=1, description="default: every event"
    )
    description: str = Field(default="", max_length=200)


class WebhookOut(ResponseModel):
    id: int
    url: str
    events: list[str]
    description: str
    active: bool
    created_at: dt.datetime
    links: dict[str, str]


class WebhookCreated(WebhookOut):
    secret: str = Field(description="the signing secret; shown this once")


class DeliveryAttempt(ResponseModel):
    attempt: int
    at: dt.datetime
    status_code: int | None
    error: str | None
    address: str | None = None
    duration_ms: float | None = None


class DeliveryOut(ResponseModel):
    id: int
    event: str
    event_id: str
    status: str
    attempts: int
    next_attempt_at: dt.datetime | None = Field(description="when pending: the next try")
    last_status_code: int | None
    last_error: str | None
    delivered_at: dt.datetime | None
    created_at: dt.datetime
    log: list[DeliveryAttempt]
    payload: dict[str, Any]
