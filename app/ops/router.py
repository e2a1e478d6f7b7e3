"""Liveness, readiness and metrics: no token needed."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from app.core.deps import DatabaseDep
from app.core.errors import problem
from app.jobs.repository import queue_depth_by_requirement

router = APIRouter(tags=["operations"])


@router.get("/healthz", operation_id="healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", operation_id="readyz", responses={503: {"description": "not ready"}})
async def readyz(request: Request, db: DatabaseDep) -> Response:
    """Ready to serve: the database answers, the catalog is loaded, the blob store is writable."""
    checks: dict[str, str] = {}
    try:
        async with db.session() as session:
            await session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # report, never raise: this is the probe
        checks["database"] = f"unavailable: {type(exc).__name__}"
    catalog = getattr(request.app.state, "catalog", None)
    checks["catalog"] = f"{len(catalog.by_id)} benchmarks" if catalog and catalog.by_id else "empty"
    blobs = request.app.state.blobs
    checks["blob_store"] = "ok" if blobs.root.is_dir() and blobs.scratch.is_dir() else "missing"
    ready = (
        checks["database"] == "ok" and checks["blob_store"] == "ok" and checks["catalog"] != "empty"
    )
    if not ready:
        return problem(
            503, type_="not-ready", title="Not ready", detail=str(checks), extra={"checks": checks}
        )
    return JSONResponse({"status": "ready", "checks": checks})


@router.get("/metrics", operation_id="metrics", response_class=Response)
async def metrics(request: Request, db: DatabaseDep) -> Response:
    """Prometheus metrics: queue depth by label set, lease expiries, job durations, verdicts."""
    m = request.app.state.metrics
    async with db.session() as session:
        depth = await queue_depth_by_requirement(session)
    m.queue_depth.clear()
    for status in ("queued", "running"):
        m.queue_depth.labels("", status).set(0)
    for (requires, status), n in depth.items():
        m.queue_depth.labels(requires, status).set(n)
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
