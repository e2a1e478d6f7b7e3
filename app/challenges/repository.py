"""Queries about challenges and their attempts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.challenges.models import Challenge
from app.submissions.models import LATEST_VERSION, Submission, SubmissionStatus, SubmissionVersion
from app.users.models import User
from app.verdicts.models import Verdict


@dataclass(frozen=True)
class ChallengeFilter:
    status: str | None = None  # open | closed, at ``now``
    benchmark: str | None = None
    submission_id: int | None = None
    q: str | None = None


@dataclass(frozen=True)
class AttemptRow:
    submission: Submission
    owner: str
    version: SubmissionVersion
    verdict: Verdict | None


async def get_challenge(session: AsyncSession, challenge_id: int) -> Challenge | None:
    return await session.get(Challenge, challenge_id)


async def list_challenges(
    session: AsyncSession, f: ChallengeFilter, *, now: dt.datetime, limit: int, offset: int
) -> tuple[list[tuple[Challenge, str]], int]:
    stmt = select(Challenge, User.name).join(User, User.id == Challenge.created_by_id)
    if f.status == "open":
        stmt = stmt.where(Challenge.deadline > now)
    elif f.status == "closed":
        stmt = stmt.where(Challenge.deadline <= now)
    if f.benchmark:
        stmt = stmt.where(Challenge.benchmark_slug == f.benchmark)
    if f.submission_id is not None:
        stmt = stmt.where(Challenge.submission_id == f.submission_id)
    if f.q:
        stmt = stmt.where(func.lower(Challenge.title).contains(f.q.lower(), autoescape=True))
    total = (await session.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
    rows = await session.execute(stmt.order_by(Challenge.id.desc()).limit(limit).offset(offset))
    return [(c, name) for c, name in rows], int(total)


async def creator_name(session: AsyncSession, challenge: Challenge) -> str:
    stmt = select(User.name).where(User.id == challenge.created_by_id)
    return str((await session.execute(stmt)).scalar_one())


async def attempts_of(
    session: AsyncSession, challenge_ids: Sequence[int]
) -> dict[int, list[AttemptRow]]:
    """Challenge id → its active attempts (latest version, verdict if scored), oldest first."""
    if not challenge_ids:
        return {}
    stmt = (
        select(Submission, User.name, SubmissionVersion, Verdict)
        .join(User, User.id == Submission.owner_id)
        .join(
            SubmissionVersion,
            LATEST_VERSION,
        )
        .outerjoin(Verdict, Verdict.version_id == SubmissionVersion.id)
        .where(
            Submission.challenge_id.in_(list(challenge_ids)),
            Submission.status == SubmissionStatus.active.value,
        )
        .order_by(Submission.id)
    )
    out: dict[int, list[AttemptRow]] = {cid: [] for cid in challenge_ids}
    for submission, owner, version, verdict in await session.execute(stmt):
        out[int(submission.challenge_id or 0)].append(
            AttemptRow(submission, owner, version, verdict)
        )
    return out
