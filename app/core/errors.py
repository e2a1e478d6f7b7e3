"""Domain errors and their RFC 9457 ``application/problem+json`` rendering.

Services raise these; they never raise ``HTTPException``. Each class carries its status and a
stable ``type`` slug, so clients can branch on ``type`` and people can read ``detail``::

    ReproError                       500 internal
    ├── BadRequest                   400 bad-request
    │   └── ValidationFailed         422 validation  (errors: [{loc, msg}])
    ├── Unauthorized                 401 unauthorized
    ├── Forbidden                    403 forbidden
    ├── NotFound                     404 not-found
    ├── Conflict                     409 conflict
    │   └── StaleLease               409 stale-lease
    ├── PayloadTooLarge              413 payload-too-large
    ├── UnsupportedMediaType         415 unsupported-media-type
    └── TooManyRequests              429 quota  (Retry-After)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.context import REQUEST_ID_SCOPE_KEY, request_id_var

logger = logging.getLogger(__name__)

PROBLEM_BASE = "https://reprise.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


class ReproError(Exception):
    """Base of every error a client may see."""

    status = 500
    type = "internal"
    title = "Internal error"

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors) if errors else None
        self.headers = headers or {}
        self.extra = extra


class BadRequest(ReproError):
    status, type, title = 400, "bad-request", "Bad request"


class ValidationFailed(BadRequest):
    status, type, title = 422, "validation", "Validation failed"


class Unauthorized(ReproError):
    status, type, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str = "a valid bearer token is required", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kw)


class Forbidden(ReproError):
    status, type, title = 403, "forbidden", "Forbidden"


class NotFound(ReproError):
    status, type, title = 404, "not-found", "Not found"


class Conflict(ReproError):
    status, type, title = 409, "conflict", "Conflict"


class StaleLease(Conflict):
    type, title = "stale-lease", "Lease is no longer valid"


class PayloadTooLarge(ReproError):
    status, type, title = 413, "payload-too-large", "Payload too large"


class UnsupportedMediaType(ReproError):
    status, type, title = 415, "unsupported-media-type", "Unsupported media type"


class TooManyRequests(ReproError):
    status, type, title = 429, "quota", "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, **kw: Any) -> None:
        kw.setdefault("headers", {"Retry-After": str(max(1, int(retry_after)))})
        super().__init__(detail, **kw)


def problem(
    status: int,
    *,
    type_: str,
    title: str,
    detail: str,
    instance: str | None = None,
    errors: Sequence[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> JSONResponse:
    """Render one problem document with the current request id."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + type_,
        "title": title,
        "status": status,
        "detail": detail,
        "request_id": request_id or request_id_var.get(),
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = list(errors)
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _loc(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem document; some types add members (code, entry, lint...).",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "request_id": {"type": ["string", "null"]},
        "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
    "additionalProperties": True,
}


def document_problems(app: FastAPI) -> None:
    """Publish the errors as they are sent: FastAPI documents a ``422`` as ``application/json``
    ``HTTPValidationError`` (``detail`` a list), which this app never answers. Every operation
    gets its 422 and a ``default`` response as ``application/problem+json`` ``Problem``."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = build()
        problem_ref = {"$ref": "#/components/schemas/Problem"}
        content = {PROBLEM_MEDIA_TYPE: {"schema": problem_ref}}
        for operations in doc.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                if "422" in responses:
                    responses["422"] = {"description": "Validation failed", "content": content}
                error = {"description": "An error, as a problem document", "content": content}
                responses.setdefault("default", error)
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        schemas["Problem"] = PROBLEM_SCHEMA
        text = repr(doc["paths"])
        for unused in ("HTTPValidationError", "ValidationError"):
            if f"#/components/schemas/{unused}'" not in text:
                schemas.pop(unused, None)
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


def install_error_handlers(app: FastAPI) -> None:
    """Every error a client sees is problem+json; no traceback ever leaves the process."""
    document_problems(app)

    @app.exception_handler(ReproError)
    async def _repro(request: Request, exc: ReproError) -> JSONResponse:
        return problem(
            exc.status,
            type_=exc.type,
            title=exc.title,
            detail=exc.detail,
            instance=request.url.path,
            errors=exc.errors,
            headers=exc.headers,
            extra=exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": _loc(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"loc": "body", "msg": "invalid"}
        return problem(
            422,
            type_="validation",
            title="Validation failed",
            detail=f"{first['loc']}: {first['msg']}",
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http")
        return problem(
            exc.status_code,
            type_=slug,
            title=str(exc.detail) if isinstance(exc.detail, str) else "HTTP error",
            detail=str(exc.detail),
            instance=request.url.path,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(OverflowError)
    @app.exception_handler(DBAPIError)
    async def _out_of_range(request: Request, exc: Exception) -> JSONResponse:
        # A number the client sent (an id in the path, an offset...) that no database column
        # holds (SQLite: OverflowError; PostgreSQL: a DBAPIError caused by one).
        if not _caused_by_overflow(exc):
            raise exc  # any other database error: a 500, as before
        return problem(
            422,
            type_="validation",
            title="Validation failed",
            detail="a number in the request is out of range (integers are at most 2**63 - 1)",
            instance=request.url.path,
            errors=[{"loc": "request", "msg": "integer out of range"}],
        )

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        # Rendered by Starlette's outermost middleware, after the request-context middleware
        # returned: the request id comes from the scope, and the header is set here.
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        request_id = request.scope.get(REQUEST_ID_SCOPE_KEY)
        return problem(
            500,
            type_="internal",
            title="Internal error",
            detail="An internal error occurred; quote the request id when reporting it.",
            request_id=request_id,
            headers={"X-Request-ID": request_id} if request_id else None,
        )


def _caused_by_overflow(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, OverflowError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
