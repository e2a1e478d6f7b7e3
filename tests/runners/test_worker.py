"""The worker against the real API (uvicorn on a loopback port) with the local backend, and
against a scripted API for the paths a real server cannot be made to take on demand."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core.config import QueueSettings, Settings
from runners.backends.base import RunResult, RunSpec
from runners.backends.fake import FakeBackend
from runners.backends.local import LocalBackend
from runners.worker import EXIT_FATAL, EXIT_OK, Worker
from tests.helpers import toy_files
from tests.runners.workerkit import (
    GATED_OPTIMIZER,
    FakeServer,
    Reprise,
    broken_files,
    gated_files,
    kill,
    live_reprise,
    read_health,
    running_phase,
    start_worker,
    wait_for,
    worker_process,
)

METRICS = '{"metrics": {"score": 2.0, "loss": 0.01}, "self_reported": false}'


@pytest.fixture
def reprise(settings: Settings) -> Iterator[Reprise]:
    with live_reprise(settings) as live:
        yield live


@pytest.fixture
def short_ttl(settings: Settings) -> Iterator[Reprise]:
    quick = settings.model_copy(
        update={"queue": QueueSettings(lease_ttl_s=2, sweep_interval_s=0.5)})
    with live_reprise(quick) as live:
        yield live


@pytest.fixture
def local(tmp_path: Path) -> LocalBackend:
    return LocalBackend(scratch_root=tmp_path / "local-scratch")


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "gate"
    path.write_text("closed")
    yield path
    path.unlink(missing_ok=True)


def fake_backend() -> FakeBackend:
    def write(spec: RunSpec, out: Path) -> None:
        if spec.labels["reprise.phase"] == "score":
            (out / "metrics.json").write_text(METRICS)

    return FakeBackend(write_outputs=write)


def stop_process(proc: subprocess.Popen[bytes]) -> str:
    if proc.poll() is None:
        kill(proc)
    out, _ = proc.communicate(timeout=30)
    return out.decode(errors="replace")


# ---------------------------------------------------------------------------------- end to end


def test_toy_submission_end_to_end(reprise: Reprise, local: LocalBackend, tmp_path: Path) -> None:
    submitted = reprise.submit()
    health = tmp_path / "health.json"
    config = reprise.config(tmp_path / "work", concurrency=2, health_file=health)
    running = start_worker(config, local)
    try:
        detail = reprise.wait_finished(submitted["id"])
        live = wait_for(lambda: (h := read_health(health)) and h["jobs_finished"] >= 7 and h,
                        what="health file")
    finally:
        code = running.stop()
    assert code == EXIT_OK
    assert detail["version"]["status"] == "finished"
    assert len(detail["jobs"]) == 7
    for brief in detail["jobs"]:
        job = reprise.job(brief["id"])
        assert job["status"] == "succeeded", job
        assert job["attempt"] == 1
        assert len(job["attempts"]) == 1
        result = job["result"]
        assert set(result["metrics"]) == {"score", "loss"}
        assert result["self_reported"] is False
        assert result["curve"]
        assert len(result["curve"]["step"]) == 60
        assert [p["phase"] for p in result["phases"]] == ["ingest", "score"]
        assert all(p["exit_code"] == 0 for p in result["phases"])
        prov = result["provenance"]
        assert prov["backend"] == "local"
        assert prov["worker_id"] == "test-worker"
        assert prov["benchmark"] == "toy@1"
        assert prov["seed"] == job["seed"]
        assert prov["package_sha256"] == detail["version"]["package_sha256"]
        assert prov["harness_version"]
        assert prov["cpu_model"]
        assert prov["image"]  # the local interpreter
        assert result["worker_id"] == "test-worker"
    assert live["worker_id"] == "test-worker"
    assert live["backend"] == "local"
    assert live["backend_healthy"] is True
    assert live["last_lease_at"]
    final = read_health(health)
    assert final is not None
    assert final["status"] == "stopped"
    assert final["running_jobs"] == []
    assert list((tmp_path / "work" / "jobs").iterdir()) == []
    assert len(list((tmp_path / "work" / "bundles").iterdir())) == 2  # ingest + score, cached


def test_broken_package_ends_user_error(reprise: Reprise, local: LocalBackend,
                                        tmp_path: Path) -> None:
    submitted = reprise.submit(broken_files())
    first = submitted["jobs"][0]["id"]
    running = start_worker(reprise.config(tmp_path / "work"), local)
    try:
        job = reprise.wait_job(first, lambda j: j["status"] not in ("queued", "running"),
                               what="the first job to end")
    finally:
        assert running.stop(hard=True) == EXIT_OK  # the other jobs are released, not failed
    assert job["status"] == "user_error"
    assert job["reason"].startswith("cannot import sgd:SGD"), job["reason"]
    assert "definitely_not_a_module_reprise" in job["reason"]
    assert job["result"]["outcome"] == "user_error"
    assert [p["phase"] for p in job["result"]["phases"]] == ["ingest"]
    assert job["result"]["phases"][0]["exit_code"] == 2
    assert "Traceback" not in job["reason"]
    assert job["result"]["metrics"] == {}


# ---------------------------------------------------------------------------------- faults


def test_worker_killed_mid_job_is_completed_once_elsewhere(
    short_ttl: Reprise, local: LocalBackend, gate: Path, tmp_path: Path,
) -> None:
    reprise = short_ttl
    reprise.submit(gated_files(gate))
    health = tmp_path / "sub-health.json"
    proc = worker_process(reprise, tmp_path / "sub-work", health)
    try:
        job = wait_for(lambda: running_phase(health), what="the subprocess to run a job")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        output = stop_process(proc)
    job_id = job["job_id"]
    gate.unlink()
    running = start_worker(reprise.config(tmp_path / "work", worker_id="rescuer"), local)
    try:
        final = reprise.wait_job(job_id, lambda j: j["status"] not in ("queued", "running"),
                                 what="the rescue", timeout=60)
    finally:
        running.stop(hard=True)
    assert final["status"] == "succeeded", (final, output[-3000:])
    attempts = {a["attempt"]: a for a in final["attempts"]}
    assert sorted(attempts) == [1, 2]
    assert attempts[1]["outcome"] == "infrastructure_error"
    assert "expired" in attempts[1]["reason"]
    assert attempts[1]["worker_id"] == "sub-worker"
    assert attempts[2]["outcome"] == "succeeded"
    assert attempts[2]["worker_id"] == "rescuer"
    assert sum(a["outcome"] == "succeeded" for a in final["attempts"]) == 1


def test_stale_result_is_refused_and_changes_nothing(reprise: Reprise) -> None:
    reprise.submit()
    client = reprise.client()
    old = client.lease("w-old", {}, wait_s=1, backend="fake")
    assert old is not None
    assert client.release(old)
    new = client.lease("w-new", {}, wait_s=1, backend="fake")
    assert new is not None
    assert new.job_id == old.job_id
    assert new.lease_token != old.lease_token
    before = reprise.job(old.job_id)
    ack = client.post_result(old, {"outcome": "succeeded", "metrics": {"score": 99.0}})
    assert ack.lease_lost
    assert not ack.recorded
    raw = reprise.http.post(f"/v1/worker/jobs/{old.job_id}/result",
                            headers={"Authorization": f"Bearer {reprise.worker_token}"},
                            json={**old.ref, "outcome": "succeeded"})
    assert raw.status_code == 409
    assert raw.headers["content-type"].startswith("application/problem+json")
    after = reprise.job(old.job_id)
    assert after["status"] == before["status"] == "running"
    assert after["attempts"] == []
    assert after["attempt"] == before["attempt"]
    assert client.heartbeat(old).lease_lost
    assert not client.heartbeat(new).lease_lost


def test_stale_result_after_expiry_is_409(short_ttl: Reprise) -> None:
    reprise = short_ttl
    reprise.submit()
    client = reprise.client()
    lease = client.lease("w-slow", {}, wait_s=1, backend="fake")
    assert lease is not None
    reprise.wait_job(lease.job_id, lambda j: j["status"] == "queued", what="expiry")
    ack = client.post_result(lease, {"outcome": "succeeded", "metrics": {"score": 1.0}})
    assert ack.lease_lost
    assert not ack.recorded
    assert not ack.duplicate
    job = reprise.job(lease.job_id)
    assert job["status"] == "queued"
    assert len(job["attempts"]) == 1
    assert job["attempts"][0]["outcome"] == "infrastructure_error"


def test_duplicate_result_is_recorded_once(reprise: Reprise) -> None:
    reprise.submit()
    client = reprise.client()
    lease = client.lease("w-1", {}, wait_s=1, backend="fake")
    assert lease is not None
    payload = {"outcome": "user_error", "reason": "the entry does not import"}
    first = client.post_result(lease, payload)
    second = client.post_result(lease, payload)
    assert first.recorded
    assert not first.duplicate
    assert second.duplicate
    assert not second.recorded
    job = reprise.job(lease.job_id)
    assert job["status"] == "user_error"
    assert len(job["attempts"]) == 1


def test_api_restart_mid_job_loses_nothing(
    reprise: Reprise, local: LocalBackend, gate: Path, tmp_path: Path,
) -> None:
    submitted = reprise.submit(gated_files(gate))
    # Warm the worker's bundle cache, so that after ingest only the result needs the API.
    client = reprise.client()
    warm = client.lease("warm-up", {}, wait_s=1, backend="local")
    assert warm is not None
    client.download_benchmark(warm, "ingest", tmp_path / "work" / "bundles")
    client.download_benchmark(warm, "score", tmp_path / "work" / "bundles")
    assert client.release(warm)
    running = start_worker(reprise.config(tmp_path / "work", heartbeat_interval_s=0.2), local)
    worker = running.worker
    try:
        job = wait_for(lambda: next((j for j in worker.running_jobs if j.phase == "ingest"), None),
                       what="a job in ingest")
        reprise.server.stop()
        gate.unlink()  # the job finishes while the API is down; its result must wait
        wait_for(lambda: job.phase == "report", what="the job to finish")
        reprise.server.start()
        final = reprise.wait_job(job.lease.job_id, lambda j: j["status"] == "succeeded",
                                 what="the retried result")
    finally:
        running.stop(hard=True)
    assert final["attempt"] == 1
    assert len(final["attempts"]) == 1
    assert final["result"]["metrics"]["score"] > 0
    assert submitted["id"]


def test_sigterm_lets_the_running_job_finish(
    reprise: Reprise, gate: Path, tmp_path: Path,
) -> None:
    submitted = reprise.submit(gated_files(gate))
    health = tmp_path / "sub-health.json"
    proc = worker_process(reprise, tmp_path / "sub-work", health, "--grace", "60")
    try:
        job = wait_for(lambda: running_phase(health), what="a job in ingest")
        proc.send_signal(signal.SIGTERM)
        wait_for(lambda: (h := read_health(health)) and h["status"] == "stopping",
                 what="the worker to drain")
        gate.unlink()
        code = proc.wait(timeout=60)
    finally:
        output = stop_process(proc)
    assert code == 0, output[-3000:]
    final = reprise.job(job["job_id"])
    assert final["status"] == "succeeded"
    assert final["attempt"] == 1
    others = [j for j in reprise.submission(submitted["id"])["jobs"] if j["id"] != job["job_id"]]
    assert all(j["status"] == "queued" and j["attempt"] == 0 for j in others)  # no new leases
    assert read_health(health)["status"] == "stopped"  # type: ignore[index]


def test_sigterm_after_the_grace_releases_the_lease(
    reprise: Reprise, gate: Path, tmp_path: Path,
) -> None:
    reprise.submit(gated_files(gate))
    health = tmp_path / "sub-health.json"
    proc = worker_process(reprise, tmp_path / "sub-work", health, "--grace", "0")
    try:
        job = wait_for(lambda: running_phase(health), what="a job in ingest")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    finally:
        output = stop_process(proc)
    assert code == 0, output[-3000:]
    assert "lease released" in output
    final = reprise.job(job["job_id"])
    assert final["status"] == "queued"
    assert final["attempt"] == 0
    assert final["attempts"] == []
    assert list((tmp_path / "sub-work" / "jobs").iterdir()) == []


def test_server_cancel_stops_the_job(reprise: Reprise, tmp_path: Path) -> None:
    submitted = reprise.submit()
    backend = FakeBackend(hang=True)
    running = start_worker(reprise.config(tmp_path / "work", backend="fake",
                                          heartbeat_interval_s=0.1), backend)
    try:
        wait_for(lambda: backend.calls, what="a phase to start")
        job_id = int(backend.calls[0].labels["reprise.job"])
        resp = reprise.http.post(f"/v1/submissions/{submitted['id']}/withdraw",
                                 headers=reprise.member())
        assert resp.status_code == 200, resp.text
        final = reprise.wait_job(job_id, lambda j: j["status"] == "cancelled", what="cancel")
    finally:
        running.stop(hard=True)
    assert backend.cancelled == [f"reprise-{job_id}-1-ingest"]
    assert final["attempts"][0]["outcome"] == "cancelled"


def test_unhealthy_backend_claims_nothing_until_it_is_back(
    reprise: Reprise, tmp_path: Path,
) -> None:
    class Flaky(FakeBackend):
        up = False
        checks = 0

        def healthy(self) -> bool:
            self.checks += 1
            return self.up

    backend = Flaky(write_outputs=fake_backend().write_outputs)
    submitted = reprise.submit()
    health = tmp_path / "health.json"
    running = start_worker(reprise.config(tmp_path / "work", backend="fake", concurrency=2,
                                          health_file=health), backend)
    try:
        wait_for(lambda: backend.checks >= 6, what="health checks")
        unhealthy = read_health(health)
        detail = reprise.submission(submitted["id"])
        assert all(j["status"] == "queued" for j in detail["jobs"])
        assert backend.calls == []
        assert unhealthy is not None
        assert unhealthy["backend_healthy"] is False
        assert unhealthy["status"] == "unhealthy"
        backend.up = True
        detail = reprise.wait_finished(submitted["id"])
    finally:
        running.stop()
    assert all(j["status"] == "succeeded" for j in detail["jobs"])


# ---------------------------------------------------------------------------------- scripted API


def scripted_worker(
    tmp_path: Path, server: FakeServer, backend: FakeBackend, **overrides: Any,
) -> Worker:
    from runners.config import WorkerConfig

    values: dict[str, Any] = {
        "server": "http://reprise.test", "token": "worker-token", "backend": "fake",
        "worker_id": "w-script", "workdir": tmp_path / "work", "wait_s": 1.0, "grace_s": 5.0,
        "health_interval_s": 0.05, "backoff_initial_s": 0.01, "backoff_max_s": 0.05,
        "heartbeat_interval_s": 0.05,
    }
    values.update(overrides)
    return Worker(WorkerConfig(**values), backend=backend, client=server.client(wait_s=1.0))


def run_in_thread(worker: Worker) -> tuple[threading.Thread, list[int]]:
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(worker.run()), daemon=True)
    thread.start()
    return thread, codes


def test_reconcile_at_start_removes_only_this_workers_leftovers(tmp_path: Path) -> None:
    server = FakeServer()
    server.leases_left = 0
    backend = fake_backend()
    backend.leftovers = {"reprise-1-1-ingest": "w-script", "reprise-2-1-score": "someone-else"}
    (tmp_path / "work" / "jobs" / "9-1-deadbeef").mkdir(parents=True)
    worker = scripted_worker(tmp_path, server, backend)
    thread, codes = run_in_thread(worker)
    wait_for(lambda: server.count("lease") >= 1, what="leasing")
    worker.stop()
    thread.join(timeout=30)
    assert codes == [EXIT_OK]
    assert backend.reconciled == [("w-script", set())] * 2  # at start, and again at stop
    assert backend.leftovers == {"reprise-2-1-score": "someone-else"}
    assert list((tmp_path / "work" / "jobs").iterdir()) == []


def test_a_graceful_stop_removes_what_a_failed_removal_left(tmp_path: Path) -> None:
    # The chaos run found it: a container the engine would not delete while its connection was
    # cut stayed after the worker stopped, because only the next start reconciled.
    server = FakeServer()
    server.leases_left = 0
    backend = fake_backend()
    worker = scripted_worker(tmp_path, server, backend)
    thread, codes = run_in_thread(worker)
    wait_for(lambda: server.count("lease") >= 1, what="leasing")
    backend.leftovers["reprise-7-1-score"] = "w-script"  # a removal failed mid-run
    worker.stop()
    thread.join(timeout=30)
    assert codes == [EXIT_OK]
    assert backend.leftovers == {}


def test_a_failed_reconcile_at_stop_is_logged_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = FakeServer()
    server.leases_left = 0
    backend = fake_backend()
    worker = scripted_worker(tmp_path, server, backend)
    thread, codes = run_in_thread(worker)
    wait_for(lambda: server.count("lease") >= 1, what="leasing")
    backend.is_healthy = False  # the engine went away
    with caplog.at_level(logging.WARNING, logger="runners.worker"):
        worker.stop()
        thread.join(timeout=30)
    assert codes == [EXIT_OK]
    assert "reconcile at shutdown failed" in caplog.text


def test_heartbeat_409_abandons_the_job_and_posts_nothing(tmp_path: Path) -> None:
    server = FakeServer()
    backend = FakeBackend(hang=True)
    worker = scripted_worker(tmp_path, server, backend)
    thread, codes = run_in_thread(worker)
    wait_for(lambda: backend.calls, what="the phase to start")
    server.stale = True  # the lease expired and went to another worker
    wait_for(lambda: backend.cancelled, what="the job to stop")
    wait_for(lambda: not worker.running_jobs, what="the slot to give up the job")
    worker.stop()
    thread.join(timeout=30)
    assert codes == [EXIT_OK]
    assert server.results == []
    assert server.releases == []
    sent = [json.loads(r.content) for r in server.requests if r.url.path.endswith("/heartbeat")]
    assert sent
    assert sent[0]["phase"] == "ingest"


def test_heartbeat_forwards_cancel_and_the_worker_posts_cancelled(tmp_path: Path) -> None:
    server = FakeServer()
    backend = FakeBackend(hang=True)
    worker = scripted_worker(tmp_path, server, backend)
    thread, _ = run_in_thread(worker)
    wait_for(lambda: backend.calls, what="the phase to start")
    server.cancel = True
    wait_for(lambda: server.results, what="the result")
    worker.stop()
    thread.join(timeout=30)
    assert server.results[0]["outcome"] == "cancelled"


def test_a_rejected_result_is_replaced_by_an_infrastructure_error(tmp_path: Path) -> None:
    server = FakeServer()
    server.fail_next["result"] = [422]
    worker = scripted_worker(tmp_path, server, fake_backend())
    thread, _ = run_in_thread(worker)
    wait_for(lambda: server.results, what="the fallback result")
    worker.stop()
    thread.join(timeout=30)
    assert server.count("result") == 2
    assert server.results[0]["outcome"] == "infrastructure_error"
    assert "refused the worker's result" in server.results[0]["reason"]


def test_unauthorized_is_fatal(tmp_path: Path) -> None:
    server = FakeServer()
    server.fail_next["lease"] = [401]
    health = tmp_path / "health.json"
    worker = scripted_worker(tmp_path, server, fake_backend(), health_file=health)
    assert worker.run() == EXIT_FATAL
    final = read_health(health)
    assert final is not None
    assert final["status"] == "failed"
    assert "401" in final["error"]


def test_two_workers_cannot_share_a_workdir(tmp_path: Path) -> None:
    server = FakeServer()
    server.leases_left = 0
    first = scripted_worker(tmp_path, server, fake_backend())
    thread, codes = run_in_thread(first)
    wait_for(lambda: server.count("lease") >= 1, what="the first worker")
    second = scripted_worker(tmp_path, FakeServer(), fake_backend(), worker_id="w-two")
    assert second.run() == EXIT_FATAL
    first.stop()
    thread.join(timeout=30)
    assert codes == [EXIT_OK]


def test_a_job_leased_while_stopping_is_released(tmp_path: Path) -> None:
    server = FakeServer()
    worker = scripted_worker(tmp_path, server, fake_backend())
    original = server.handler

    def stop_on_lease(request: Any) -> Any:
        response = original(request)
        if request.url.path.endswith("/lease"):
            worker.stop()  # SIGTERM arrives while the long-poll is in flight
        return response

    server.handler = stop_on_lease  # type: ignore[method-assign]
    worker.client = server.client(wait_s=1.0)
    assert worker.run() == EXIT_OK
    assert server.results == []
    assert server.releases == [{"lease_token": server.token, "attempt": 1}]


def test_shutdown_grace_then_release_in_process(tmp_path: Path) -> None:
    server = FakeServer()
    backend = FakeBackend(hang=True)
    worker = scripted_worker(tmp_path, server, backend, grace_s=0.0)
    thread, codes = run_in_thread(worker)
    wait_for(lambda: backend.calls, what="the phase to start")
    worker.stop()
    thread.join(timeout=30)
    assert codes == [EXIT_OK]
    assert server.results == []
    assert len(server.releases) == 1


def test_health_json_is_complete(tmp_path: Path) -> None:
    server = FakeServer()
    backend = FakeBackend(hang=True)
    health = tmp_path / "health.json"
    worker = scripted_worker(tmp_path, server, backend, health_file=health)
    thread, _ = run_in_thread(worker)
    wait_for(lambda: running_phase(health), what="the job in the health file")
    data = json.loads(health.read_text())
    worker.stop()
    worker.stop()  # the second request skips the grace
    thread.join(timeout=30)
    assert data["status"] == "ok"
    assert data["worker_id"] == "w-script"
    assert data["backend"] == "fake"
    assert data["backend_healthy"] is True
    assert data["running_jobs"][0]["job_id"] == server.job_id
    assert data["last_lease_at"]
    assert data["last_job_at"]
    assert {"pid", "version", "updated_at", "jobs_finished", "error"} <= set(data)


def test_result_payload_matches_the_server_schema(tmp_path: Path) -> None:
    """What the worker posts validates against the server's own request model."""
    from app.jobs.schemas import ResultRequest

    server = FakeServer()

    def slow_log(spec: RunSpec) -> RunResult:
        return RunResult(exit_code=0, wall_s=1.0, log_tail="é" * 70_000)

    backend = FakeBackend(slow_log, write_outputs=fake_backend().write_outputs)
    worker = scripted_worker(tmp_path, server, backend)
    thread, _ = run_in_thread(worker)
    wait_for(lambda: server.results, what="the result")
    worker.stop()
    thread.join(timeout=30)
    body = server.results[0]
    ResultRequest.model_validate(body)
    assert body["outcome"] == "succeeded"


def test_a_running_jobs_log_tail_is_visible_through_the_api(
    reprise: Reprise, local: LocalBackend, gate: Path, tmp_path: Path,
) -> None:
    """What a phase prints reaches GET /v1/jobs/{id} through the heartbeats, while it runs."""
    chatty = "print('warming up the momentum buffers', flush=True)\n" + GATED_OPTIMIZER.format(
        gate=str(gate))
    submitted = reprise.submit(toy_files(**{"sgd.py": chatty}))
    first = min(j["id"] for j in submitted["jobs"])
    running = start_worker(
        reprise.config(tmp_path / "work", heartbeat_interval_s=0.2), local)
    try:
        live = reprise.wait_job(
            first, lambda j: j["status"] == "running" and "warming up" in (j["log_tail"] or ""),
            what="a live log tail", timeout=60)
        assert live["phase"] == "ingest"
        gate.unlink()
        done = reprise.wait_job(first, lambda j: j["status"] == "succeeded", timeout=60)
    finally:
        running.stop(hard=True)
    assert "warming up the momentum buffers" in done["result"]["phases"][0]["log_tail"]
