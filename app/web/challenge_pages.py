"""What the challenge pages show: the list (filtered like ``GET /v1/challenges``) and one
challenge with its claim, every attempt, the pooled estimate per metric and the consensus line.

The numbers are the API's: attempts are classified, pooled and judged by
``app.challenges.views.assess`` (pooling.py underneath), never recomputed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.benchmarks.registry import Catalog
from app.challenges import loading, repository, service, views
from app.challenges.repository import ChallengeFilter
from app.core.db import utcnow
from app.core.pagination import PageParams, make_page
from app.scoring.explain import decimals_for

STATUSES = ("open", "closed")


@dataclass(frozen=True)
class ListFilters:
    status: str | None
    benchmark: str | None
    q: str | None
    errors: tuple[str, ...]


def parse_filters(status: str | None, benchmark: str | None, q: str | None) -> ListFilters:
    """Form values as a browser sends them: empty means "any", an unknown status is reported."""
    errors = []
    if status and status not in STATUSES:
        errors.append(f"unknown status {status!r} ignored")
        status = None
    return ListFilters(
        status=status or None,
        benchmark=(benchmark or "").strip() or None,
        q=(q or "").strip()[:100] or None,
        errors=tuple(errors),
    )


async def list_context(
    session: AsyncSession, *, catalog: Catalog, filters: ListFilters, page: PageParams
) -> dict[str, Any]:
    now = utcnow()
    found, total = await repository.list_challenges(
        session,
        ChallengeFilter(status=filters.status, benchmark=filters.benchmark, q=filters.q),
        now=now,
        limit=page.limit,
        offset=page.offset,
    )
    assessed = await loading.assessed(session, catalog, [c for c, _name in found])
    items = [
        views.summary(
            c,
            creator=name,
            bench=catalog.by_id[c.benchmark_id].manifest,
            assessment=assessed[c.id][0],
            now=now,
        )
        for c, name in found
    ]
    return {
        "challenges": items,
        "listing": make_page(items, params=page, total=total),
        "filters": filters,
        "statuses": STATUSES,
        "benchmarks": sorted({e.slug for e in catalog.latest()}),
    }


async def detail_context(
    session: AsyncSession, *, catalog: Catalog, challenge_id: int
) -> dict[str, Any]:
    """One challenge as ``GET /v1/challenges/{id}`` shows it, plus what a page links to."""
    challenge = await service.get(session, challenge_id)
    entry = catalog.by_id[challenge.benchmark_id]
    assessment, rows = (await loading.assessed(session, catalog, [challenge]))[challenge.id]
    detail = views.detail(
        challenge,
        creator=await repository.creator_name(session, challenge),
        bench=entry.manifest,
        assessment=assessment,
        now=utcnow(),
    )
    specs = views.metric_specs(challenge, entry.manifest)
    return {
        "challenge": detail,
        "entry": entry,
        "specs": specs,
        # Pooled numbers get one digit more than the margin's: their SE is below a run's sd.
        "decimals": {s.name: decimals_for(s.tolerance) + 1 for s in specs},
        "versions": {r.submission.id: r.version.number for r in rows},
    }
