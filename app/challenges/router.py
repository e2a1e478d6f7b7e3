"""Replication challenges: open one (maintainers), list, read with the pooled estimate, attempt."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, status

from app.benchmarks.registry import Catalog
from app.challenges import loading, repository, service, views
from app.challenges.models import Challenge
from app.challenges.schemas import ChallengeCreate, ChallengeDetail, ChallengeOut
from app.core.db import utcnow
from app.core.deps import CurrentUser, DatabaseDep, Maintainer, SessionDep, SettingsDep
from app.core.pagination import Page, PageDep, make_page
from app.submissions import service as submission_service
from app.submissions.router import (
    UPLOAD_OPENAPI,
    _accept_upload,
    _detail,
    _undo_blob_on_failure,
)
from app.submissions.schemas import SubmissionDetail

router = APIRouter(prefix="/v1/challenges", tags=["challenges"])


async def _assess(
    session: SessionDep, catalog: Catalog, challenges: list[Challenge]
) -> dict[int, views.Assessment]:
    found = await loading.assessed(session, catalog, challenges)
    return {challenge_id: assessment for challenge_id, (assessment, _rows) in found.items()}


@router.post("", status_code=status.HTTP_201_CREATED, operation_id="create_challenge")
async def create_challenge(
    body: ChallengeCreate, request: Request, user: Maintainer, session: SessionDep
) -> ChallengeDetail:
    """Open a challenge on a submission's claim, or on a claim from a paper (maintainers)."""
    catalog: Catalog = request.app.state.catalog
    challenge = await service.create(session, actor=user, body=body, catalog=catalog)
    assessment = (await _assess(session, catalog, [challenge]))[challenge.id]
    return views.detail(
        challenge,
        creator=user.name,
        bench=catalog.by_id[challenge.benchmark_id].manifest,
        assessment=assessment,
        now=utcnow(),
    )


@router.get("", operation_id="list_challenges")
async def list_challenges(
    request: Request,
    session: SessionDep,
    page: PageDep,
    status_: Annotated[Literal["open", "closed"] | None, Query(alias="status")] = None,
    benchmark: Annotated[str | None, Query(max_length=64)] = None,
    submission_id: Annotated[int | None, Query(ge=1)] = None,
    q: Annotated[str | None, Query(max_length=100, description="words in the title")] = None,
) -> Page[ChallengeOut]:
    """Challenges, newest first, each with its attempt counts and consensus."""
    catalog: Catalog = request.app.state.catalog
    now = utcnow()
    f = repository.ChallengeFilter(
        status=status_, benchmark=benchmark, submission_id=submission_id, q=q
    )
    rows, total = await repository.list_challenges(
        session, f, now=now, limit=page.limit, offset=page.offset
    )
    assessed = await _assess(session, catalog, [c for c, _name in rows])
    items = [
        views.summary(
            c,
            creator=name,
            bench=catalog.by_id[c.benchmark_id].manifest,
            assessment=assessed[c.id],
            now=now,
        )
        for c, name in rows
    ]
    return make_page(items, params=page, total=total)


@router.get("/{challenge_id}", operation_id="get_challenge")
async def get_challenge(
    challenge_id: int, request: Request, session: SessionDep
) -> ChallengeDetail:
    """A challenge: its claim, every attempt with its verdict, the pooled estimate per metric
    (inverse-variance, with I²) and the consensus line."""
    catalog: Catalog = request.app.state.catalog
    challenge = await service.get(session, challenge_id)
    assessment = (await _assess(session, catalog, [challenge]))[challenge.id]
    return views.detail(
        challenge,
        creator=await repository.creator_name(session, challenge),
        bench=catalog.by_id[challenge.benchmark_id].manifest,
        assessment=assessment,
        now=utcnow(),
    )


@router.post(
    "/{challenge_id}/attempts",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="create_attempt",
    openapi_extra=UPLOAD_OPENAPI,
)
async def create_attempt(
    challenge_id: int,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    db: DatabaseDep,
    settings: SettingsDep,
) -> SubmissionDetail:
    """Upload an independent package (multipart field ``package``, as for a submission); it is
    run like any submission and judged against the challenge's claim."""
    async with db.session() as check:
        await service.open_challenge(check, challenge_id)  # refuse before reading the upload
    await submission_service.check_quotas(db, user=user, settings=settings)
    package, entry = await _accept_upload(request, settings)
    _undo_blob_on_failure(request, session, package.sha256)
    challenge = await service.open_challenge(session, challenge_id)  # the upload took time
    assert package.report.manifest is not None
    service.check_attempt(challenge, package.report.manifest, entry)
    submission, version = await submission_service.create_submission(
        session,
        owner=user,
        package=package,
        entry=entry,
        settings=settings,
        notifier=request.app.state.notifier,
    )
    service.link_attempt(
        session, user=user, challenge=challenge, submission=submission, version=version
    )
    await session.flush()
    return await _detail(request, session, submission)
