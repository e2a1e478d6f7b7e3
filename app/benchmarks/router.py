"""The benchmark catalog, public to read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy import func, select

from app.benchmarks.registry import Catalog, CatalogEntry
from app.benchmarks.schemas import BenchmarkDetail, BenchmarkSummary, MetricOut
from app.core.deps import SessionDep
from app.core.errors import NotFound
from app.core.pagination import Page, PageDep, make_page
from app.submissions.models import Submission, SubmissionStatus

router = APIRouter(prefix="/v1/benchmarks", tags=["benchmarks"])


def _summary(entry: CatalogEntry, catalog: Catalog, count: int) -> dict[str, object]:
    m = entry.manifest
    return {
        "id": m.id,
        "version": m.version,
        "versions": catalog.versions(m.id),
        "title": m.title,
        "kind": m.kind,
        "fresh_seeds": m.fresh_seeds,
        "metrics": [MetricOut.model_validate(x.model_dump()) for x in m.metrics],
        "submissions": count,
    }


async def _counts(session: SessionDep) -> dict[str, int]:
    rows = await session.execute(
        select(Submission.benchmark_slug, func.count())
        .where(Submission.status == SubmissionStatus.active.value)
        .group_by(Submission.benchmark_slug)
    )
    return {slug: n for slug, n in rows}


@router.get("", operation_id="list_benchmarks")
async def list_benchmarks(
    request: Request, session: SessionDep, page: PageDep
) -> Page[BenchmarkSummary]:
    """The latest version of every benchmark, with its metrics and submission count."""
    catalog: Catalog = request.app.state.catalog
    entries = catalog.latest()
    counts = await _counts(session)
    items = [
        BenchmarkSummary.model_validate(_summary(e, catalog, counts.get(e.slug, 0)))
        for e in entries[page.offset : page.offset + page.limit]
    ]
    return make_page(items, params=page, total=len(entries))


@router.get("/{benchmark_id}", operation_id="get_benchmark")
async def get_benchmark(
    benchmark_id: str,
    request: Request,
    session: SessionDep,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> BenchmarkDetail:
    """One benchmark (latest version unless ``version`` is given): protocol, limits, metrics."""
    catalog: Catalog = request.app.state.catalog
    entry = catalog.get(benchmark_id, version)
    if entry is None:
        raise NotFound(
            f"no benchmark {benchmark_id!r}" + (f" version {version}" if version else "")
        )
    counts = await _counts(session)
    m = entry.manifest
    return BenchmarkDetail.model_validate(
        {
            **_summary(entry, catalog, counts.get(entry.slug, 0)),
            "description": m.description,
            "limits": m.limits.model_dump(),
            "data": m.data.model_dump(),
            "content_hash": entry.content_hash,
        }
    )
