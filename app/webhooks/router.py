"""Outgoing webhooks of the caller (``/v1/me/webhooks``), and the delivery loop's lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, Query, Response, status

from app.core.deps import CurrentUser, SessionDep, SettingsDep
from app.core.pagination import Page, PageDep, make_page
from app.webhooks import repository, service
from app.webhooks.config import webhook_settings
from app.webhooks.delivery import Deliverer
from app.webhooks.models import Webhook, WebhookDelivery
from app.webhooks.schemas import DeliveryOut, WebhookCreate, WebhookCreated, WebhookOut


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run the delivery loop while the app runs (merged inside the app's own lifespan)."""
    deliverer = Deliverer(app.state.db, webhook_settings(app.state.settings))
    app.state.webhook_deliverer = deliverer
    deliverer.start()
    try:
        yield
    finally:
        await deliverer.stop()


router = APIRouter(prefix="/v1/me/webhooks", tags=["webhooks"], lifespan=lifespan)


def _out(webhook: Webhook) -> dict[str, object]:
    return {
        "id": webhook.id,
        "url": webhook.url,
        "events": list(webhook.events),
        "description": webhook.description,
        "active": webhook.active,
        "created_at": webhook.created_at,
        "links": {
            "self": f"/v1/me/webhooks/{webhook.id}",
            "deliveries": f"/v1/me/webhooks/{webhook.id}/deliveries",
        },
    }


def _delivery(d: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut.model_validate(
        {
            "id": d.id,
            "event": d.event,
            "event_id": d.event_id,
            "status": d.status,
            "attempts": d.attempts,
            "next_attempt_at": d.next_attempt_at if d.status == "pending" else None,
            "last_status_code": d.last_status_code,
            "last_error": d.last_error,
            "delivered_at": d.delivered_at,
            "created_at": d.created_at,
            "log": d.log,
            "payload": d.payload,
        }
    )


@router.post("", status_code=status.HTTP_201_CREATED, operation_id="create_webhook")
async def create_webhook(
    body: WebhookCreate, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> WebhookCreated:
    """Register a webhook; the answer carries its signing secret, shown this once."""
    webhook = await service.create(
        session,
        user=user,
        url=body.url,
        event_names=body.events,
        description=body.description,
        config=webhook_settings(settings),
    )
    return WebhookCreated.model_validate({**_out(webhook), "secret": webhook.secret})


@router.get("", operation_id="list_webhooks")
async def list_webhooks(user: CurrentUser, session: SessionDep, page: PageDep) -> Page[WebhookOut]:
    rows, total = await repository.list_webhooks(
        session, user.id, limit=page.limit, offset=page.offset
    )
    return make_page([WebhookOut.model_validate(_out(w)) for w in rows], params=page, total=total)


@router.get("/{webhook_id}", operation_id="get_webhook")
async def get_webhook(webhook_id: int, user: CurrentUser, session: SessionDep) -> WebhookOut:
    webhook = await service.get_owned(session, user=user, webhook_id=webhook_id)
    return WebhookOut.model_validate(_out(webhook))


@router.delete(
    "/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, operation_id="delete_webhook"
)
async def delete_webhook(webhook_id: int, user: CurrentUser, session: SessionDep) -> Response:
    await service.delete(session, user=user, webhook_id=webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{webhook_id}/deliveries", operation_id="list_webhook_deliveries")
async def list_deliveries(
    webhook_id: int,
    user: CurrentUser,
    session: SessionDep,
    page: PageDep,
    status_: Annotated[
        Literal["pending", "delivering", "succeeded", "failed"] | None, Query(alias="status")
    ] = None,
) -> Page[DeliveryOut]:
    """The delivery log, newest first: every attempt with its answer or error."""
    webhook = await service.get_owned(session, user=user, webhook_id=webhook_id)
    rows, total = await repository.list_deliveries(
        session, webhook.id, status=status_, limit=page.limit, offset=page.offset
    )
    return make_page([_delivery(d) for d in rows], params=page, total=total)


@router.post(
    "/{webhook_id}/ping", status_code=status.HTTP_202_ACCEPTED, operation_id="ping_webhook"
)
async def ping_webhook(webhook_id: int, user: CurrentUser, session: SessionDep) -> DeliveryOut:
    """Queue a signed ``ping`` to the webhook; watch its delivery log for the answer."""
    return _delivery(await service.ping(session, user=user, webhook_id=webhook_id))
