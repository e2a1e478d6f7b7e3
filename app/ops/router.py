"""Liveness, readiness and metrics: no token needed."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from sqlalchemy import text

from app.core.db import utcnow
from app.core.deps import DatabaseDep
from app.core.errors import problem
from app.ops.metrics import DatabaseSnapshot, Metrics, RegistryCollector, SnapshotCollector
from app.ops.repository import database_snapshot

router = APIRouter(tags=["operations"])
logger = logging.getLogger(__name__)


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
    """Prometheus metrics: queue depth by label set, lease expiries, job durations, verdicts,
    request latencies (docs/observability.md)."""
    m: Metrics = request.app.state.metrics
    catalog = request.app.state.catalog
    slugs = {pk: entry.slug for pk, entry in catalog.by_id.items()}
    try:
        async with db.session() as session:
            snapshot = await database_snapshot(session, benchmark_slugs=slugs, now=utcnow())
    except Exception:  # the process metrics are still worth serving while the database is away
        logger.warning("metrics: the database did not answer", exc_info=True)
        snapshot = DatabaseSnapshot(up=False)
    scrape = CollectorRegistry()  # one per scrape: concurrent scrapes share no state
    scrape.register(RegistryCollector(m.registry))
    scrape.register(SnapshotCollector(snapshot))
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encode(scrape), media_type=content_type)
