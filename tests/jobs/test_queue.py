"""The job queue through the worker protocol: leases, long-poll wake-ups, heartbeats, fenced
results, expiry and re-queueing, labels, cancellation, release, and racing claims."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from app.jobs.models import Job, RunResult
from app.jobs.service import sweep_expired
from tests.conftest import Account
from tests.helpers import targz, toy_files, toy_manifest, upload


class WorkerApi:
    def __init__(self, client: httpx.AsyncClient, token: str, worker_id: str = "w1") -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}
        self.worker_id = worker_id

    async def lease(
        self, wait_s: float = 0, labels: dict[str, str] | None = None
    ) -> dict[str, Any] | None:
        body: dict[str, Any] = {"worker_id": self.worker_id, "wait_s": wait_s, "backend": "fake"}
        if labels is not None:
            body["labels"] = labels
        resp = await self.client.post("/v1/worker/lease", headers=self.headers, json=body)
        assert resp.status_code in (200, 204), resp.text
        return resp.json() if resp.status_code == 200 else None

    async def heartbeat(self, lease: dict[str, Any], **extra: Any) -> httpx.Response:
        return await self.client.post(
            f"/v1/worker/jobs/{lease['job_id']}/heartbeat",
            headers=self.headers,
            json={"lease_token": lease["lease_token"], "attempt": lease["attempt"], **extra},
        )

    async def result(
        self,
        lease: dict[str, Any],
        outcome: str = "succeeded",
        metrics: dict[str, float] | None = None,
        **extra: Any,
    ) -> httpx.Response:
        body = {
            "lease_token": lease["lease_token"],
            "attempt": lease["attempt"],
            "outcome": outcome,
            "metrics": metrics if metrics is not None else {"score": 2.0, "loss": 0.01},
            **extra,
        }
        return await self.client.post(
            f"/v1/worker/jobs/{lease['job_id']}/result", headers=self.headers, json=body
        )


@pytest.fixture
def worker(client: httpx.AsyncClient, worker_token: str) -> WorkerApi:
    return WorkerApi(client, worker_token)


async def submit(
    client: httpx.AsyncClient, account: Account, manifest: str | None = None
) -> dict[str, Any]:
    resp = await client.post(
        "/v1/submissions", headers=account.headers, **upload(targz(toy_files(manifest)))
    )
    assert resp.status_code == 202, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def test_lease_gives_a_complete_job_and_fifo_order(
    client: httpx.AsyncClient, alice: Account, worker: WorkerApi
) -> None:
    sub = await submit(client, alice)
    lease = await worker.lease()
    assert lease is not None
    assert lease["job_id"] == min(j["id"] for j in sub["jobs"])
    assert lease["attempt"] == 1
    assert lease["kind"] == "claimed"
    assert lease["run_config"]["entry"] == {"optimizer": "sgd:SGD"}
    assert lease["run_config"]["hyperparameters"] == {"lr": 0.1}
    assert lease["run_config"]["claim_metrics"] == {"score": {"direction": "higher"}}
    assert lease["benchmark"]["limits"]["memory_mb"] == 512
    assert lease["package"]["sha256"] == sub["version"]["package_sha256"]
    q = {"lease_token": lease["lease_token"], "attempt": lease["attempt"]}
    pkg = await client.get(lease["package"]["url"], params=q, headers=worker.headers)
    assert pkg.status_code == 200
    import hashlib

    assert hashlib.sha256(pkg.content).hexdigest() == lease["package"]["sha256"]
    stale = await client.get(
        lease["package"]["url"], params={**q, "attempt": 2}, headers=worker.headers
    )
    assert stale.status_code == 409


async def test_ingest_bundle_never_carries_the_hidden_test_data(
    client: httpx.AsyncClient, alice: Account, worker: WorkerApi
) -> None:
    import io
    import tarfile

    await submit(client, alice)
    lease = await worker.lease()
    assert lease is not None
    q = {"lease_token": lease["lease_token"], "attempt": lease["attempt"]}
    names = {}
    for phase in ("ingest", "score"):
        resp = await client.get(
            f"/v1/worker/jobs/{lease['job_id']}/benchmark",
            params={**q, "phase": phase},
            headers=worker.headers,
        )
        assert resp.status_code == 200
        with tarfile.open(fileobj=io.BytesIO(resp.content)) as tar:
            names[phase] = set(tar.getnames())
    assert "train/train.npz" in names["ingest"]
    assert "harness/harness.py" in names["ingest"]
    assert not any(n.startswith("test/") for n in names["ingest"])
    assert "test/test.npz" in names["score"]
    assert not any(n.startswith("harness/data") for n in names["score"])


async def test_idle_lease_long_polls_and_wakes_on_enqueue(
    client: httpx.AsyncClient, alice: Account, worker: WorkerApi
) -> None:
    assert await worker.lease(wait_s=0) is None
    waiting = asyncio.create_task(worker.lease(wait_s=20))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await submit(client, alice)
    lease = await asyncio.wait_for(waiting, timeout=20)
    assert lease is not None


async def test_result_is_recorded_once_and_stale_leases_are_refused(
    app: FastAPI, client: httpx.AsyncClient, alice: Account, worker: WorkerApi
) -> None:
    await submit(client, alice)
    lease = await worker.lease()
    assert lease is not None
    hb = await worker.heartbeat(lease, phase="ingest", log_tail="epoch 1")
    assert hb.status_code == 200
    assert hb.json()["cancel"] is False
    first = await worker.result(lease)
    assert first.json() == {"recorded": True, "duplicate": False}
    again = await worker.result(lease)
    assert again.status_code == 200
    assert again.json() == {"recorded": False, "duplicate": True}
    forged = dict(lease, lease_token="x" * 32)
    assert (await worker.result(forged)).status_code == 409
    assert (await worker.heartbeat(lease)).status_code == 409
    async with app.state.db.session() as s:
        rows = (
            (await s.execute(select(RunResult).where(RunResult.job_id == lease["job_id"])))
            .scalars()
            .all()
        )
    assert len(rows) == 1
    job = (await client.get(f"/v1/jobs/{lease['job_id']}")).json()
    assert job["status"] == "succeeded"
    assert job["result"]["metrics"] == {"score": 2.0, "loss": 0.01}


async def _expire(app: FastAPI, job_id: int) -> None:
    async with app.state.db.session(write=True) as s:
        await s.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(lease_expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )


async def test_expired_lease_is_requeued_then_fails_after_max_attempts(
    app: FastAPI, client: httpx.AsyncClient, alice: Account, worker: WorkerApi
) -> None:
    await submit(client, alice)
    lease = await worker.lease()
    assert lease is not None
    job_id = lease["job_id"]
    for attempt in (1, 2, 3):
        assert lease is not None
        assert (lease["job_id"], lease["attempt"]) == (job_id, attempt)
        await _expire(app, job_id)
        await sweep_expired(app.state.db, notifier=app.state.notifier, on_finished=None)
        # The worker whose lease ran out comes back late: fenced off, nothing recorded.
        assert (await worker.result(lease)).status_code == 409
        assert (await worker.heartbeat(lease)).status_code == 409
        lease = await worker.lease()
    job = (await client.get(f"/v1/jobs/{job_id}")).json()
    assert job["status"] == "infrastructure_error"
    assert "expired" in job["reason"]
    assert [a["attempt"] for a in job["attempts"]] == [1, 2, 3]


async def test_infrastructure_error_result_retries_on_another_attempt(
    client: httpx.AsyncClient, alice: Account, worker: WorkerApi
) -> None:
    await submit(client, alice)
    lease = await worker.lease()
    assert lease is not None
    resp = await worker.result(
        lease, outcome="infrastructure_error", metrics={}, reason="disk full"
    )
    assert resp.json()["recorded"] is True
    again = await worker.lease()
    assert again is not None
    assert (again["job_id"], again["attempt"]) == (lease["job_id"], 2)


async def test_jobs_with_label_requirements_go_only_to_matching_workers(
    client: httpx.AsyncClient, alice: Account, maintainer: Account
) -> None:
    manifest = toy_manifest(benchmark='[benchmark]\nid = "toy-gpu"\nversion = 1\n')
    await submit(client, alice, manifest)
    plain = (
        await client.post("/v1/workers", headers=maintainer.headers, json={"name": "cpu"})
    ).json()
    gpu = (
        await client.post(
            "/v1/workers",
            headers=maintainer.headers,
            json={"name": "gpu", "labels": {"gpu": "true"}},
        )
    ).json()
    assert await WorkerApi(client, plain["token"]).lease() is None
    assert await WorkerApi(client, gpu["token"]).lease(labels={}) is None  # declared fewer labels
    assert await WorkerApi(client, gpu["token"]).lease() is not None
    forged = await client.post(
        "/v1/worker/lease",
        headers={"Authorization": f"Bearer {plain['token']}"},
        json={"worker_id": "x", "labels": {"gpu": "true"}, "wait_s": 0},
    )
    assert forged.status_code == 403


async def test_withdrawal_cancels_running_jobs_through_the_heartbeat(
    client: httpx.AsyncClient, alice: Account, worker: WorkerApi
) -> None:
    sub = await submit(client, alice)
    lease = await worker.lease()
    assert lease is not None
    await client.post(f"/v1/submissions/{sub['id']}/withdraw", headers=alice.headers)
    hb = await worker.heartbeat(lease)
    assert hb.json()["cancel"] is True
    assert await worker.lease() is None
    await worker.result(lease, outcome="cancelled", metrics={})
    job = (await client.get(f"/v1/jobs/{lease['job_id']}", headers=alice.headers)).json()
    assert job["status"] == "cancelled"


async def test_release_requeues_without_spending_an_attempt(
    client: httpx.AsyncClient, alice: Account, worker: WorkerApi
) -> None:
    await submit(client, alice)
    lease = await worker.lease()
    assert lease is not None
    resp = await client.post(
        f"/v1/worker/jobs/{lease['job_id']}/release",
        headers=worker.headers,
        json={"lease_token": lease["lease_token"], "attempt": lease["attempt"]},
    )
    assert resp.status_code == 200
    again = await worker.lease()
    assert again is not None
    assert (again["job_id"], again["attempt"]) == (lease["job_id"], 1)


async def test_version_finishes_when_every_job_ended(
    app: FastAPI, client: httpx.AsyncClient, alice: Account, worker: WorkerApi
) -> None:
    calls: list[int] = []

    async def hook(session: Any, version: Any) -> None:
        calls.append(version.id)

    app.state.on_version_finished = hook
    sub = await submit(client, alice)
    for _ in sub["jobs"]:
        lease = await worker.lease()
        assert lease is not None
        assert (await worker.result(lease)).status_code == 200
    assert await worker.lease() is None
    detail = (await client.get(f"/v1/submissions/{sub['id']}")).json()
    assert detail["version"]["status"] == "finished"
    assert len(calls) == 1


async def test_racing_workers_get_distinct_jobs(
    app: FastAPI, client: httpx.AsyncClient, alice: Account, worker_token: str
) -> None:
    """Many concurrent claims for few jobs: each job goes to exactly one worker."""
    sub = await submit(client, alice)
    workers = [WorkerApi(client, worker_token, f"w{i}") for i in range(12)]
    leases = await asyncio.gather(*(w.lease(wait_s=0) for w in workers))
    got = [lease["job_id"] for lease in leases if lease is not None]
    assert len(got) == len(set(got)) == len(sub["jobs"])
    async with app.state.db.session() as s:
        attempts = (await s.execute(select(Job.attempt))).scalars().all()
    assert set(attempts) == {1}
