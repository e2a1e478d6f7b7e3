"""Put the job id of a request that handles one job into every log record it writes.

The worker protocol and the public job view name their job in the path
(``/v1/worker/jobs/{id}/…``, ``/v1/jobs/{id}``); the lease route learns its job only once it
claimed one and sets ``job_id_var`` itself. This middleware sits outside the request-id
middleware, so the access-log line carries the job id too, and it resets the variable when the
request ends, so no id leaks into whatever runs next in the same context.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.context import job_id_var

JOB_PATH = re.compile(r"^/v1/(?:worker/)?jobs/(\d{1,18})(?:/|$)")


def job_id_of(path: str) -> int | None:
    """The job a request path addresses, if any."""
    match = JOB_PATH.match(path)
    return int(match.group(1)) if match else None


class JobContextMiddleware:
    """Bind ``job_id_var`` for the duration of an HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = job_id_var.set(job_id_of(scope["path"]))
        try:
            await self.app(scope, receive, send)
        finally:
            job_id_var.reset(token)
