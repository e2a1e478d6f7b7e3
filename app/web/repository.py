"""Queries only the pages need (the rest come from the features' own repositories)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.challenges.models import Challenge
from app.reviews.models import Review, ReviewStatus
from app.submissions.models import LATEST_VERSION, Submission, SubmissionStatus, SubmissionVersion
from app.verdicts.models import Verdict


async def active_submissions_by_benchmark(session: AsyncSession) -> dict[str, int]:
    stmt = (
        select(Submission.benchmark_slug, func.count())
        .where(Submission.status == SubmissionStatus.active.value)
        .group_by(Submission.benchmark_slug)
    )
    return {slug: int(n) for slug, n in await session.execute(stmt)}


async def verdict_with_version(
    session: AsyncSession, verdict_id: int
) -> tuple[Verdict, SubmissionVersion, Submission] | None:
    stmt = (
        select(Verdict, SubmissionVersion, Submission)
        .join(SubmissionVersion, SubmissionVersion.id == Verdict.version_id)
        .join(Submission, Submission.id == Verdict.submission_id)
        .where(Verdict.id == verdict_id)
    )
    row = (await session.execute(stmt)).first()
    return (row[0], row[1], row[2]) if row else None


async def published_reviews_by(
    session: AsyncSession, reviewer_id: int, *, limit: int
) -> tuple[list[tuple[Review, Submission]], int]:
    """A reviewer's published reviews of active submissions, newest first (for the profile)."""
    stmt = (
        select(Review, Submission)
        .join(Submission, Submission.id == Review.submission_id)
        .where(
            Review.reviewer_id == reviewer_id,
            Review.status == ReviewStatus.published.value,
            Submission.status == SubmissionStatus.active.value,
        )
    )
    total = (await session.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
    rows = await session.execute(stmt.order_by(Review.id.desc()).limit(limit))
    return [(r, s) for r, s in rows], int(total)


async def attempts_by(
    session: AsyncSession, owner_id: int, *, include_withdrawn: bool, limit: int
) -> tuple[list[tuple[Submission, Challenge, Verdict | None]], int]:
    """Someone's challenge attempts with their challenge and verdict, newest first."""
    stmt = (
        select(Submission, Challenge, Verdict)
        .join(Challenge, Challenge.id == Submission.challenge_id)
        .join(
            SubmissionVersion,
            LATEST_VERSION,
        )
        .outerjoin(Verdict, Verdict.version_id == SubmissionVersion.id)
        .where(Submission.owner_id == owner_id)
    )
    if not include_withdrawn:
        stmt = stmt.where(Submission.status == SubmissionStatus.active.value)
    total = (await session.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
    rows = await session.execute(stmt.order_by(Submission.id.desc()).limit(limit))
    return [(s, c, v) for s, c, v in rows], int(total)
