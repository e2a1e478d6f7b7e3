"""Queries only the pages need (the rest come from the features' own repositories)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.submissions.models import Submission, SubmissionStatus, SubmissionVersion
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
