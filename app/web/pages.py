"""What the home, benchmark, technique and author pages show (their data, not their markup)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from app.benchmarks.registry import Catalog, CatalogEntry
from app.core.errors import NotFound
from app.core.pagination import PageParams, make_page
from app.leaderboard import repository as boards
from app.leaderboard import service as leaderboard
from app.leaderboard import stats, techniques
from app.leaderboard import summary_repository as summaries
from app.leaderboard.cache import GenerationCache
from app.leaderboard.repository import SORT_COLUMNS, BoardQuery
from app.scoring.explain import decimals_for
from app.submissions.access import is_maintainer
from app.users.models import User
from app.web import contributors, markdown, repository
from app.web.templating import VERDICT_LABELS

RECENT = 10
# The board's columns in page order: (sort key, heading, the first click sorts descending).
COLUMNS = (
    ("rank", "Rank", False),
    ("band", "Band", False),
    ("title", "Submission", False),
    ("author", "Author", False),
    ("version", "Version", True),
    ("date", "Scored", True),
    ("claimed", "Claimed", True),
    ("reproduced", "Reproduced", True),
    ("interval", "95% interval", False),
    ("verdict", "Verdict", False),
    ("quality", "Quality", True),
    ("seed_selection", "Flags", True),
)
_LICENCE = re.compile(r"\*\*Data and licence\.\*\*\s*(.+?)(?:\n\s*\n|\Z)", re.S)


async def home_context(
    session: AsyncSession, *, catalog: Catalog, cache: GenerationCache, generation: int
) -> dict[str, Any]:
    doc = await stats.all_stats(session, cache=cache, catalog=catalog, generation=generation)
    per_benchmark = {g.key: g for g in doc.groups["benchmarks"]}

    async def counts_now() -> dict[str, int]:
        return await repository.active_submissions_by_benchmark(session)

    # Submissions arrive without changing any board: their counts are kept for half a minute.
    counts = await cache.get_or_load(("submissions",), int(time.time() // 30), counts_now)
    rows = [
        {
            "entry": e,
            "submissions": counts.get(e.slug, 0),
            "stats": per_benchmark.get(e.slug),
        }
        for e in catalog.latest()
    ]
    recent = await boards.recent_entries(session, limit=RECENT)
    return {
        "overall": doc.overall,
        "benchmarks": rows,
        "recent": [(e, catalog.by_id.get(e.benchmark_id)) for e in recent],
        "verdict_labels": VERDICT_LABELS,
    }


def data_licence(description: str) -> str | None:
    """The benchmark description's "Data and licence" paragraph, if it has one."""
    found = _LICENCE.search(description)
    return " ".join(found.group(1).split()).replace("\\", "") if found else None


@dataclass(frozen=True)
class BoardFilters:
    verdicts: tuple[str, ...]
    min_quality: float | None
    tag: str | None
    author: str | None
    sort: str
    errors: tuple[str, ...]


def parse_filters(
    verdict: list[str], min_quality: str | None, tag: str | None, author: str | None, sort: str
) -> BoardFilters:
    """Form values as a browser sends them: empty fields mean "any", bad ones are reported."""
    errors: list[str] = []
    verdicts = tuple(v for v in verdict if v)
    unknown = [v for v in verdicts if v not in VERDICT_LABELS]
    if unknown:
        errors.append(f"unknown verdict {unknown[0]!r} ignored")
        verdicts = tuple(v for v in verdicts if v in VERDICT_LABELS)
    quality = None
    if min_quality not in (None, ""):
        try:
            quality = float(min_quality)
            if not 0 <= quality <= 100:
                raise ValueError
        except ValueError:
            errors.append("minimum quality must be a number from 0 to 100; ignored")
            quality = None
    if sort.lstrip("-") not in SORT_COLUMNS:
        errors.append(f"cannot sort by {sort!r}; sorted by rank")
        sort = "rank"
    return BoardFilters(
        verdicts=verdicts,
        min_quality=quality,
        tag=(tag or "").strip()[:40] or None,
        author=(author or "").strip()[:40] or None,
        sort=sort,
        errors=tuple(errors),
    )


async def benchmark_context(
    session: AsyncSession,
    *,
    cache: GenerationCache,
    entry: CatalogEntry,
    catalog: Catalog,
    metric: str | None,
    filters: BoardFilters,
    page: PageParams,
    generation: int,
) -> dict[str, Any]:
    board = await leaderboard.open_board(
        session, cache=cache, entry=entry, metric=metric, generation=generation
    )
    query = BoardQuery(
        benchmark_id=entry.id,
        metric=board.metric,
        verdicts=filters.verdicts,
        min_quality=filters.min_quality,
        tag=filters.tag,
        author=filters.author,
        sort=filters.sort.lstrip("-"),
        descending=filters.sort.startswith("-"),
    )
    rows, total = await leaderboard.board_rows(
        session, board, query, limit=page.limit, offset=page.offset
    )
    spec = entry.manifest.metric(board.metric)
    export = [("version", entry.version), ("metric", board.metric), ("sort", filters.sort)]
    export += [("verdict", v) for v in filters.verdicts]
    export += [
        (k, v)
        for k, v in (
            ("min_quality", filters.min_quality),
            ("tag", filters.tag),
            ("author", filters.author),
        )
        if v is not None
    ]
    export += [("limit", page.limit), ("offset", page.offset), ("format", "csv")]
    return {
        "entry": entry,
        "bench": entry.manifest,
        "versions": catalog.versions(entry.slug),
        "description_html": markdown.render(entry.manifest.description),
        "licence": data_licence(entry.manifest.description),
        "board": board,
        "spec": spec,
        "decimals": decimals_for(spec.tolerance) if spec else 4,
        "rows": rows,
        "listing": make_page(rows, params=page, total=total),
        "filters": filters,
        "columns": COLUMNS,
        "verdict_labels": VERDICT_LABELS,
        "csv_url": f"/v1/benchmarks/{entry.slug}/leaderboard?{urlencode(export)}",
        "chart_url": f"/plots/benchmarks/{entry.slug}/{entry.version}/{board.metric}.svg"
        f"?g={board.generation}",
    }


async def user_context(
    session: AsyncSession, *, name: str, viewer: User | None, page: PageParams
) -> dict[str, Any]:
    user = await summaries.user_by_name(session, name)
    if user is None:
        raise NotFound(f"no user {name!r}")
    own = viewer is not None and (viewer.id == user.id or is_maintainer(viewer))
    rows, total = await summaries.submissions_of(
        session, owner_id=user.id, include_withdrawn=own, limit=page.limit, offset=page.offset
    )
    return {
        "profile": user,
        "rate": await stats.author_stats(session, owner_id=user.id, name=user.name),
        "techniques": await summaries.techniques_of(session, user.id),
        "rows": rows,
        "listing": make_page(rows, params=page, total=total),
        "verdict_labels": VERDICT_LABELS,
        # Replications and reviews by this person (templates/user_reviews.html).
        "reviews": await contributors.profile(session, user=user, include_withdrawn=own),
    }


async def techniques_context(
    session: AsyncSession,
    *,
    cache: GenerationCache,
    min_benchmarks: int,
    page: PageParams,
    generation: int,
) -> dict[str, Any]:
    rows, total = await techniques.technique_rows(
        session,
        cache=cache,
        generation=generation,
        min_benchmarks=min_benchmarks,
        author=None,
        limit=page.limit,
        offset=page.offset,
    )
    return {
        "rows": rows,
        "listing": make_page(rows, params=page, total=total),
        "taus": techniques.profile_taus(),
        "min_benchmarks": min_benchmarks,
    }
