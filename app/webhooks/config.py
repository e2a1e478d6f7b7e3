"""Webhook settings: the ``webhooks`` group of ``Settings`` (``REPRISE_WEBHOOKS__*``)."""

from __future__ import annotations

from app.core.config import WebhookSettings

__all__ = ["WebhookSettings", "webhook_settings"]


def webhook_settings(settings: object) -> WebhookSettings:
    """The ``webhooks`` group of the settings, or the defaults."""
    group = getattr(settings, "webhooks", None)
    if group is None:
        return WebhookSettings()
    if isinstance(group, WebhookSettings):
        return group
    return WebhookSettings.model_validate(group, from_attributes=True)
