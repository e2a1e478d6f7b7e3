"""Users and tokens on the wire. Plaintext tokens appear only in the creation answers."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from app.core.schemas import RequestModel, ResponseModel


class UserCreate(RequestModel):
    name: str = Field(min_length=3, max_length=40, examples=["ada"])
    display_name: str | None = Field(default=None, max_length=120)


class UserOut(ResponseModel):
    id: int
    name: str
    display_name: str | None
    role: str
    created_at: dt.datetime


class TokenCreate(RequestModel):
    name: str = Field(default="default", min_length=1, max_length=80)


class TokenOut(ResponseModel):
    id: int
    name: str
    prefix: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


class TokenIssued(TokenOut):
    token: str = Field(description="the bearer token; shown this once, stored only as a hash")


class UserCreated(ResponseModel):
    user: UserOut
    token: TokenIssued


class WorkerCreate(RequestModel):
    name: str = Field(min_length=1, max_length=80)
    labels: dict[str, str] = Field(default_factory=dict)


class WorkerOut(ResponseModel):
    id: int
    name: str
    prefix: str
    labels: dict[str, str]
    created_at: dt.datetime
    last_seen_at: dt.datetime | None
    revoked_at: dt.datetime | None


class WorkerIssued(WorkerOut):
    token: str = Field(description="the worker's bearer token; shown this once")
