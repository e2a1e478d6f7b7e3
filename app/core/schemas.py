"""Base classes for API schemas: requests forbid unknown fields, responses read attributes."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from app.core.text import NUL_MESSAGE, has_nul, replace_nul


class RequestModel(BaseModel):
    """A request body: unknown fields are an error, so nobody sets a server-decided field.

    No text in a request may hold a NUL character: PostgreSQL cannot store one (a 500 where the
    client deserves a 422) and SQLite would keep it silently. Fields named in ``nul_replaced``
    carry text a package printed (logs), which the sender relays and cannot vouch for: their
    NULs become U+FFFD instead.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    nul_replaced: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*")  # after: nested request models have applied their own rules
    @classmethod
    def _no_nul(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name in cls.nul_replaced:
            return replace_nul(value)
        if has_nul(value):
            raise ValueError(NUL_MESSAGE)
        return value


class ResponseModel(BaseModel):
    """A response body, built from ORM objects or dicts."""

    model_config = ConfigDict(from_attributes=True)
