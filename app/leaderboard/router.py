"""Leaderboards, the cross-benchmark ranking, reproduction-rate statistics and badges."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from app.benchmarks.registry import Catalog, CatalogEntry
from app.core.deps import DatabaseDep, SessionDep
from app.core.errors import NotFound
from app.core.pagination import Page, PageDep, PaginationInfo, make_page
from app.leaderboard import badges, service, stats, techniques
from app.leaderboard.cache import CacheDep
from app.leaderboard.export import to_csv
from app.leaderboard.repository import SORT_COLUMNS, BoardQuery
from app.leaderboard.schemas import (
    BoardInfo,
    GroupStats,
    LeaderboardPage,
    LeaderboardRow,
    StatsOut,
    TechniquePage,
)
from app.scoring.comparison import Verdict

router = APIRouter(tags=["leaderboard"])

SORT_PATTERN = r"^-?(" + "|".join(SORT_COLUMNS) + r")$"
SortParam = Annotated[
    str,
    Query(
        pattern=SORT_PATTERN,
        description="a column, '-' first for descending: rank (default, best first), band, "
        "title, author, version, date, claimed, reproduced, interval (width), verdict, lean, "
        "quality, seed_selection, deterministic, self_reported",
    ),
]
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
BADGE_CACHE = "public, max-age=300, stale-while-revalidate=86400"


def catalog_entry(request: Request, slug: str, version: int | None) -> CatalogEntry:
    """The benchmark version a board is for (latest unless ``version``), or a 404."""
    catalog: Catalog = request.app.state.catalog
    entry = catalog.get(slug, version)
    if entry is None:
        raise NotFound(f"no benchmark {slug!r}" + (f" version {version}" if version else ""))
    return entry


def parse_sort(sort: str) -> tuple[str, bool]:
    return sort.lstrip("-"), sort.startswith("-")


def wants_csv(request: Request, format_: str | None) -> bool:
    if format_ is not None:
        return format_ == "csv"
    return "text/csv" in request.headers.get("accept", "")


@router.get(
    "/v1/benchmarks/{benchmark_id}/leaderboard",
    operation_id="get_leaderboard",
    response_model=LeaderboardPage,
    responses={200: {"content": {"text/csv": {}}}},
)
async def get_leaderboard(
    benchmark_id: str,
    request: Request,
    session: SessionDep,
    db: DatabaseDep,
    cache: CacheDep,
    page: PageDep,
    version: Annotated[int | None, Query(ge=1, description="benchmark version (latest)")] = None,
    metric: Annotated[str | None, Query(max_length=64)] = None,
    verdict: Annotated[list[Verdict] | None, Query()] = None,
    min_quality: Annotated[float | None, Query(ge=0, le=100)] = None,
    tag: Annotated[str | None, Query(max_length=40)] = None,
    author: Annotated[str | None, Query(max_length=40)] = None,
    sort: SortParam = "rank",
    format_: Annotated[Literal["json", "csv"] | None, Query(alias="format")] = None,
) -> LeaderboardPage | Response:
    """A benchmark's board: each submission's latest scored version, best reproduced mean first.

    ``rank`` counts the entries with a better reproduced mean; ``rank_band`` the entries whose
    whole 95% interval is better, so entries with overlapping intervals share a band. Ranks are
    against the whole board, also when filtered. ``?format=csv`` or ``Accept: text/csv`` give
    the same rows as CSV.
    """
    entry = catalog_entry(request, benchmark_id, version)
    generation = await service.current_generation(session, db, entry.id, cache=cache)
    board = await service.open_board(
        session, cache=cache, entry=entry, metric=metric, generation=generation
    )
    column, descending = parse_sort(sort)
    query = BoardQuery(
        benchmark_id=entry.id,
        metric=board.metric,
        verdicts=tuple(verdict or ()),
        min_quality=min_quality,
        tag=tag,
        author=author,
        sort=column,
        descending=descending,
    )
    rows, total = await service.board_rows(
        session, board, query, limit=page.limit, offset=page.offset
    )
    listing = make_page(rows, params=page, total=total)
    if wants_csv(request, format_):
        return _csv_response(rows, listing.pagination, request)
    return LeaderboardPage(
        items=listing.items,
        pagination=listing.pagination,
        board=BoardInfo(
            benchmark=entry.slug,
            version=entry.version,
            versions=request.app.state.catalog.versions(entry.slug),
            metric=board.metric,
            metrics=board.metrics,
            direction=board.direction,
            tolerance=board.tolerance,
            entries=board.total,
            ranked=len(board.index),
            generation=board.generation,
            sort=sort,
        ),
    )


def _csv_response(
    rows: list[LeaderboardRow], pagination: PaginationInfo, request: Request
) -> Response:
    headers = {"X-Total-Count": str(pagination.total), "Vary": "Accept"}
    if pagination.next_offset is not None:
        nxt = request.url.include_query_params(offset=pagination.next_offset)
        headers["Link"] = f'<{nxt}>; rel="next"'
    return Response(to_csv(rows), media_type=CSV_MEDIA_TYPE, headers=headers)


@router.get("/v1/leaderboard", operation_id="get_technique_leaderboard")
async def get_technique_leaderboard(
    session: SessionDep,
    db: DatabaseDep,
    cache: CacheDep,
    page: PageDep,
    min_benchmarks: Annotated[int, Query(ge=1, le=100)] = 1,
    author: Annotated[str | None, Query(max_length=40)] = None,
) -> TechniquePage:
    """Techniques (author + package name) ranked across benchmarks by the IQM of normalized runs.

    Each benchmark's primary metric is mapped to 0 at plain SGD (``reference_low``) and 1 at
    the best reference (``reference_high``); the interval is a 95% stratified bootstrap and
    ``profile`` the fraction of runs scoring above each of ``profile_taus``.
    """
    generation = await service.current_generation(session, db, None, cache=cache)
    rows, total = await techniques.technique_rows(
        session,
        cache=cache,
        generation=generation,
        min_benchmarks=min_benchmarks,
        author=author,
        limit=page.limit,
        offset=page.offset,
    )
    listing = make_page(rows, params=page, total=total)
    return TechniquePage(
        items=listing.items, pagination=listing.pagination, profile_taus=techniques.profile_taus()
    )


@router.get("/v1/stats", operation_id="get_stats")
async def get_stats(
    request: Request,
    session: SessionDep,
    db: DatabaseDep,
    cache: CacheDep,
    top: Annotated[int, Query(ge=1, le=100, description="tags and authors shown")] = 20,
) -> StatsOut:
    """Reproduction rates (reproduced or exceeded, of all but insufficient data) with Wilson
    95% intervals: overall, per benchmark, and the ``top`` tags and authors by scored claims."""
    generation = await service.current_generation(session, db, None, cache=cache)
    doc = await stats.all_stats(
        session, cache=cache, catalog=request.app.state.catalog, generation=generation
    )
    return StatsOut(
        overall=doc.overall,
        benchmarks=doc.groups["benchmarks"],
        tags=doc.groups["tags"][:top],
        authors=doc.groups["authors"][:top],
        groups_shown=top,
    )


@router.get("/v1/stats/{group}", operation_id="list_stats")
async def list_stats(
    group: Annotated[str, Path(description="benchmarks, tags or authors")],
    request: Request,
    session: SessionDep,
    db: DatabaseDep,
    cache: CacheDep,
    page: PageDep,
) -> Page[GroupStats]:
    """Every benchmark, tag or author with its reproduction rate, most scored claims first."""
    if group not in stats.GROUPS:
        raise NotFound(f"no statistics by {group!r}; there are: {', '.join(stats.GROUPS)}")
    generation = await service.current_generation(session, db, None, cache=cache)
    doc = await stats.all_stats(
        session, cache=cache, catalog=request.app.state.catalog, generation=generation
    )
    items = doc.groups[group]
    return make_page(items[page.offset : page.offset + page.limit], params=page, total=len(items))


@router.get(
    "/badges/submissions/{submission_id}.svg", response_class=Response, include_in_schema=False
)
async def get_badge(submission_id: int, request: Request, session: SessionDep) -> Response:
    """A README badge with the submission's standing verdict (pending, withdrawn too)."""
    badge = await badges.badge_for(session, submission_id=submission_id)
    headers = {"ETag": badge.etag, "Cache-Control": BADGE_CACHE}
    if badge.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(badge.svg, media_type="image/svg+xml", headers=headers)
