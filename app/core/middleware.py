"""Pure ASGI middleware: request ids, access logs, a body-size cap on every request, and no NUL
character in a URL."""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable
from urllib.parse import unquote_to_bytes

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.context import REQUEST_ID_SCOPE_KEY, request_id_var
from app.core.errors import PayloadTooLarge, problem
from app.core.text import NUL

logger = logging.getLogger("reprise.access")

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestContextMiddleware:
    """Give every request an id (``X-Request-ID``), echo it, and log one line per request."""

    def __init__(
        self, app: ASGIApp, *, on_finish: Callable[[str, str, int, float], None] | None = None
    ) -> None:
        self.app = app
        self.on_finish = on_finish

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else secrets.token_hex(8)
        token = request_id_var.set(request_id)
        # Also in the scope: a 500 is rendered outside this middleware, after the reset below.
        scope[REQUEST_ID_SCOPE_KEY] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            if self.on_finish is not None:
                self.on_finish(scope["method"], template, status, elapsed)
            logger.info(
                "%s %s -> %s in %.1f ms",
                scope["method"],
                scope["path"],
                status,
                elapsed * 1000,
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            request_id_var.reset(token)


class BodyLimitMiddleware:
    """Refuse bodies over a cap, with or without Content-Length (chunked uploads carry none).

    ``limit_for(method, path)`` returns the cap for a request; uploads get a larger one.
    """

    def __init__(self, app: ASGIApp, *, limit_for: Callable[[str, str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                too_big = False
            if too_big:
                await _reject(scope, receive, send, limit)
                return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(_too_large_detail(limit))
            return message

        await self.app(scope, counting_receive, send)


class BodyTooLarge(PayloadTooLarge, StarletteHTTPException):  # type: ignore[misc]
    """A body that outgrew its cap while being read, inside the app.

    Also a Starlette ``HTTPException``: FastAPI re-raises those from its JSON body parser, while
    any other exception there becomes a ``400 There was an error parsing the body`` -- which is
    what a chunked oversize JSON body used to get. Rendered by the ``ReproError`` handler (first
    in the MRO): a 413 problem document.
    """

    def __init__(self, detail: str) -> None:
        StarletteHTTPException.__init__(self, status_code=413, detail=detail)
        PayloadTooLarge.__init__(self, detail)


def _too_large_detail(limit: int) -> str:
    return f"the request body is larger than the limit of {limit} bytes"


async def _reject(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    response = problem(
        413,
        type_="payload-too-large",
        title="Payload too large",
        detail=_too_large_detail(limit),
        instance=scope["path"],
    )
    response.headers["connection"] = "close"
    await response(scope, receive, send)


class UrlNulMiddleware:
    """Refuse a URL whose path or query holds a NUL (``%00``) with a 422: every text parameter
    ends up in a database query, and PostgreSQL cannot hold the character (it was a 500)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        where = _nul_in_url(scope) if scope["type"] == "http" else None
        if where is None:
            await self.app(scope, receive, send)
            return
        message = "must not contain NUL characters (%00)"
        response = problem(
            422,
            type_="validation",
            title="Validation failed",
            detail=f"{where}: {message}",
            instance=scope["path"].replace(NUL, "%00"),
            errors=[{"loc": where, "msg": message}],
        )
        await response(scope, receive, send)


def _nul_in_url(scope: Scope) -> str | None:
    """Which part of the URL (``"path"``, ``"query"``) decodes to a NUL; None when neither."""
    if NUL in scope["path"]:
        return "path"
    if NUL.encode() in unquote_to_bytes(scope.get("query_string") or b""):
        return "query"
    return None
