"""Signatures on outgoing webhooks: ``Reprise-Signature: t=<unix seconds>,v1=<hex>``.

``v1`` is HMAC-SHA256, keyed with the webhook's secret, of ``f"{t}.".encode() + raw_body``.
The timestamp is signed too, so a captured delivery cannot be replayed later than the
receiver's tolerance (docs/webhooks.md has the receiver's recipe; ``verify`` is the same).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

SIGNATURE_HEADER = "Reprise-Signature"
EVENT_HEADER = "Reprise-Event"
DELIVERY_HEADER = "Reprise-Delivery"
DEFAULT_TOLERANCE_S = 300


def canonical_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact, key-sorted JSON."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={t},v1={sign(secret, t, body)}"


def verify(
    secret: str,
    body: bytes,
    header: str,
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` within ``tolerance_s`` of ``now``."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance_s:
        return False
    expected = sign(secret, t, body)
    return any(
        hmac.compare_digest(expected, v.strip())
        for k, v in (p.split("=", 1) for p in header.split(",") if "=" in p)
        if k.strip() == "v1"
    )
