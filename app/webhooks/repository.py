"""Queries about webhooks and their deliveries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.webhooks.models import DeliveryStatus, Webhook, WebhookDelivery


def subscribed_webhook_ids(session: Session, owner_ids: Sequence[int], event: str) -> list[int]:
    """Active webhooks of these owners that subscribe to ``event`` (sync: used in a flush)."""
    if not owner_ids:
        return []
    rows = session.execute(
        select(Webhook.id, Webhook.events)
        .where(Webhook.owner_id.in_(list(owner_ids)), Webhook.active.is_(True))
        .order_by(Webhook.id)
    )
    return [hook_id for hook_id, events in rows if event in (events or [])]


async def count_of_owner(session: AsyncSession, owner_id: int) -> int:
    stmt = select(func.count()).select_from(Webhook).where(Webhook.owner_id == owner_id)
    return int((await session.execute(stmt)).scalar_one())


async def get_webhook(session: AsyncSession, webhook_id: int) -> Webhook | None:
    return await session.get(Webhook, webhook_id)


async def list_webhooks(
    session: AsyncSession, owner_id: int, *, limit: int, offset: int
) -> tuple[list[Webhook], int]:
    base = select(Webhook).where(Webhook.owner_id == owner_id)
    total = (await session.execute(select(func.count()).select_from(base.subquery()))).scalar_one()
    rows = await session.execute(base.order_by(Webhook.id).limit(limit).offset(offset))
    return list(rows.scalars()), int(total)


async def delete_webhook(session: AsyncSession, webhook: Webhook) -> None:
    await session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id))
    await session.delete(webhook)


async def list_deliveries(
    session: AsyncSession, webhook_id: int, *, status: str | None, limit: int, offset: int
) -> tuple[list[WebhookDelivery], int]:
    base = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    if status is not None:
        base = base.where(WebhookDelivery.status == status)
    total = (await session.execute(select(func.count()).select_from(base.subquery()))).scalar_one()
    rows = await session.execute(
        base.order_by(WebhookDelivery.id.desc()).limit(limit).offset(offset)
    )
    return list(rows.scalars()), int(total)


def _due(now: dt.datetime):  # type: ignore[no-untyped-def]
    return or_(
        (WebhookDelivery.status == DeliveryStatus.pending.value)
        & (WebhookDelivery.next_attempt_at <= now),
        (WebhookDelivery.status == DeliveryStatus.delivering.value)
        & (WebhookDelivery.locked_until < now),
    )


async def due_delivery_ids(session: AsyncSession, now: dt.datetime, limit: int) -> list[int]:
    """Deliveries due now: pending ones whose time came, claimed ones whose lock lapsed."""
    rows = await session.execute(
        select(WebhookDelivery.id)
        .where(_due(now))
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
    )
    return list(rows.scalars())


async def claim(
    session: AsyncSession, delivery_id: int, now: dt.datetime, locked_until: dt.datetime
) -> bool:
    """Compare-and-set: take a due delivery for this loop (False if another loop took it)."""
    result = await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, _due(now))
        .values(
            status=DeliveryStatus.delivering.value,
            locked_until=locked_until,
            attempts=WebhookDelivery.attempts + 1,
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


async def deliveries_with_webhooks(
    session: AsyncSession, ids: Sequence[int]
) -> list[tuple[WebhookDelivery, Webhook]]:
    if not ids:
        return []
    rows = await session.execute(
        select(WebhookDelivery, Webhook)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(WebhookDelivery.id.in_(list(ids)))
        .order_by(WebhookDelivery.id)
    )
    return [(d, w) for d, w in rows]


async def get_delivery(session: AsyncSession, delivery_id: int) -> WebhookDelivery | None:
    return await session.get(WebhookDelivery, delivery_id)
