"""Context variables carried through a request or a unit of work (for logs and errors)."""

from __future__ import annotations

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
job_id_var: ContextVar[int | None] = ContextVar("job_id", default=None)

# The request id in the ASGI scope too: a 500 is rendered after the contextvar was reset.
REQUEST_ID_SCOPE_KEY = "reprise.request_id"
