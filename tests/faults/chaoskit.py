"""Fault injection for the whole system: the API and the workers as real processes
(``processes``), a Docker connection that can be cut (``dockerproxy``), and a chaos loop that
kills and restarts them while the jobs of ``workload`` run.

Nothing here asserts; ``run_scenario`` returns what it saw and the tests judge it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from app.core.config import REPO_ROOT, normalise_database_url
from tests.faults.dockerproxy import DockerProxy
from tests.faults.processes import ApiProcess, WorkerProcess
from tests.faults.workload import workload
from tests.helpers import free_port, reset_database, targz
from tests.runners.workerkit import FINAL

log = logging.getLogger("tests.faults")


@dataclass
class Faults:
    """Which faults to inject; all off is the undisturbed run."""

    kill_workers: bool = False
    restart_api: bool = False
    drop_docker: bool = False
    min_kills: int = 4
    max_kills: int | None = None  # None: keep killing until 90 % of the jobs are final
    seed: int = 8
    api_at: float = 0.3  # restart the API once this fraction of the jobs is final
    drop_at: float = 0.5  # cut the Docker connections once this fraction is final
    interval_s: tuple[float, float] = (4.0, 9.0)  # between two chaos events

    @property
    def any(self) -> bool:
        return self.kill_workers or self.restart_api or self.drop_docker


@dataclass
class Outcome:
    """What a scenario observed."""

    verdicts: dict[int, Any] = field(default_factory=dict)  # submission id -> verdict doc
    jobs: dict[int, dict[str, Any]] = field(default_factory=dict)  # job id -> GET /v1/jobs
    duration_s: float = 0.0
    kills: int = 0
    kills_mid_job: int = 0
    api_restarts: int = 0
    docker_drops: int = 0
    dropped_connections: int = 0
    leftovers: dict[str, list[str]] = field(default_factory=dict)
    worker_exit_codes: list[int | None] = field(default_factory=list)
    log_dir: Path | None = None

    @property
    def attempts(self) -> int:
        return sum(int(j["attempt"]) for j in self.jobs.values())

    @property
    def requeued(self) -> int:
        """Leases that ended without a final result and put their job back in the queue."""
        return self.attempts - len(self.jobs)

    def summary(self, name: str) -> str:
        return (
            f"[{name}] {len(self.jobs)} jobs, {len(self.verdicts)} submissions in "
            f"{self.duration_s:.0f} s; {self.attempts} attempts ({self.requeued} re-queued); "
            f"{self.kills} worker kills ({self.kills_mid_job} mid-job), {self.api_restarts} API "
            f"restart(s), {self.docker_drops} Docker drop(s) cutting {self.dropped_connections} "
            "connections"
        )


def _create_maintainer(url: str) -> str:
    from app.core.db import Database
    from app.users.models import Role
    from app.users.service import create_user

    async def create() -> str:
        db = Database(normalise_database_url(url))
        try:
            async with db.session(write=True) as session:
                issued = await create_user(session, name="maya", role=Role.maintainer)
            return issued.plaintext
        finally:
            await db.dispose()

    return asyncio.run(create())


def _get(http: httpx.Client, path: str) -> Any:
    """GET with retries: the API may be restarting."""
    for _ in range(600):
        with contextlib.suppress(httpx.HTTPError):
            resp = http.get(path)
            if resp.status_code == 200:
                return resp.json()
        time.sleep(0.5)
    raise AssertionError(f"GET {path} did not answer 200 for five minutes")


def _api_env(database_url: str, root: Path, secret: str) -> dict[str, str]:
    return {
        **os.environ,
        "REPRISE_ENVIRONMENT": "test",
        "REPRISE_DATABASE_URL": database_url,
        "REPRISE_DATA_DIR": str(root / "var"),
        "REPRISE_BENCHMARKS_DIR": str(REPO_ROOT / "benchmarks"),
        "REPRISE_SECRET_KEY": secret,
        "REPRISE_LOG_LEVEL": "WARNING",
        "REPRISE_QUEUE__LEASE_TTL_S": "8",
        "REPRISE_QUEUE__SWEEP_INTERVAL_S": "1",
        "REPRISE_QUEUE__MAX_ATTEMPTS": "12",
        "REPRISE_QUOTAS__SUBMISSIONS_PER_DAY": "10000",
    }


def _submit_all(http: httpx.Client, maintainer: str, min_jobs: int) -> tuple[str, list[int], int]:
    """A worker token, the submissions' ids and their number of jobs."""
    resp = http.post(
        "/v1/workers",
        headers={"Authorization": f"Bearer {maintainer}"},
        json={"name": "chaos", "labels": {}},
    )
    assert resp.status_code == 201, resp.text
    worker_token = str(resp.json()["token"])
    resp = http.post("/v1/users", json={"name": "alice"})
    assert resp.status_code == 201, resp.text
    member = {"Authorization": f"Bearer {resp.json()['token']['token']}"}
    submissions, jobs = [], 0
    for package in workload(min_jobs):
        resp = http.post(
            "/v1/submissions",
            headers=member,
            files={"package": ("p.tar.gz", targz(dict(package)), "application/gzip")},
        )
        assert resp.status_code == 202, resp.text
        submissions.append(int(resp.json()["id"]))
        jobs += len(resp.json()["jobs"])
    return worker_token, submissions, jobs


def _wait_final(
    http: httpx.Client, submissions: list[int], progress: dict[str, int], timeout_s: float
) -> None:
    """Until every submission is finished with every job final; keeps ``progress`` current."""
    deadline = time.monotonic() + timeout_s
    pending = list(submissions)
    while pending:
        assert time.monotonic() < deadline, f"{len(pending)} submissions never finished"
        time.sleep(2)
        final, still = 0, []
        for sid in submissions:
            detail = _get(http, f"/v1/submissions/{sid}")
            done = sum(1 for j in detail["jobs"] if j["status"] in FINAL)
            final += done
            finished = detail["version"]["status"] == "finished" and done == len(detail["jobs"])
            if sid in pending and not finished:
                still.append(sid)
        pending = still
        progress["final"] = final


def _collect(http: httpx.Client, submissions: list[int], outcome: Outcome) -> None:
    for sid in submissions:
        detail = _get(http, f"/v1/submissions/{sid}")
        verdict = detail["version"]["verdict"]
        if verdict is not None:
            verdict = {k: v for k, v in verdict.items() if k != "scored_at"}
        outcome.verdicts[sid] = verdict
        for job in detail["jobs"]:
            outcome.jobs[job["id"]] = _get(http, f"/v1/jobs/{job['id']}")


def _leftovers(pool: list[WorkerProcess]) -> dict[str, list[str]]:
    """Containers, volumes, output mounts, scratch and staging the workers left behind."""
    from runners.backends._docker_outputs import output_mounts
    from runners.backends.docker import DockerBackend

    backend = DockerBackend()
    try:
        client = backend.client()
        containers, volumes = [], []
        for w in pool:
            selector = {"label": f"reprise.worker={w.name}"}
            containers += [str(c.name) for c in client.containers.list(all=True, filters=selector)]
            volumes += [str(v.name) for v in client.volumes.list(filters=selector)]
    finally:
        backend.close()
    return {
        "containers": containers,
        "volumes": volumes,
        "mounts": [str(p) for w in pool for _, p in output_mounts(w.name)],
        "scratch": [str(p) for w in pool for p in (w.workdir / "jobs").glob("*")],
        "bundle staging": [str(p) for w in pool for p in (w.workdir / "bundles").glob(".*")],
    }


def _remove_leftovers(pool: list[WorkerProcess]) -> None:
    from runners.backends.docker import DockerBackend

    backend = DockerBackend()
    try:
        for w in pool:
            backend.reconcile(w.name, keep=set())
    finally:
        backend.close()


def run_scenario(
    *,
    database_url: str,
    root: Path,
    secret: str,
    workers: int,
    min_jobs: int,
    faults: Faults,
    timeout_s: float = 1800.0,
    on_progress: Callable[[str], None] | None = None,
) -> Outcome:
    """Submit ``workload(min_jobs)`` to a fresh service, run it on ``workers`` Docker worker
    processes while ``faults`` happen, and return the verdicts, jobs and leftovers."""
    root.mkdir(parents=True, exist_ok=True)
    say = on_progress or log.info
    reset_database(database_url)
    maintainer = _create_maintainer(database_url)
    api = ApiProcess(_api_env(database_url, root, secret), free_port(), root / "api.log")
    proxy = DockerProxy(root / "docker.sock")
    proxy.start()
    outcome = Outcome(log_dir=root)
    pool: list[WorkerProcess] = []
    stop_chaos = threading.Event()
    chaos: threading.Thread | None = None
    try:
        api.start()
        with httpx.Client(base_url=api.url, timeout=30) as http:
            token, submissions, total = _submit_all(http, maintainer, min_jobs)
            progress = {"final": 0, "total": total}
            say(f"{len(submissions)} submissions, {total} jobs queued")
            started = time.monotonic()
            pool = [
                WorkerProcess(f"chaos-{i}", api.url, token, proxy.url, root)
                for i in range(workers)
            ]
            for w in pool:
                w.start()
            if faults.any:
                args = (faults, pool, api, proxy, progress, stop_chaos, outcome, say)
                chaos = threading.Thread(target=_chaos, args=args, name="chaos", daemon=True)
                chaos.start()
            _wait_final(http, submissions, progress, timeout_s)
            outcome.duration_s = time.monotonic() - started
            stop_chaos.set()
            if chaos is not None:
                chaos.join(timeout=120)
            say(f"all jobs final after {outcome.duration_s:.0f} s")
            _collect(http, submissions, outcome)
    finally:
        stop_chaos.set()
        if chaos is not None:
            chaos.join(timeout=120)
        outcome.worker_exit_codes = [w.stop() for w in pool]
        api.stop(timeout=30)
        proxy.stop()
        try:
            outcome.leftovers = _leftovers(pool)
        finally:
            _remove_leftovers(pool)  # seen and recorded; a failed run leaves nothing either
    return outcome


def _chaos(
    faults: Faults,
    pool: list[WorkerProcess],
    api: ApiProcess,
    proxy: DockerProxy,
    progress: dict[str, int],
    stop: threading.Event,
    outcome: Outcome,
    say: Callable[[str], None],
) -> None:
    """Kill and restart workers every few seconds (the first kill waits for a running job);
    restart the API once ``api_at`` of the jobs are final, and cut the Docker connections once
    ``drop_at`` are, while a phase runs."""
    rng = random.Random(faults.seed)
    while not stop.wait(rng.uniform(*faults.interval_s)):
        done = progress["final"] / max(1, progress["total"])
        busy = [w for w in pool if w.running_job()]
        first_kill = faults.kill_workers and not outcome.kills
        if first_kill and busy:
            _kill(rng.choice(busy), rng, outcome, stop, say, done)
            continue
        if faults.restart_api and not outcome.api_restarts and done >= faults.api_at:
            say(f"chaos: SIGKILL the API at {done:.0%}")
            api.kill()
            stop.wait(2)
            api.start()
            outcome.api_restarts += 1
            continue
        if faults.drop_docker and not outcome.docker_drops and done >= faults.drop_at and busy:
            cut = proxy.drop()
            say(f"chaos: dropped {cut} Docker connections at {done:.0%}")
            if cut:
                outcome.docker_drops += 1
                outcome.dropped_connections += cut
                continue
        more = faults.max_kills is None or outcome.kills < faults.max_kills
        if faults.kill_workers and not first_kill and more and done < 0.9:
            _kill(rng.choice(busy or pool), rng, outcome, stop, say, done)


def _kill(
    victim: WorkerProcess,
    rng: random.Random,
    outcome: Outcome,
    stop: threading.Event,
    say: Callable[[str], None],
    done: float,
) -> None:
    mid_job = victim.running_job() is not None
    say(f"chaos: SIGKILL {victim.name}{' mid-job' if mid_job else ''} at {done:.0%}")
    victim.kill()
    outcome.kills += 1
    outcome.kills_mid_job += mid_job
    stop.wait(rng.uniform(0.5, 2.0))
    victim.start()
