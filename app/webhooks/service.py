"""Webhook rules: registration (with the SSRF check), listing, removal, the delivery log."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.users.models import User
from app.webhooks import events, repository, ssrf
from app.webhooks.config import WebhookSettings
from app.webhooks.models import Webhook, WebhookDelivery

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret


async def create(
    session: AsyncSession,
    *,
    user: User,
    url: str,
    event_names: Sequence[str] | None,
    description: str,
    config: WebhookSettings,
) -> Webhook:
    """Register a webhook after checking where it points; its secret is on the returned row."""
    if await repository.count_of_owner(session, user.id) >= config.max_per_user:
        raise Conflict(f"you have {config.max_per_user} webhooks, the limit; delete one first")
    try:
        target = await ssrf.vet(url, allow_private=config.allow_private_targets)
    except ssrf.TargetRefused as exc:
        raise ValidationFailed(str(exc), errors=[{"loc": "url", "msg": str(exc)}]) from exc
    webhook = Webhook(
        owner_id=user.id,
        url=str(target.url),
        events=sorted(set(event_names or events.EVENTS)),
        description=description,
        secret=SECRET_PREFIX + secrets.token_urlsafe(32),
        active=True,
    )
    session.add(webhook)
    await session.flush()
    audit.record(
        session,
        actor_type="user",
        actor_id=user.id,
        action="webhook.create",
        object_type="webhook",
        object_id=webhook.id,
        detail={"host": target.host, "events": webhook.events},
    )
    return webhook


async def get_owned(session: AsyncSession, *, user: User, webhook_id: int) -> Webhook:
    """One of the caller's webhooks; anyone else's is a 404."""
    webhook = await repository.get_webhook(session, webhook_id)
    if webhook is None or webhook.owner_id != user.id:
        raise NotFound(f"no webhook {webhook_id}")
    return webhook


async def delete(session: AsyncSession, *, user: User, webhook_id: int) -> None:
    """Remove a webhook and its delivery log; nothing more is sent to it."""
    webhook = await get_owned(session, user=user, webhook_id=webhook_id)
    await repository.delete_webhook(session, webhook)
    audit.record(
        session,
        actor_type="user",
        actor_id=user.id,
        action="webhook.delete",
        object_type="webhook",
        object_id=webhook_id,
    )


async def ping(session: AsyncSession, *, user: User, webhook_id: int) -> WebhookDelivery:
    """Queue a ``ping`` delivery to one's webhook (to test the receiver)."""
    webhook = await get_owned(session, user=user, webhook_id=webhook_id)
    await session.run_sync(lambda s: events.queue_ping(s, webhook.id))
    await session.flush()
    rows, _total = await repository.list_deliveries(
        session, webhook.id, status=None, limit=1, offset=0
    )
    return rows[0]
