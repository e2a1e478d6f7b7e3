"""``/metrics`` after driving jobs through the worker protocol: queue depth by label set, lease
expiries on both expiry paths, job results and durations by outcome, verdict counts read from
the database (the same on every replica), request latencies by route template."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from app.core.config import Settings
from app.jobs.models import RunResult
from app.jobs.service import sweep_expired
from app.main import create_app
from tests.conftest import Account
from tests.helpers import toy_manifest
from tests.jobs.test_queue import WorkerApi, _expire, submit
from tests.verdicts.test_wiring import _run_all

GPU_MANIFEST = toy_manifest(benchmark='[benchmark]\nid = "toy-gpu"\nversion = 1\n')
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]  # (name, labels) -> value


async def scrape(client: httpx.AsyncClient) -> Samples:
    """Every sample of ``/metrics`` by (name, labels)."""
    resp = await client.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")  # no Accept
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(resp.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def worker(client: httpx.AsyncClient, worker_token: str) -> WorkerApi:
    return WorkerApi(client, worker_token)


async def test_a_fresh_server_exposes_every_family(client: httpx.AsyncClient) -> None:
    samples = await scrape(client)
    names = {name for name, _ in samples}
    assert value(samples, "reprise_metrics_database_up") == 1
    assert value(samples, "reprise_build_info", version="0.1.0") == 1
    # An empty queue is an explicit 0, so an alert on it never reads "no data".
    assert ("reprise_queue_jobs", frozenset({("requires", ""), ("status", "queued")})) in samples
    assert value(samples, "reprise_queue_jobs", requires="", status="running") == 0
    assert "process_resident_memory_bytes" in names
    resp = await client.get("/metrics")
    for family in (
        "reprise_http_request_duration_seconds",
        "reprise_lease_expiries_total",
        "reprise_job_results_total",
        "reprise_job_duration_seconds",
        "reprise_queue_oldest_wait_seconds",
        "reprise_verdicts",
    ):
        assert f"# TYPE {family} " in resp.text, family


async def test_openmetrics_is_negotiated(client: httpx.AsyncClient) -> None:
    resp = await client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert resp.headers["content-type"].startswith("application/openmetrics-text")
    assert resp.text.endswith("# EOF\n")
    assert resp.text.count("# EOF") == 1
    assert "# TYPE reprise_lease_expiries counter" in resp.text


async def test_queue_depth_by_label_set_and_status(
    app: FastAPI, client: httpx.AsyncClient, alice: Account, worker: WorkerApi
) -> None:
    plain = await submit(client, alice)
    gpu = await submit(client, alice, GPU_MANIFEST)
    samples = await scrape(client)
    assert value(samples, "reprise_queue_jobs", requires="", status="queued") == len(plain["jobs"])
    assert value(samples, "reprise_queue_jobs", requires="gpu=true", status="queued") == len(
        gpu["jobs"]
    )
    assert value(samples, "reprise_queue_oldest_wait_seconds", requires="gpu=true") >= 0
    assert (
        "reprise_queue_oldest_wait_seconds",
        frozenset({("requires", "gpu=true")}),
    ) in samples
    assert await worker.lease() is not None  # the plain worker takes a plain job
    samples = await scrape(client)
    assert (
        value(samples, "reprise_queue_jobs", requires="", status="queued") == len(plain["jobs"]) - 1
    )
    assert value(samples, "reprise_queue_jobs", requires="", status="running") == 1
    assert value(samples, "reprise_queue_jobs", requires="gpu=true", status="running") == 0


async def test_results_durations_and_verdicts_by_outcome(
    app: FastAPI, client: httpx.AsyncClient, alice: Account, worker: WorkerApi
) -> None:
    sub = await submit(client, alice)
    failing = sub["version"]["seeds"]["fresh"][1]
    # One infrastructure error first: recorded as a result, re-queued, no duration yet.
    lease = await worker.lease()
    assert lease is not None
    resp = await worker.result(lease, outcome="infrastructure_error", metrics={}, reason="disk")
    assert resp.status_code == 200
    samples = await scrape(client)
    assert value(samples, "reprise_job_results_total", outcome="infrastructure_error") == 1
    assert value(samples, "reprise_job_duration_seconds_count", outcome="infrastructure_error") == 0

    await _run_all(worker, {}, outcome_for={failing: "user_error"})
    samples = await scrape(client)
    n_jobs = len(sub["jobs"])
    failed = sum(1 for j in sub["jobs"] if j["seed"] == failing)
    assert value(samples, "reprise_job_results_total", outcome="user_error") == failed
    assert value(samples, "reprise_job_results_total", outcome="succeeded") == n_jobs - failed
    assert (
        value(samples, "reprise_job_duration_seconds_count", outcome="succeeded") == n_jobs - failed
    )
    assert value(samples, "reprise_job_duration_seconds_count", outcome="user_error") == failed
    assert value(samples, "reprise_job_duration_seconds_sum", outcome="succeeded") >= 0
    assert (
        value(samples, "reprise_job_duration_seconds_bucket", outcome="succeeded", le="+Inf")
        == n_jobs - failed
    )
    assert value(samples, "reprise_queue_jobs", requires="", status="queued") == 0
    verdict = (await client.get(f"/v1/submissions/{sub['id']}")).json()["verdict"]
    assert value(samples, "reprise_verdicts", benchmark="toy", verdict=verdict) == 1
    assert sum(v for (name, _), v in samples.items() if name == "reprise_verdicts") == 1


async def test_lease_expiries_are_counted_on_the_lease_path_and_by_the_sweep(
    app: FastAPI, client: httpx.AsyncClient, alice: Account, worker: WorkerApi
) -> None:
    await submit(client, alice)
    lease = await worker.lease()
    assert lease is not None
    job_id = lease["job_id"]
    # 1: the next lease call finds the expired lease itself (no sweeper ran).
    await _expire(app, job_id)
    lease = await worker.lease()
    assert lease is not None
    assert (lease["job_id"], lease["attempt"]) == (job_id, 2)
    samples = await scrape(client)
    assert value(samples, "reprise_lease_expiries_total") == 1
    assert value(samples, "reprise_job_results_total", outcome="infrastructure_error") == 1
    # 2 and 3: the periodic sweep; the third expiry ends the job after max_attempts.
    await _expire(app, job_id)
    await sweep_expired(app.state.db, notifier=app.state.notifier, on_finished=None)
    lease = await worker.lease()
    assert lease is not None
    assert lease["attempt"] == 3
    await _expire(app, job_id)
    await sweep_expired(app.state.db, notifier=app.state.notifier, on_finished=None)
    samples = await scrape(client)
    assert value(samples, "reprise_lease_expiries_total") == 3
    assert value(samples, "reprise_job_duration_seconds_count", outcome="infrastructure_error") == 1
    job = (await client.get(f"/v1/jobs/{job_id}")).json()
    assert job["status"] == "infrastructure_error"


async def test_a_rolled_back_transaction_counts_nothing(
    app: FastAPI, client: httpx.AsyncClient, alice: Account, worker: WorkerApi
) -> None:
    await submit(client, alice)
    lease = await worker.lease()
    assert lease is not None

    async def flush_then_fail() -> None:
        async with app.state.db.session(write=True) as s:
            s.add(
                RunResult(
                    job_id=lease["job_id"],
                    attempt=lease["attempt"],
                    lease_token=None,
                    outcome="infrastructure_error",
                    metrics={},
                    phases=[],
                    provenance={},
                )
            )
            await s.flush()  # the instrumentation saw the row...
            raise RuntimeError("abort")  # ...and the transaction never committed

    with pytest.raises(RuntimeError):
        await flush_then_fail()
    samples = await scrape(client)
    assert value(samples, "reprise_lease_expiries_total") == 0
    assert value(samples, "reprise_job_results_total", outcome="infrastructure_error") == 0


async def test_request_latency_by_route_template(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/jobs/424242")).status_code == 404
    assert (await client.get("/no/such/page")).status_code == 404
    samples = await scrape(client)
    assert (
        value(
            samples,
            "reprise_http_request_duration_seconds_count",
            method="GET",
            route="/v1/jobs/{job_id}",
            status="404",
        )
        == 1
    )
    assert (
        value(
            samples,
            "reprise_http_request_duration_seconds_count",
            method="GET",
            route="unmatched",
            status="404",
        )
        == 1
    )


@pytest.fixture
async def second_replica(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Another API process on the same database (a second replica)."""
    other = create_app(settings)
    async with other.router.lifespan_context(other):
        transport = httpx.ASGITransport(app=other)
        async with httpx.AsyncClient(transport=transport, base_url="http://replica") as c:
            yield c


async def test_database_gauges_agree_across_replicas_process_counters_do_not(
    client: httpx.AsyncClient,
    second_replica: httpx.AsyncClient,
    alice: Account,
    worker: WorkerApi,
) -> None:
    await submit(client, alice)
    await _run_all(worker, {})
    here, there = await scrape(client), await scrape(second_replica)

    def gauges(s: Samples) -> Samples:
        return {k: v for k, v in s.items() if k[0] in ("reprise_verdicts", "reprise_queue_jobs")}

    assert gauges(here) == gauges(there)
    assert sum(v for (n, _), v in gauges(here).items() if n == "reprise_verdicts") == 1
    # Results were recorded through the first replica only: sum process counters over replicas.
    assert value(here, "reprise_job_results_total", outcome="succeeded") > 0
    assert value(there, "reprise_job_results_total", outcome="succeeded") == 0


async def test_the_process_metrics_survive_a_database_outage(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.ops.router as ops_router

    async def broken(*args: object, **kwargs: object) -> None:
        raise OSError("connection refused")

    monkeypatch.setattr(ops_router, "database_snapshot", broken)
    samples = await scrape(client)
    assert value(samples, "reprise_metrics_database_up") == 0
    assert not any(name == "reprise_queue_jobs" for name, _ in samples)
    assert value(samples, "reprise_build_info", version="0.1.0") == 1
