"""Submission rules: quotas, intake of a checked package, versions, withdrawal, enqueueing."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.benchmarks.registry import CatalogEntry
from app.core.config import Settings
from app.core.db import Database, utcnow
from app.core.deps import after_commit
from app.core.errors import Conflict, NotFound, TooManyRequests, ValidationFailed
from app.core.security import derive_seed
from app.jobs import repository as jobs_repository
from app.jobs.models import Job, JobKind
from app.jobs.notifier import JobNotifier
from app.jobs.service import cancel_version_jobs, lock_version
from app.submissions import access, repository
from app.submissions.manifest import PackageManifest
from app.submissions.models import (
    Submission,
    SubmissionStatus,
    SubmissionTag,
    SubmissionVersion,
    VersionStatus,
)
from app.submissions.package import PackageReport
from app.users.models import User

DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class AcceptedPackage:
    """A package that passed inspection, stored in the blob store."""

    sha256: str
    size: int
    report: PackageReport
    requirements: str | None


async def check_quotas(db: Database, *, user: User, settings: Settings) -> None:
    """Refuse early (before any upload is read) when a quota is exhausted."""
    async with db.session() as session:
        await _check_quotas(session, user=user, settings=settings)


async def enforce_quotas(session: AsyncSession, *, user: User, settings: Settings) -> None:
    """The quotas again, in the transaction that adds the version.

    The early check runs before the upload, in its own session, so concurrent uploads of one
    user would all pass it together; here they are serialised (SQLite: the transaction's
    ``BEGIN IMMEDIATE``; PostgreSQL: the user's row, locked until commit) and counted again.
    """
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        await session.execute(select(User.id).where(User.id == user.id).with_for_update())
    await _check_quotas(session, user=user, settings=settings)


async def _check_quotas(session: AsyncSession, *, user: User, settings: Settings) -> None:
    quotas = settings.quotas
    since = utcnow() - DAY
    recent = await repository.versions_created_since(session, owner_id=user.id, since=since)
    if len(recent) >= quotas.submissions_per_day:
        retry = int((recent[0] + DAY - utcnow()).total_seconds()) + 1
        raise TooManyRequests(
            f"you have made {len(recent)} submissions in the last 24 hours, the limit is "
            f"{quotas.submissions_per_day}",
            retry_after=retry,
        )
    if await jobs_repository.active_jobs_of_owner(session, user.id) >= quotas.active_jobs_per_user:
        raise TooManyRequests(
            f"you have {quotas.active_jobs_per_user} or more jobs queued or running; wait for "
            "them to finish",
            retry_after=60,
        )
    if await jobs_repository.queued_count(session) >= quotas.queue_cap:
        raise TooManyRequests("the queue is full; try again later", retry_after=60)


def environment_of(
    manifest: PackageManifest, requirements: str | None, default_base: str
) -> dict[str, str | None]:
    base = manifest.environment.base or default_base
    digest = hashlib.sha256(f"{base}\n{requirements or ''}".encode()).hexdigest()
    return {"base": base, "requirements": requirements, "input_hash": digest}


def fresh_seeds(
    secret: str, *, submission_id: int, version: int, count: int, avoid: list[int]
) -> list[int]:
    """Seeds the service picks: unguessable before the submission exists, distinct from claimed."""
    seeds: list[int] = []
    i = 0
    while len(seeds) < count:
        seed = derive_seed(secret, "fresh", submission_id, version, i)
        i += 1
        if seed not in avoid and seed not in seeds:
            seeds.append(seed)
    return seeds


async def _add_version(
    session: AsyncSession,
    *,
    submission: Submission,
    number: int,
    package: AcceptedPackage,
    entry: CatalogEntry,
    settings: Settings,
    notifier: JobNotifier,
) -> SubmissionVersion:
    manifest = package.report.manifest
    assert manifest is not None
    claimed = list(manifest.claim.seeds)
    fresh = fresh_seeds(
        settings.secret_key.get_secret_value(),
        submission_id=submission.id,
        version=number,
        count=entry.manifest.fresh_seeds,
        avoid=claimed,
    )
    version = SubmissionVersion(
        submission_id=submission.id,
        number=number,
        benchmark_id=entry.id,
        package_sha256=package.sha256,
        package_size=package.size,
        manifest=manifest.model_dump(mode="json"),
        lint_report=package.report.lint_report(),
        environment=environment_of(manifest, package.requirements, settings.approved_bases[0]),
        fresh_seeds=fresh,
        status=VersionStatus.queued.value,
    )
    session.add(version)
    await session.flush()
    plan = [(JobKind.claimed, s) for s in claimed] + [(JobKind.fresh, s) for s in fresh]
    plan.append((JobKind.probe, fresh[0]))
    session.add_all(
        Job(
            version_id=version.id,
            owner_id=submission.owner_id,
            kind=kind.value,
            seed=seed,
            requires=entry.manifest.requires_key,
            max_attempts=settings.queue.max_attempts,
        )
        for kind, seed in plan
    )
    await session.flush()
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        from sqlalchemy import text

        await session.execute(text("SELECT pg_notify('reprise_jobs', '')"))
    after_commit(session, notifier.notify)
    await _set_tags(session, submission.id, manifest.package.tags)
    return version


async def _set_tags(session: AsyncSession, submission_id: int, tags: list[str]) -> None:
    """The latest version's tags stand for the submission."""
    await session.execute(delete(SubmissionTag).where(SubmissionTag.submission_id == submission_id))
    session.add_all(SubmissionTag(submission_id=submission_id, tag=t) for t in sorted(set(tags)))


async def create_submission(
    session: AsyncSession,
    *,
    owner: User,
    package: AcceptedPackage,
    entry: CatalogEntry,
    settings: Settings,
    notifier: JobNotifier,
) -> tuple[Submission, SubmissionVersion]:
    """A new submission with version 1 and its jobs enqueued."""
    await enforce_quotas(session, user=owner, settings=settings)
    manifest = package.report.manifest
    assert manifest is not None
    submission = Submission(
        owner_id=owner.id,
        benchmark_slug=entry.slug,
        name=manifest.package.name,
        title=manifest.package.title,
        latest_version=1,
    )
    session.add(submission)
    await session.flush()
    version = await _add_version(
        session,
        submission=submission,
        number=1,
        package=package,
        entry=entry,
        settings=settings,
        notifier=notifier,
    )
    audit.record(
        session,
        actor_type="user",
        actor_id=owner.id,
        action="submission.create",
        object_type="submission",
        object_id=submission.id,
        detail={"version": 1, "package_sha256": package.sha256, "benchmark": entry.slug},
    )
    return submission, version


async def get_owned(session: AsyncSession, *, user: User, submission_id: int) -> Submission:
    """A submission the caller may change; anyone else's is a 404, not a 403."""
    submission = await repository.get_submission(session, submission_id)
    if submission is None or not access.can_change(submission, user):
        raise NotFound(f"no submission {submission_id}")
    return submission


async def add_version(
    session: AsyncSession,
    *,
    user: User,
    submission: Submission,
    package: AcceptedPackage,
    entry: CatalogEntry,
    settings: Settings,
    notifier: JobNotifier,
) -> SubmissionVersion:
    """A new version: re-runs everything, keeps the history, supersedes unfinished runs."""
    if submission.status != SubmissionStatus.active.value:
        raise Conflict(f"submission {submission.id} is withdrawn; submit a new one instead")
    if submission.challenge_id is not None:
        raise Conflict(
            f"submission {submission.id} is an attempt at challenge {submission.challenge_id}: "
            "an attempt is one package; submit a new attempt to the challenge instead"
        )
    if entry.slug != submission.benchmark_slug:
        raise ValidationFailed(
            f"this submission is on benchmark {submission.benchmark_slug}; a new version cannot "
            f"move it to {entry.slug}",
            errors=[{"loc": "benchmark.id", "msg": "benchmark changed"}],
        )
    await enforce_quotas(session, user=user, settings=settings)
    previous = await repository.get_version(session, submission.id, submission.latest_version)
    if previous is not None and previous.status in (
        VersionStatus.queued.value,
        VersionStatus.running.value,
    ):
        locked = await lock_version(session, previous.id)
        await cancel_version_jobs(
            session, locked, reason=f"superseded by version {submission.latest_version + 1}"
        )
    manifest = package.report.manifest
    assert manifest is not None
    number = submission.latest_version + 1
    version = await _add_version(
        session,
        submission=submission,
        number=number,
        package=package,
        entry=entry,
        settings=settings,
        notifier=notifier,
    )
    submission.latest_version = number
    submission.title = manifest.package.title
    submission.name = manifest.package.name
    submission.updated_at = utcnow()
    audit.record(
        session,
        actor_type="user",
        actor_id=user.id,
        action="submission.version",
        object_type="submission",
        object_id=submission.id,
        detail={"version": number, "package_sha256": package.sha256},
    )
    return version


async def withdraw(session: AsyncSession, *, user: User, submission_id: int) -> Submission:
    """Withdraw: hidden from the public, unfinished jobs cancelled; the history stays."""
    submission = await get_owned(session, user=user, submission_id=submission_id)
    if submission.status == SubmissionStatus.withdrawn.value:
        return submission
    for version in await repository.versions_of(session, submission.id):
        if version.status in (VersionStatus.queued.value, VersionStatus.running.value):
            locked = await lock_version(session, version.id)
            await cancel_version_jobs(session, locked, reason="the submission was withdrawn")
    submission.status = SubmissionStatus.withdrawn.value
    submission.withdrawn_at = utcnow()
    audit.record(
        session,
        actor_type="user",
        actor_id=user.id,
        action="submission.withdraw",
        object_type="submission",
        object_id=submission.id,
    )
    return submission
