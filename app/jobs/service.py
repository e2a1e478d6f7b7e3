"""Queue rules: leases, heartbeats, fenced results, expiry, cancellation, version completion.

Lock order on PostgreSQL is always version row → job row, so a result, an expiry and a
withdrawal can never deadlock each other; the claim locks a single job row and nothing else.
Execution is at-least-once; recording is exactly-once (unique (job, attempt), fencing by lease).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import Database, utcnow
from app.core.deps import WorkerPrincipal, after_commit
from app.core.errors import Forbidden, NotFound, StaleLease
from app.jobs import repository
from app.jobs.models import Job, JobStatus, RunResult
from app.jobs.notifier import JobNotifier
from app.jobs.schemas import HeartbeatRequest, LeaseRef, ResultRequest
from app.submissions.models import SubmissionVersion, VersionStatus

logger = logging.getLogger(__name__)

# Called in the transaction that ends a version's last job (the statistics step).
VersionFinishedHook = Callable[[AsyncSession, SubmissionVersion], Awaitable[None]]


@dataclass(frozen=True)
class Claimed:
    job: Job
    version: SubmissionVersion


@dataclass(frozen=True)
class Recorded:
    recorded: bool
    duplicate: bool


def _is_postgres(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"


async def lock_version(session: AsyncSession, version_id: int) -> SubmissionVersion:
    stmt = select(SubmissionVersion).where(SubmissionVersion.id == version_id)
    if _is_postgres(session):
        stmt = stmt.with_for_update()
    version = (await session.execute(stmt)).scalar_one()
    return version


async def lock_version_of_job(session: AsyncSession, job_id: int) -> SubmissionVersion | None:
    """The version of job ``job_id`` (locked on PostgreSQL), in one statement: the version's
    id comes from a subquery, so the lock order stays version → job without reading the job
    first."""
    version_id = select(Job.version_id).where(Job.id == job_id).scalar_subquery()
    stmt = select(SubmissionVersion).where(SubmissionVersion.id == version_id)
    if _is_postgres(session):
        stmt = stmt.with_for_update(of=SubmissionVersion)
    return (await session.execute(stmt)).scalar_one_or_none()


async def finish_version_if_done(
    session: AsyncSession, version: SubmissionVersion, *, on_finished: VersionFinishedHook | None
) -> bool:
    """Mark the version finished once every job ended, and score it in this transaction."""
    if version.status in (VersionStatus.finished.value, VersionStatus.cancelled.value):
        return False
    if await repository.unfinished_count(session, version.id) > 0:
        return False
    version.status = VersionStatus.finished.value
    version.finished_at = utcnow()
    if on_finished is not None:
        await on_finished(session, version)
    return True


async def expire_job(
    session: AsyncSession,
    job_id: int,
    *,
    now: dt.datetime,
    notifier: JobNotifier,
    on_finished: VersionFinishedHook | None,
) -> None:
    """Re-queue one job whose lease ran out, or end it after ``max_attempts``."""
    job = await repository.get_job(session, job_id)
    if job is None:
        return
    version = await lock_version(session, job.version_id)
    job = await repository.get_job(session, job_id, lock=True)
    if job is None or job.status != JobStatus.running.value or job.lease_expires_at is None:
        return
    if job.lease_expires_at >= now:
        return
    reason = (
        f"the lease of attempt {job.attempt} expired (worker {job.worker_id} stopped heartbeating)"
    )
    # No lease token on this server-made record: the late worker's own result must get a 409.
    session.add(
        RunResult(
            job_id=job.id,
            attempt=job.attempt,
            lease_token=None,
            outcome=JobStatus.infrastructure_error.value,
            reason=reason,
            worker_id=job.worker_id,
            metrics={},
            phases=[],
            provenance={},
        )
    )
    if job.attempt < job.max_attempts and not job.cancel_requested:
        _requeue(job, reason=reason)
        after_commit(session, notifier.notify)
        logger.info("job %s re-queued after an expired lease (attempt %s)", job.id, job.attempt)
        return
    job.status = (
        JobStatus.cancelled if job.cancel_requested else JobStatus.infrastructure_error
    ).value
    job.reason = reason if not job.cancel_requested else "cancelled"
    job.finished_at = now
    job.lease_expires_at = None
    await session.flush()
    await finish_version_if_done(session, version, on_finished=on_finished)


def _requeue(job: Job, *, reason: str | None) -> None:
    job.status = JobStatus.queued.value
    job.lease_token = None
    job.lease_expires_at = None
    job.worker_id = None
    job.worker_token_id = None
    job.phase = None
    job.reason = reason


async def sweep_expired(
    db: Database,
    *,
    notifier: JobNotifier,
    on_finished: VersionFinishedHook | None,
    limit: int = 100,
) -> int:
    """Handle every expired lease (the periodic sweep; the lease path calls it too)."""
    now = utcnow()
    async with db.session() as session:
        if not await repository.any_expired(session, now=now):
            return 0
        ids = [j.id for j in await repository.expired_leases(session, now=now, limit=limit)]
    for job_id in ids:
        async with db.session(write=True) as session:
            await expire_job(session, job_id, now=now, notifier=notifier, on_finished=on_finished)
            callbacks = session.info.pop("after_commit", [])
        for callback in callbacks:
            callback()
    return len(ids)


async def _look(db: Database, *, requirements: list[str]) -> tuple[bool, bool]:
    """One short read for the lease loop: (any lease expired, any job these requirements allow
    queued) -- two index probes in one session instead of a session each."""
    async with db.session() as session:
        expired = await repository.any_expired(session, now=utcnow())
        queued = bool(requirements) and await repository.any_queued(session, requirements)
    return expired, queued


async def claim(
    db: Database,
    *,
    worker: WorkerPrincipal,
    worker_id: str,
    requirements: list[str],
    lease_ttl_s: float,
    probe: bool = True,
) -> Claimed | None:
    """One attempt to lease a job: a cheap read first (unless the caller just made it), the
    atomic claim only when worth it."""
    if not requirements:
        return None
    if probe:
        async with db.session() as session:
            if not await repository.any_queued(session, requirements):
                return None
    now = utcnow()
    token = secrets.token_urlsafe(24)
    async with db.session(write=True) as session:
        job = await repository.claim_next(
            session,
            requirements=requirements,
            lease_token=token,
            expires_at=now + dt.timedelta(seconds=lease_ttl_s),
            worker_id=worker_id,
            worker_token_id=worker.token_id,
            now=now,
        )
        if job is None:
            return None
        version = await session.get(SubmissionVersion, job.version_id)
        assert version is not None
    if version.status == VersionStatus.queued.value:
        # Only a version's first claim moves it to running (a version never returns to queued,
        # so a version read as anything else needs no write); in a session of its own so the
        # claim never holds a job lock while waiting on a version.
        async with db.session(write=True) as session:
            await session.execute(
                update(SubmissionVersion)
                .where(
                    SubmissionVersion.id == job.version_id,
                    SubmissionVersion.status == VersionStatus.queued.value,
                )
                .values(status=VersionStatus.running.value)
            )
    return Claimed(job=job, version=version)


async def lease(
    db: Database,
    *,
    worker: WorkerPrincipal,
    worker_id: str,
    labels: dict[str, str],
    wait_s: float,
    requirements: list[str],
    lease_ttl_s: float,
    notifier: JobNotifier,
    on_finished: VersionFinishedHook | None,
) -> Claimed | None:
    """Long-poll for a job: wait on enqueue notifications, never holding a connection."""
    for key, value in labels.items():
        if worker.labels.get(key) != value:
            raise Forbidden(f"label {key}={value} is not registered for this worker token")
    deadline = time.monotonic() + wait_s
    while True:
        expired, queued = await _look(db, requirements=requirements)
        if expired:
            await sweep_expired(db, notifier=notifier, on_finished=on_finished)
            queued = bool(requirements)  # a re-queued job may be ours: look in the claim
        if queued:
            claimed = await claim(
                db,
                worker=worker,
                worker_id=worker_id,
                requirements=requirements,
                lease_ttl_s=lease_ttl_s,
                probe=False,
            )
            if claimed is not None:
                return claimed
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        # Re-check now and then: another replica on SQLite, or a lease that expires meanwhile.
        await notifier.wait(min(remaining, 2.0))


async def _leased_job(session: AsyncSession, job_id: int, ref: LeaseRef, *, lock: bool) -> Job:
    job = await repository.get_job(session, job_id, lock=lock)
    if job is None:
        raise NotFound(f"no job {job_id}")
    if (
        job.status != JobStatus.running.value
        or job.lease_token is None
        or not secrets.compare_digest(job.lease_token, ref.lease_token)
        or job.attempt != ref.attempt
    ):
        raise StaleLease(
            f"the lease on job {job_id} (attempt {ref.attempt}) is no longer valid; "
            "stop and clean up"
        )
    return job


async def check_lease(session: AsyncSession, job_id: int, ref: LeaseRef) -> Job:
    """The job, if ``ref`` is its current lease (downloads check this)."""
    return await _leased_job(session, job_id, ref, lock=False)


async def heartbeat(
    session: AsyncSession, job_id: int, body: HeartbeatRequest, *, lease_ttl_s: float
) -> Job:
    job = await _leased_job(session, job_id, body, lock=True)
    job.lease_expires_at = utcnow() + dt.timedelta(seconds=lease_ttl_s)
    if body.phase is not None:
        job.phase = body.phase
    if body.log_tail is not None:
        job.log_tail = body.log_tail
    return job


async def release(
    session: AsyncSession, job_id: int, ref: LeaseRef, *, notifier: JobNotifier
) -> None:
    """A worker hands a lease back (graceful shutdown): re-queue without spending an attempt."""
    job = await repository.get_job(session, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}")
    await lock_version(session, job.version_id)
    job = await _leased_job(session, job_id, ref, lock=True)
    job.attempt -= 1
    _requeue(job, reason=None)
    if job.cancel_requested:
        job.status = JobStatus.cancelled.value
        job.finished_at = utcnow()
    after_commit(session, notifier.notify)


async def record_result(
    session: AsyncSession,
    job_id: int,
    body: ResultRequest,
    *,
    notifier: JobNotifier,
    on_finished: VersionFinishedHook | None,
) -> Recorded:
    """Record a result once: duplicates are no-ops, stale leases are refused."""
    version = await lock_version_of_job(session, job_id)
    if version is None:
        raise NotFound(f"no job {job_id}")
    try:
        job = await _leased_job(session, job_id, body, lock=True)
    except StaleLease:
        # Recording ends the lease, so a repeat of a recorded result is always "stale": only
        # then is it worth looking for the result it repeats (a no-op 200, not a 409).
        existing = await repository.result_for(session, job_id, body.attempt)
        if (
            existing is not None
            and existing.lease_token is not None
            and secrets.compare_digest(existing.lease_token, body.lease_token)
        ):
            return Recorded(recorded=False, duplicate=True)
        raise
    now = utcnow()
    outcome = body.outcome
    if job.cancel_requested and outcome != JobStatus.succeeded.value:
        outcome = JobStatus.cancelled.value
    session.add(
        RunResult(
            job_id=job.id,
            attempt=job.attempt,
            lease_token=body.lease_token,
            outcome=outcome,
            reason=body.reason,
            metrics=dict(body.metrics) if outcome == "succeeded" else {},
            curve=body.curve.model_dump() if body.curve else None,
            self_reported=body.self_reported,
            phases=[p.model_dump() for p in body.phases],
            provenance=body.provenance,
            worker_id=job.worker_id,
            recorded_at=now,
        )
    )
    tail = next((p.log_tail for p in reversed(body.phases) if p.log_tail), None)
    if tail is not None:
        job.log_tail = tail
    if (
        outcome == JobStatus.infrastructure_error.value
        and job.attempt < job.max_attempts
        and not job.cancel_requested
    ):
        _requeue(job, reason=body.reason)
        after_commit(session, notifier.notify)
        return Recorded(recorded=True, duplicate=False)
    job.status = outcome
    job.reason = body.reason
    job.finished_at = now
    job.lease_expires_at = None
    await session.flush()
    await finish_version_if_done(session, version, on_finished=on_finished)
    return Recorded(recorded=True, duplicate=False)


async def cancel_version_jobs(
    session: AsyncSession, version: SubmissionVersion, *, reason: str
) -> int:
    """Cancel queued jobs now and ask running ones to stop (heartbeat answer ``cancel``)."""
    now = utcnow()
    queued = await session.execute(
        update(Job)
        .where(Job.version_id == version.id, Job.status == JobStatus.queued.value)
        .values(status=JobStatus.cancelled.value, reason=reason, finished_at=now, updated_at=now)
    )
    await session.execute(
        update(Job)
        .where(Job.version_id == version.id, Job.status == JobStatus.running.value)
        .values(cancel_requested=True, updated_at=now)
    )
    if version.status not in (VersionStatus.finished.value,):
        version.status = VersionStatus.cancelled.value
        version.finished_at = now
    return int(getattr(queued, "rowcount", 0) or 0)
