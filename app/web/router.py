"""The pages (server-rendered, readable without JavaScript), their stylesheet and charts."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import APIRoute

from app.benchmarks.registry import Catalog
from app.core.deps import DatabaseDep, OptionalUser, SessionDep
from app.core.errors import NotFound, ReproError
from app.core.pagination import PageDep
from app.leaderboard.cache import CacheDep
from app.leaderboard.router import catalog_entry
from app.leaderboard.service import current_generation, open_board
from app.submissions import access
from app.submissions import repository as submissions
from app.web import challenge_pages, charts, community, contributors, pages
from app.web.plot_cache import PlotCache, get_plot_cache
from app.web.submission_page import submission_context
from app.web.templating import STATIC, render


class PageRoute(APIRoute):
    """A page (``response_class=HTMLResponse``) answers NotFound with the HTML error page; the
    stylesheet and the charts keep the API's problem+json."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.response_class is not HTMLResponse:
            return handler

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except NotFound as exc:
                return _error(request, exc)

        return page


router = APIRouter(include_in_schema=False, route_class=PageRoute)

PLOT_CACHE = "public, max-age=86400"
BOARD_CHART_CACHE = "public, max-age=60"
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}


def _error(request: Request, exc: ReproError) -> HTMLResponse:
    return render(
        request,
        "error.html",
        {"status": exc.status, "title": exc.title, "detail": exc.detail},
        status_code=exc.status,
    )


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, session: SessionDep, db: DatabaseDep, cache: CacheDep) -> Response:
    generation = await current_generation(session, db, None, cache=cache)
    catalog: Catalog = request.app.state.catalog
    context = await pages.home_context(session, catalog=catalog, cache=cache, generation=generation)
    return render(request, "home.html", context)


@router.get("/benchmarks/{slug}", response_class=HTMLResponse)
async def benchmark_page(
    slug: str,
    request: Request,
    session: SessionDep,
    db: DatabaseDep,
    cache: CacheDep,
    page: PageDep,
    version: Annotated[int | None, Query(ge=1)] = None,
    metric: Annotated[str | None, Query(max_length=64)] = None,
    verdict: Annotated[list[str] | None, Query(max_length=5)] = None,
    min_quality: Annotated[str | None, Query(max_length=16)] = None,
    tag: Annotated[str | None, Query(max_length=80)] = None,
    author: Annotated[str | None, Query(max_length=80)] = None,
    sort: Annotated[str, Query(max_length=40)] = "rank",
) -> Response:
    entry = catalog_entry(request, slug, version)
    generation = await current_generation(session, db, entry.id, cache=cache)
    filters = pages.parse_filters(verdict or [], min_quality, tag, author, sort)
    context = await pages.benchmark_context(
        session,
        cache=cache,
        entry=entry,
        catalog=request.app.state.catalog,
        metric=metric or None,
        filters=filters,
        page=page,
        generation=generation,
    )
    return render(request, "benchmark.html", context)


@router.get("/submissions/{submission_id}", response_class=HTMLResponse)
async def submission_page(
    submission_id: int,
    request: Request,
    session: SessionDep,
    user: OptionalUser,
    page: PageDep,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """One version of a submission, its reviews, and one page of its discussion threads."""
    submission = await submissions.get_submission(session, submission_id)
    if submission is None or not access.can_read(submission, user):
        raise NotFound(f"There is no submission {submission_id}.")
    context = await submission_context(
        session, catalog=request.app.state.catalog, submission=submission, number=version
    )
    context |= await community.review_context(
        session,
        submission=submission,
        version_number=context["version"].number,
        viewer=user,
        page=page,
    )
    return render(request, "submission.html", context)


@router.get("/users/{name}", response_class=HTMLResponse)
async def user_page(
    name: str,
    request: Request,
    session: SessionDep,
    db: DatabaseDep,
    cache: CacheDep,
    user: OptionalUser,
    page: PageDep,
) -> Response:
    await current_generation(session, db, None, cache=cache)
    context = await pages.user_context(session, name=name, viewer=user, page=page)
    return render(request, "user.html", context)


@router.get("/challenges", response_class=HTMLResponse)
async def challenges_page(
    request: Request,
    session: SessionDep,
    page: PageDep,
    status: Annotated[str | None, Query(max_length=16)] = None,
    benchmark: Annotated[str | None, Query(max_length=64)] = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """Challenges, newest first, filtered like ``GET /v1/challenges``."""
    context = await challenge_pages.list_context(
        session,
        catalog=request.app.state.catalog,
        filters=challenge_pages.parse_filters(status, benchmark, q),
        page=page,
    )
    return render(request, "challenges.html", context)


@router.get("/challenges/{challenge_id}", response_class=HTMLResponse)
async def challenge_page(challenge_id: int, request: Request, session: SessionDep) -> Response:
    context = await challenge_pages.detail_context(
        session, catalog=request.app.state.catalog, challenge_id=challenge_id
    )
    return render(request, "challenge.html", context)


@router.get("/contributors", response_class=HTMLResponse)
async def contributors_page(
    request: Request,
    session: SessionDep,
    page: PageDep,
    kind: Annotated[str, Query(max_length=16)] = "all",
) -> Response:
    """Authors, replicators and reviewers ranked, as ``GET /v1/contributors``."""
    context = await contributors.ranking_context(session, kind=kind, page=page)
    return render(request, "contributors.html", context)


@router.get("/techniques", response_class=HTMLResponse)
async def techniques_page(
    request: Request,
    session: SessionDep,
    db: DatabaseDep,
    cache: CacheDep,
    page: PageDep,
    min_benchmarks: Annotated[int, Query(ge=1, le=100)] = 1,
) -> Response:
    generation = await current_generation(session, db, None, cache=cache)
    context = await pages.techniques_context(
        session, cache=cache, min_benchmarks=min_benchmarks, page=page, generation=generation
    )
    return render(request, "techniques.html", context)


@router.get("/static/{name}")
async def static(name: str) -> Response:
    path = STATIC / name
    if "/" in name or name.startswith(".") or path.suffix not in STATIC_TYPES or not path.is_file():
        raise NotFound(f"no static file {name!r}")
    return Response(
        path.read_bytes(),
        media_type=STATIC_TYPES[path.suffix],
        headers={"Cache-Control": "public, max-age=86400"},
    )


@router.get("/plots/verdicts/{verdict_id}/{token}.svg")
async def seed_plot(
    verdict_id: int, token: str, session: SessionDep, user: OptionalUser, request: Request
) -> Response:
    cache: PlotCache = get_plot_cache(request)
    svg = await charts.seed_plot_svg(session, cache, verdict_id=verdict_id, token=token, user=user)
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": PLOT_CACHE})


@router.get("/plots/benchmarks/{slug}/{version}/{metric}.svg")
async def board_chart(
    slug: str,
    version: int,
    metric: str,
    session: SessionDep,
    db: DatabaseDep,
    cache: CacheDep,
    request: Request,
) -> Response:
    entry = catalog_entry(request, slug, version)
    generation = await current_generation(session, db, entry.id, cache=cache)
    # 404 for a metric without a board
    await open_board(session, cache=cache, entry=entry, metric=metric, generation=generation)
    svg = await charts.board_chart_svg(
        session, get_plot_cache(request), entry=entry, metric=metric, generation=generation
    )
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": BOARD_CHART_CACHE})
