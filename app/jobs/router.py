"""The worker protocol (worker tokens only) and the public view of a job."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from app.benchmarks.registry import Catalog
from app.core.blobs import BlobStore
from app.core.context import job_id_var
from app.core.deps import CurrentWorker, DatabaseDep, OptionalUser, SessionDep, SettingsDep
from app.core.errors import Forbidden, NotFound
from app.jobs import repository, service
from app.jobs.schemas import (
    BenchmarkRef,
    EnvironmentRef,
    HeartbeatRequest,
    HeartbeatResponse,
    JobDetail,
    JobOut,
    LeaseRef,
    LeaseRequest,
    LeaseResponse,
    PackageRef,
    ReleaseResponse,
    ResultRequest,
    ResultResponse,
    RunResultOut,
)
from app.submissions import access
from app.submissions.models import Submission, SubmissionVersion

router = APIRouter(tags=["worker protocol"])
public = APIRouter(tags=["jobs"])


def _run_config(claimed: service.Claimed, catalog: Catalog) -> dict[str, Any]:
    job, version = claimed.job, claimed.version
    manifest = version.manifest
    bench = catalog.by_id[version.benchmark_id].manifest
    claim_metrics: dict[str, dict[str, Any]] = {}
    for name, metric in manifest["claim"]["metrics"].items():
        spec = bench.metric(name)
        claim_metrics[name] = {"direction": spec.direction if spec else metric.get("direction")}
    return {
        "format": 1,
        "job_id": job.id,
        "seed": job.seed,
        "job_kind": job.kind,
        "benchmark": {"id": bench.id, "version": bench.version},
        "entry": {k: v for k, v in manifest["entry"].items() if v is not None},
        "hyperparameters": manifest.get("hyperparameters") or {},
        "claim_metrics": claim_metrics,
    }


@router.post(
    "/v1/worker/lease",
    operation_id="worker_lease",
    responses={204: {"description": "no job arrived within wait_s"}},
)
async def lease(
    body: LeaseRequest,
    request: Request,
    worker: CurrentWorker,
    db: DatabaseDep,
    settings: SettingsDep,
) -> Response:
    """Long-poll for a job the worker's labels satisfy; 204 when none arrived in time."""
    if body.backend == "local" and not settings.allow_unsandboxed:
        raise Forbidden(
            "this server does not give untrusted packages to the unsandboxed local "
            "backend; run the worker with --backend docker, or set "
            "REPRISE_ALLOW_UNSANDBOXED=true on the server for trusted use"
        )
    catalog: Catalog = request.app.state.catalog
    labels = worker.labels if body.labels is None else body.labels
    claimed = await service.lease(
        db,
        worker=worker,
        worker_id=body.worker_id,
        labels=labels,
        wait_s=min(body.wait_s, settings.queue.long_poll_cap_s),
        requirements=catalog.satisfiable(labels),
        lease_ttl_s=settings.queue.lease_ttl_s,
        notifier=request.app.state.notifier,
        on_finished=request.app.state.on_version_finished,
    )
    if claimed is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    job, version = claimed.job, claimed.version
    job_id_var.set(job.id)  # this request's log lines (and its access log) name the leased job
    entry = catalog.by_id[version.benchmark_id]
    base = f"/v1/worker/jobs/{job.id}"
    assert job.lease_token is not None and job.lease_expires_at is not None
    answer = LeaseResponse(
        job_id=job.id,
        attempt=job.attempt,
        lease_token=job.lease_token,
        lease_expires_at=job.lease_expires_at,
        lease_ttl_s=settings.queue.lease_ttl_s,
        kind=job.kind,
        seed=job.seed,
        submission_id=version.submission_id,
        version=version.number,
        package=PackageRef(
            sha256=version.package_sha256, size=version.package_size, url=f"{base}/package"
        ),
        benchmark=BenchmarkRef(
            id=entry.slug,
            version=entry.version,
            kind=entry.manifest.kind,
            content_hash=entry.content_hash,
            ingest_url=f"{base}/benchmark?phase=ingest",
            score_url=f"{base}/benchmark?phase=score",
            ingest_sha256=entry.ingest_bundle_sha256,
            score_sha256=entry.score_bundle_sha256,
            limits=entry.manifest.limits.model_dump(exclude={"requires"}),
        ),
        environment=EnvironmentRef.model_validate(version.environment),
        run_config=_run_config(claimed, catalog),
    )
    return Response(answer.model_dump_json(), media_type="application/json")


def _stream_blob(blobs: BlobStore, sha256: str, etag: str) -> StreamingResponse:
    return StreamingResponse(
        blobs.iter_chunks(sha256),
        media_type="application/octet-stream",
        headers={"ETag": f'"{etag}"', "Content-Length": str(blobs.size(sha256))},
    )


@router.get(
    "/v1/worker/jobs/{job_id}/package",
    operation_id="worker_package",
    response_class=StreamingResponse,
)
async def package(
    job_id: int,
    request: Request,
    worker: CurrentWorker,
    session: SessionDep,
    lease_token: Annotated[str, Query(min_length=8, max_length=64)],
    attempt: Annotated[int, Query(ge=1)],
) -> StreamingResponse:
    """The package archive of a leased job; verify its sha256 against the lease."""
    job = await service.check_lease(
        session, job_id, LeaseRef(lease_token=lease_token, attempt=attempt)
    )
    version = await session.get(SubmissionVersion, job.version_id)
    assert version is not None
    return _stream_blob(request.app.state.blobs, version.package_sha256, version.package_sha256)


@router.get(
    "/v1/worker/jobs/{job_id}/benchmark",
    operation_id="worker_benchmark",
    response_class=StreamingResponse,
)
async def benchmark_bundle(
    job_id: int,
    request: Request,
    worker: CurrentWorker,
    session: SessionDep,
    phase: Annotated[Literal["ingest", "score"], Query()],
    lease_token: Annotated[str, Query(min_length=8, max_length=64)],
    attempt: Annotated[int, Query(ge=1)],
) -> StreamingResponse:
    """Harness and data for one phase; the hidden test data only in the score bundle."""
    job = await service.check_lease(
        session, job_id, LeaseRef(lease_token=lease_token, attempt=attempt)
    )
    version = await session.get(SubmissionVersion, job.version_id)
    assert version is not None
    entry = request.app.state.catalog.by_id[version.benchmark_id]
    sha = entry.score_bundle_sha256 if phase == "score" else entry.ingest_bundle_sha256
    return _stream_blob(request.app.state.blobs, sha, f"{entry.content_hash}-{phase}")


@router.post("/v1/worker/jobs/{job_id}/heartbeat", operation_id="worker_heartbeat")
async def heartbeat(
    job_id: int,
    body: HeartbeatRequest,
    worker: CurrentWorker,
    session: SessionDep,
    settings: SettingsDep,
) -> HeartbeatResponse:
    """Extend the lease; ``cancel: true`` asks the worker to stop."""
    job = await service.heartbeat(session, job_id, body, lease_ttl_s=settings.queue.lease_ttl_s)
    assert job.lease_expires_at is not None
    return HeartbeatResponse(lease_expires_at=job.lease_expires_at, cancel=job.cancel_requested)


@router.post("/v1/worker/jobs/{job_id}/result", operation_id="worker_result")
async def result(
    job_id: int,
    body: ResultRequest,
    request: Request,
    worker: CurrentWorker,
    session: SessionDep,
) -> ResultResponse:
    """Record the outcome of a leased job once; a duplicate is a no-op, a stale lease 409."""
    recorded = await service.record_result(
        session,
        job_id,
        body,
        notifier=request.app.state.notifier,
        on_finished=request.app.state.on_version_finished,
    )
    return ResultResponse(recorded=recorded.recorded, duplicate=recorded.duplicate)


@router.post("/v1/worker/jobs/{job_id}/release", operation_id="worker_release")
async def release(
    job_id: int,
    body: LeaseRef,
    request: Request,
    worker: CurrentWorker,
    session: SessionDep,
) -> ReleaseResponse:
    """Hand an unfinished lease back without spending an attempt (graceful shutdown)."""
    await service.release(session, job_id, body, notifier=request.app.state.notifier)
    return ReleaseResponse(released=True)


def job_out(job: Any, submission_id: int, version_number: int) -> dict[str, Any]:
    return {
        **{k: getattr(job, k) for k in JobOut.model_fields if hasattr(job, k)},
        "submission_id": submission_id,
        "version": version_number,
    }


@public.get("/v1/jobs/{job_id}", operation_id="get_job")
async def get_job(job_id: int, session: SessionDep, user: OptionalUser) -> JobDetail:
    """A job's status, log tail (live while it runs), result and provenance."""
    job = await repository.get_job(session, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}")
    version = await session.get(SubmissionVersion, job.version_id)
    assert version is not None
    submission = await session.get(Submission, version.submission_id)
    if submission is None or not access.can_read(submission, user):
        raise NotFound(f"no job {job_id}")
    results = await repository.results_of_job(session, job_id)
    attempts = [RunResultOut.model_validate(r) for r in results]
    final = next(
        (
            a
            for a in attempts
            if a.attempt == job.attempt and job.status not in ("queued", "running")
        ),
        None,
    )
    return JobDetail.model_validate(
        {
            **job_out(job, submission.id, version.number),
            "log_tail": job.log_tail,
            "result": final,
            "attempts": attempts,
        }
    )
