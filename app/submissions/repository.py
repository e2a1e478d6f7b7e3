"""Queries about submissions and their versions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Select, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.jobs.models import Job
from app.submissions.models import (
    LATEST_VERSION,
    Submission,
    SubmissionStatus,
    SubmissionTag,
    SubmissionVersion,
)
from app.users.models import User


async def get_submission(session: AsyncSession, submission_id: int) -> Submission | None:
    return await session.get(Submission, submission_id)


async def get_version(
    session: AsyncSession, submission_id: int, number: int
) -> SubmissionVersion | None:
    stmt = select(SubmissionVersion).where(
        SubmissionVersion.submission_id == submission_id, SubmissionVersion.number == number
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def versions_of(session: AsyncSession, submission_id: int) -> list[SubmissionVersion]:
    stmt = (
        select(SubmissionVersion)
        .where(SubmissionVersion.submission_id == submission_id)
        .order_by(SubmissionVersion.number)
    )
    return list((await session.execute(stmt)).scalars())


async def versions_created_since(
    session: AsyncSession, *, owner_id: int, since: dt.datetime
) -> list[dt.datetime]:
    """Creation times of the owner's versions since ``since``, oldest first."""
    stmt = (
        select(SubmissionVersion.created_at)
        .join(Submission, Submission.id == SubmissionVersion.submission_id)
        .where(Submission.owner_id == owner_id, SubmissionVersion.created_at >= since)
        .order_by(SubmissionVersion.created_at)
    )
    return list((await session.execute(stmt)).scalars())


@dataclass(frozen=True)
class SubmissionRow:
    submission: Submission
    owner_name: str
    version: SubmissionVersion


@dataclass(frozen=True)
class SubmissionFilter:
    benchmark: str | None = None
    author: str | None = None
    status: str = SubmissionStatus.active.value
    state: str | None = None
    owner_id: int | None = None  # restricts to one owner (withdrawn listings)
    tag: str | None = None


def _filtered(
    stmt: Select[Submission, str, SubmissionVersion], f: SubmissionFilter
) -> Select[Submission, str, SubmissionVersion]:
    stmt = stmt.where(Submission.status == f.status)
    if f.benchmark:
        stmt = stmt.where(Submission.benchmark_slug == f.benchmark)
    if f.author:
        stmt = stmt.where(User.name == f.author)
    if f.state:
        stmt = stmt.where(SubmissionVersion.status == f.state)
    if f.owner_id is not None:
        stmt = stmt.where(Submission.owner_id == f.owner_id)
    if f.tag:
        stmt = stmt.where(
            exists().where(SubmissionTag.submission_id == Submission.id, SubmissionTag.tag == f.tag)
        )
    return stmt


def _base() -> Select[Submission, str, SubmissionVersion]:
    return (
        select(Submission, User.name, SubmissionVersion)
        .join(User, User.id == Submission.owner_id)
        .join(
            SubmissionVersion,
            LATEST_VERSION,
        )
    )


async def list_submissions(
    session: AsyncSession, f: SubmissionFilter, *, limit: int, offset: int
) -> tuple[list[SubmissionRow], int]:
    stmt = _filtered(_base(), f)
    total = (await session.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
    rows = await session.execute(stmt.order_by(Submission.id.desc()).limit(limit).offset(offset))
    return [SubmissionRow(s, name, v) for s, name, v in rows], int(total)


async def owner_name(session: AsyncSession, owner_id: int) -> str:
    return str((await session.execute(select(User.name).where(User.id == owner_id))).scalar_one())


async def job_counts(
    session: AsyncSession, version_ids: Sequence[int]
) -> dict[int, dict[str, int]]:
    if not version_ids:
        return {}
    stmt = (
        select(Job.version_id, Job.status, func.count())
        .where(Job.version_id.in_(list(version_ids)))
        .group_by(Job.version_id, Job.status)
    )
    out: dict[int, dict[str, int]] = {}
    for vid, status, n in await session.execute(stmt):
        out.setdefault(vid, {})[status] = int(n)
    return out
