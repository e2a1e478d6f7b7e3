"""Queue queries. The claim is one statement: on PostgreSQL ``UPDATE … WHERE id = (SELECT … FOR
UPDATE SKIP LOCKED LIMIT 1) RETURNING …``; on SQLite the same inside ``BEGIN IMMEDIATE``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.jobs.models import FINAL_STATUSES, Job, JobStatus, RunResult


async def claim_next(
    session: AsyncSession,
    *,
    requirements: Sequence[str],
    lease_token: str,
    expires_at: dt.datetime,
    worker_id: str,
    worker_token_id: int,
    now: dt.datetime,
) -> Job | None:
    """Atomically lease the oldest queued job whose requirement is in ``requirements``."""
    if not requirements:
        return None
    candidate = (
        select(Job.id)
        .where(Job.status == JobStatus.queued.value, Job.requires.in_(list(requirements)))
        .order_by(Job.id)
        .limit(1)
    )
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        candidate = candidate.with_for_update(skip_locked=True)
    stmt = (
        update(Job)
        .where(Job.id == candidate.scalar_subquery(), Job.status == JobStatus.queued.value)
        .values(
            status=JobStatus.running.value,
            attempt=Job.attempt + 1,
            lease_token=lease_token,
            lease_expires_at=expires_at,
            worker_id=worker_id,
            worker_token_id=worker_token_id,
            started_at=func.coalesce(Job.started_at, now),
            phase=None,
            updated_at=now,
        )
        .returning(Job)
        .execution_options(synchronize_session=False)
    )
    return (await session.execute(stmt)).scalars().first()


async def expired_leases(session: AsyncSession, *, now: dt.datetime, limit: int = 100) -> list[Job]:
    """Running jobs whose lease ran out, locked for this transaction (PostgreSQL)."""
    stmt = (
        select(Job)
        .where(Job.status == JobStatus.running.value, Job.lease_expires_at < now)
        .order_by(Job.id)
        .limit(limit)
    )
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return list((await session.execute(stmt)).scalars())


async def any_expired(session: AsyncSession, *, now: dt.datetime) -> bool:
    stmt = (
        select(Job.id)
        .where(Job.status == JobStatus.running.value, Job.lease_expires_at < now)
        .limit(1)
    )
    return (await session.execute(stmt)).first() is not None


async def any_queued(session: AsyncSession, requirements: Sequence[str]) -> bool:
    """Whether a job one of ``requirements`` allows is queued (the partial index answers)."""
    stmt = (
        select(Job.id)
        .where(Job.status == JobStatus.queued.value, Job.requires.in_(list(requirements)))
        .limit(1)
    )
    return (await session.execute(stmt)).first() is not None


async def get_job(session: AsyncSession, job_id: int, *, lock: bool = False) -> Job | None:
    stmt = select(Job).where(Job.id == job_id)
    if lock and session.bind is not None and session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def jobs_of_version(session: AsyncSession, version_id: int) -> list[Job]:
    rows = await session.execute(select(Job).where(Job.version_id == version_id).order_by(Job.id))
    return list(rows.scalars())


async def unfinished_count(session: AsyncSession, version_id: int) -> int:
    stmt = select(func.count()).where(
        Job.version_id == version_id, Job.status.not_in(list(FINAL_STATUSES))
    )
    return int((await session.execute(stmt)).scalar_one())


async def result_for(session: AsyncSession, job_id: int, attempt: int) -> RunResult | None:
    stmt = select(RunResult).where(RunResult.job_id == job_id, RunResult.attempt == attempt)
    return (await session.execute(stmt)).scalar_one_or_none()


async def final_results(
    session: AsyncSession, version_id: int
) -> list[tuple[Job, RunResult | None]]:
    """Each job of a version with the result of its last attempt (None when none was recorded)."""
    stmt = (
        select(Job, RunResult)
        .outerjoin(RunResult, (RunResult.job_id == Job.id) & (RunResult.attempt == Job.attempt))
        .where(Job.version_id == version_id)
        .order_by(Job.id)
    )
    return [(job, result) for job, result in (await session.execute(stmt))]


async def queued_count(session: AsyncSession) -> int:
    stmt = select(func.count()).where(Job.status == JobStatus.queued.value)
    return int((await session.execute(stmt)).scalar_one())


async def active_jobs_of_owner(session: AsyncSession, owner_id: int) -> int:
    stmt = select(func.count()).where(
        Job.owner_id == owner_id,
        Job.status.in_([JobStatus.queued.value, JobStatus.running.value]),
    )
    return int((await session.execute(stmt)).scalar_one())


async def results_of_job(session: AsyncSession, job_id: int) -> list[RunResult]:
    stmt = select(RunResult).where(RunResult.job_id == job_id).order_by(RunResult.attempt)
    return list((await session.execute(stmt)).scalars())
