"""The application factory: settings, database, blob store, catalog, routers, middleware."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from app import __version__
from app.benchmarks.catalog import sync_catalog
from app.benchmarks.registry import Catalog
from app.benchmarks.repository import all_benchmarks
from app.core.blobs import BlobStore
from app.core.config import Settings, get_settings
from app.core.db import Database
from app.core.errors import install_error_handlers
from app.core.logging import configure_logging
from app.core.middleware import BodyLimitMiddleware, RequestContextMiddleware, UrlNulMiddleware
from app.jobs.notifier import JobNotifier
from app.jobs.service import VersionFinishedHook, sweep_expired
from app.ops.instrument import instrument_database
from app.ops.logcontext import JobContextMiddleware
from app.ops.metrics import Metrics

logger = logging.getLogger(__name__)

UPLOAD_PATHS = ("/v1/submissions",)

# Every feature's router (``module`` or ``module:attribute``), in OpenAPI order.
FEATURE_ROUTERS = (
    "app.ops.router",
    "app.users.router",
    "app.benchmarks.router",
    "app.submissions.router",
    "app.jobs.router",
    "app.jobs.router:public",
    "app.tools.router",
    "app.leaderboard.router",
    "app.reviews.router",
    "app.challenges.router",
    "app.webhooks.router",
    "app.web.router",
)


def _body_limit(settings: Settings):  # type: ignore[no-untyped-def]
    upload_cap = settings.uploads.max_package_bytes + 1024 * 1024  # multipart framing
    json_cap = settings.uploads.max_json_bytes

    def limit_for(method: str, path: str) -> int:
        if method == "POST" and (
            path == "/v1/submissions"
            or (path.startswith("/v1/submissions/") and path.endswith("/versions"))
            or (path.startswith("/v1/challenges/") and path.endswith("/attempts"))
        ):
            return upload_cap
        return json_cap

    return limit_for


async def _sweeper(app: FastAPI) -> None:
    """Re-queue expired leases even when no worker is asking for work."""
    settings: Settings = app.state.settings
    while True:
        await asyncio.sleep(settings.queue.sweep_interval_s)
        try:
            await sweep_expired(  # expiries are counted by app.ops.instrument, on every path
                app.state.db, notifier=app.state.notifier, on_finished=app.state.on_version_finished
            )
        except Exception:
            logger.exception("lease sweep failed")


def _version_finished_hook() -> VersionFinishedHook | None:
    try:
        from app.verdicts.service import on_version_finished
    except ImportError:  # pragma: no cover - the statistics step is part of every install
        return None
    return on_version_finished


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build a Reprise API. Nothing touches the database until the app starts."""
    settings = settings or get_settings()
    configure_logging(level=settings.log_level, json_lines=settings.log_json)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(
            settings.effective_database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms
        )
        instrument_database(db, app.state.metrics)
        blobs = BlobStore(settings.blob_dir, settings.scratch_dir)
        async with db.session(write=True) as session:
            synced = await sync_catalog(
                session, blobs=blobs, benchmarks_dir=settings.benchmarks_dir
            )
            rows = await all_benchmarks(session)
        app.state.db = db
        app.state.blobs = blobs
        app.state.catalog = Catalog.from_rows(rows)
        notifier = JobNotifier()
        app.state.notifier = notifier
        if not db.is_sqlite:
            dsn = settings.effective_database_url.replace("postgresql+asyncpg://", "postgresql://")
            await notifier.start_postgres_listener(dsn)
        sweeper = asyncio.create_task(_sweeper(app))
        logger.info(
            "Reprise %s ready: %d benchmarks, database %s",
            __version__,
            len(synced),
            db.engine.url.render_as_string(hide_password=True),
        )
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await notifier.close()
            await db.dispose()

    app = FastAPI(
        title="Reprise",
        version=__version__,
        summary="Community replication challenges for machine-learning claims.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.on_version_finished = _version_finished_hook()
    install_error_handlers(app)
    app.add_middleware(UrlNulMiddleware)
    app.add_middleware(BodyLimitMiddleware, limit_for=_body_limit(settings))
    app.add_middleware(RequestContextMiddleware, on_finish=app.state.metrics.observe_request)
    app.add_middleware(JobContextMiddleware)  # outermost: the access log sees the job id

    for spec in FEATURE_ROUTERS:
        module, _, attr = spec.partition(":")
        app.include_router(getattr(importlib.import_module(module), attr or "router"))
    return app
