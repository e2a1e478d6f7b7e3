"""Append one audit event to the current unit of work (it commits with the change it records)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEvent
from app.core.context import request_id_var


def record(
    session: AsyncSession,
    *,
    actor_type: str,
    actor_id: int | None,
    action: str,
    object_type: str,
    object_id: object,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Who did what to which object; added to the session, written by its commit."""
    event = AuditEvent(
        actor_type=actor_type,
        actor_id=actor_id,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        detail=detail or {},
        request_id=request_id_var.get(),
    )
    session.add(event)
    return event
