"""Submissions: upload a package (multipart, field ``package``), list, read, version, withdraw."""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Query, Request, status

from app.benchmarks.registry import Catalog, CatalogEntry
from app.core.blobs import BlobStore
from app.core.config import Settings
from app.core.deps import (
    CurrentUser,
    DatabaseDep,
    OptionalUser,
    SessionDep,
    SettingsDep,
    after_rollback,
)
from app.core.errors import NotFound, ReproError, ValidationFailed
from app.core.pagination import Page, PageDep, make_page
from app.core.uploads import receive_file
from app.core.validation import first_problem
from app.jobs.repository import jobs_of_version
from app.jobs.router import job_out
from app.jobs.schemas import JobOut
from app.submissions import access, diff, repository, service
from app.submissions.models import Submission, SubmissionStatus, SubmissionVersion
from app.submissions.package import inspect_package
from app.submissions.schemas import (
    Links,
    SubmissionDetail,
    SubmissionOut,
    VersionBrief,
    VersionDiff,
    VersionOut,
)
from app.verdicts.models import Verdict
from app.verdicts.service import verdicts_for
from runners.archives import ArchiveError, ArchiveLimits

router = APIRouter(prefix="/v1/submissions", tags=["submissions"])

UPLOAD_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["package"],
                    "properties": {
                        "package": {
                            "type": "string",
                            "format": "binary",
                            "description": ".tar.gz, .tgz or .zip with reprise.toml",
                        }
                    },
                }
            }
        },
    }
}


class PackageRejected(ValidationFailed):
    type, title = "package-rejected", "The package was rejected"


class ArchiveRejected(ValidationFailed):
    type, title = "archive-rejected", "The archive was rejected"


class StorageFull(ReproError):
    status, type, title = 503, "storage-full", "Storage temporarily full"


def archive_limits(settings: Settings) -> ArchiveLimits:
    u = settings.uploads
    return ArchiveLimits(
        max_archive_bytes=u.max_package_bytes,
        max_total_bytes=u.max_extracted_bytes,
        max_entries=u.max_entries,
        max_entry_bytes=u.max_entry_bytes,
        max_ratio=u.max_ratio,
    )


def _archive_problem(exc: ArchiveError) -> ReproError:
    if exc.code == "disk_full":
        return StorageFull(
            "the server is out of scratch space; try again later", headers={"Retry-After": "300"}
        )
    return ArchiveRejected(
        exc.message,
        errors=[{"loc": exc.entry or "archive", "msg": exc.message}],
        code=exc.code,
        entry=exc.entry,
    )


async def _accept_upload(
    request: Request, settings: Settings
) -> tuple[service.AcceptedPackage, CatalogEntry]:
    """Receive, inspect and store a package; on any rejection nothing is left behind."""
    catalog: Catalog = request.app.state.catalog
    blobs: BlobStore = request.app.state.blobs
    upload = await receive_file(
        request,
        file_field="package",
        dest_dir=blobs.scratch,
        max_file_bytes=settings.uploads.max_package_bytes,
        max_parts=settings.uploads.max_multipart_parts,
    )
    try:

        def lookup(slug: str, version: int) -> Any:
            entry = catalog.get(slug, version)
            return entry.manifest if entry is not None else None

        report = await anyio.to_thread.run_sync(
            functools.partial(
                inspect_package,
                upload.path,
                lookup=lookup,
                limits=archive_limits(settings),
                approved_bases=settings.approved_bases,
            )
        )
        if report.archive_error is not None:
            raise _archive_problem(report.archive_error)
        if report.errors or report.manifest is None:
            raise PackageRejected(
                first_problem(report.errors), errors=report.errors, lint=report.lint_report()
            )
        entry = catalog.get(report.manifest.benchmark.id, report.manifest.benchmark.version)
        assert entry is not None
        blobs.adopt(upload.path, upload.sha256)
    finally:
        upload.path.unlink(missing_ok=True)
    return service.AcceptedPackage(
        sha256=upload.sha256, size=upload.size, report=report, requirements=report.requirements_text
    ), entry


def _links(submission: Submission, settings: Settings) -> Links:
    return Links(
        self=f"/v1/submissions/{submission.id}",
        web=f"{settings.public_url.rstrip('/')}/submissions/{submission.id}",
        badge=f"/badges/submissions/{submission.id}.svg",
    )


def _summary(
    submission: Submission,
    owner: str,
    version: SubmissionVersion,
    settings: Settings,
    verdict: Verdict | None = None,
) -> dict[str, Any]:
    return {
        "verdict": verdict.claim_verdict if verdict else None,
        "quality": verdict.quality if verdict else None,
        "id": submission.id,
        "owner": owner,
        "benchmark": submission.benchmark_slug,
        "name": submission.name,
        "title": submission.title,
        "status": submission.status,
        "latest_version": submission.latest_version,
        "challenge_id": submission.challenge_id,
        "state": version.status,
        "created_at": submission.created_at,
        "updated_at": submission.updated_at,
        "links": _links(submission, settings),
    }


def _verdict_doc(verdict: Verdict | None) -> dict[str, Any] | None:
    if verdict is None:
        return None
    return {**verdict.score, "quality_total": verdict.quality, "scored_at": verdict.scored_at}


def _version_out(
    version: SubmissionVersion, catalog: Catalog, counts: dict[str, int], verdict: Verdict | None
) -> VersionOut:
    bench = catalog.by_id[version.benchmark_id].manifest
    claim = version.manifest["claim"]
    return VersionOut(
        number=version.number,
        status=version.status,
        created_at=version.created_at,
        finished_at=version.finished_at,
        package_sha256=version.package_sha256,
        package_size=version.package_size,
        benchmark={"id": bench.id, "version": bench.version},
        claim=claim,
        hyperparameters=version.manifest.get("hyperparameters") or {},
        environment={k: v for k, v in version.environment.items() if k != "requirements"},
        seeds={"claimed": list(claim["seeds"]), "fresh": list(version.fresh_seeds)},
        lint_report=version.lint_report,
        job_counts=counts,
        verdict=_verdict_doc(verdict),
    )


async def _detail(
    request: Request,
    session: SessionDep,
    submission: Submission,
    number: int | None = None,
) -> SubmissionDetail:
    settings: Settings = request.app.state.settings
    catalog: Catalog = request.app.state.catalog
    versions = await repository.versions_of(session, submission.id)
    wanted = number or submission.latest_version
    version = next((v for v in versions if v.number == wanted), None)
    if version is None:
        raise NotFound(f"submission {submission.id} has no version {wanted}")
    counts = await repository.job_counts(session, [version.id])
    jobs = await jobs_of_version(session, version.id)
    owner = await repository.owner_name(session, submission.owner_id)
    verdict = (await verdicts_for(session, [version.id])).get(version.id)
    return SubmissionDetail.model_validate(
        {
            **_summary(submission, owner, version, settings, verdict),
            "version": _version_out(version, catalog, counts.get(version.id, {}), verdict),
            "versions": [VersionBrief.model_validate(v) for v in versions],
            "jobs": [
                JobOut.model_validate(job_out(j, submission.id, version.number)) for j in jobs
            ],
        }
    )


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="create_submission",
    openapi_extra=UPLOAD_OPENAPI,
)
async def create_submission(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    db: DatabaseDep,
    settings: SettingsDep,
) -> SubmissionDetail:
    """Upload a reproduction package; its jobs are queued and the answer links to them."""
    await service.check_quotas(db, user=user, settings=settings)
    package, entry = await _accept_upload(request, settings)
    _undo_blob_on_failure(request, session, package.sha256)
    submission, _version = await service.create_submission(
        session,
        owner=user,
        package=package,
        entry=entry,
        settings=settings,
        notifier=request.app.state.notifier,
    )
    return await _detail(request, session, submission)


def _undo_blob_on_failure(request: Request, session: SessionDep, sha256: str) -> None:
    db = request.app.state.db
    blobs: BlobStore = request.app.state.blobs

    async def undo() -> None:
        from sqlalchemy import select

        async with db.session() as s:
            used = (
                await s.execute(
                    select(SubmissionVersion.id)
                    .where(SubmissionVersion.package_sha256 == sha256)
                    .limit(1)
                )
            ).first()
        if used is None:
            blobs.delete(sha256)

    after_rollback(session, undo)


@router.get("", operation_id="list_submissions")
async def list_submissions(
    request: Request,
    session: SessionDep,
    page: PageDep,
    user: OptionalUser,
    benchmark: Annotated[str | None, Query(max_length=64)] = None,
    author: Annotated[str | None, Query(max_length=40)] = None,
    tag: Annotated[str | None, Query(max_length=40)] = None,
    status_: Annotated[Literal["active", "withdrawn"], Query(alias="status")] = "active",
    state: Annotated[Literal["queued", "running", "finished", "cancelled"] | None, Query()] = None,
) -> Page[SubmissionOut]:
    """Submissions, newest first; withdrawn ones only to their owner (or maintainers)."""
    settings: Settings = request.app.state.settings
    owner_id = None
    if status_ == SubmissionStatus.withdrawn.value and not access.is_maintainer(user):
        owner_id = user.id if user is not None else -1
    f = repository.SubmissionFilter(
        benchmark=benchmark,
        author=author,
        status=status_,
        state=state,
        owner_id=owner_id,
        tag=tag,
    )
    rows, total = await repository.list_submissions(
        session, f, limit=page.limit, offset=page.offset
    )
    verdicts = await verdicts_for(session, [r.version.id for r in rows])
    items = [
        SubmissionOut.model_validate(
            _summary(r.submission, r.owner_name, r.version, settings, verdicts.get(r.version.id))
        )
        for r in rows
    ]
    return make_page(items, params=page, total=total)


@router.get("/{submission_id}", operation_id="get_submission")
async def get_submission(
    submission_id: int,
    request: Request,
    session: SessionDep,
    user: OptionalUser,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> SubmissionDetail:
    """A submission with one version (the latest unless ``version``), its lint and its jobs."""
    submission = await repository.get_submission(session, submission_id)
    if submission is None or not access.can_read(submission, user):
        raise NotFound(f"no submission {submission_id}")
    return await _detail(request, session, submission, version)


@router.get("/{submission_id}/versions/{a}/diff/{b}", operation_id="diff_versions")
async def diff_versions(
    submission_id: int, a: int, b: int, session: SessionDep, user: OptionalUser
) -> VersionDiff:
    """What changed from version ``a`` to ``b``: manifest (claim, hyperparameters,
    environment…) and outcome (verdict, quality, per-metric numbers)."""
    submission = await repository.get_submission(session, submission_id)
    if submission is None or not access.can_read(submission, user):
        raise NotFound(f"no submission {submission_id}")
    va = await repository.get_version(session, submission_id, a)
    vb = await repository.get_version(session, submission_id, b)
    if va is None or vb is None:
        raise NotFound(f"submission {submission_id} has no version {a if va is None else b}")
    found = await verdicts_for(session, [va.id, vb.id])
    return diff.version_diff(submission_id, va, vb, found.get(va.id), found.get(vb.id))


@router.post(
    "/{submission_id}/versions",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="create_version",
    openapi_extra=UPLOAD_OPENAPI,
)
async def create_version(
    submission_id: int,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    db: DatabaseDep,
    settings: SettingsDep,
) -> SubmissionDetail:
    """Upload a new version of one's own submission; it re-runs everything."""
    async with db.session() as check:
        owned = await repository.get_submission(check, submission_id)
        if owned is None or not access.can_change(owned, user):
            raise NotFound(f"no submission {submission_id}")
    await service.check_quotas(db, user=user, settings=settings)
    package, entry = await _accept_upload(request, settings)
    _undo_blob_on_failure(request, session, package.sha256)
    submission = await service.get_owned(session, user=user, submission_id=submission_id)
    await service.add_version(
        session,
        user=user,
        submission=submission,
        package=package,
        entry=entry,
        settings=settings,
        notifier=request.app.state.notifier,
    )
    return await _detail(request, session, submission)


@router.post("/{submission_id}/withdraw", operation_id="withdraw_submission")
async def withdraw_submission(
    submission_id: int,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
) -> SubmissionDetail:
    """Withdraw one's own submission: unfinished jobs are cancelled, the history stays."""
    submission = await service.withdraw(session, user=user, submission_id=submission_id)
    await session.flush()
    return await _detail(request, session, submission)
