"""Test helpers for the worker: a live Reprise API on a loopback port, accounts and submissions
over HTTP, a scripted server for unit tests (``FakeServer`` over ``httpx.MockTransport``), and
packages whose run can be held at a gate.

Nothing here asserts on wall-clock time: ``wait_for`` polls a condition and its timeout is only a
guard against a hung test.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn

from app.core.config import Settings
from app.core.db import Database
from app.main import create_app
from runners.backends.base import Backend
from runners.client import Backoff, Lease, ServerClient
from runners.config import WorkerConfig
from runners.worker import Worker
from tests.helpers import ROOT, free_port, targz, toy_files

T = TypeVar("T")
TOY_BENCHMARK = ROOT / "tests" / "fixtures" / "benchmarks" / "toy"
FINAL = frozenset(
    {"succeeded", "user_error", "timeout", "oom", "invalid_output", "infrastructure_error",
     "cancelled"}
)


def wait_for(
    condition: Callable[[], T | None], *, timeout: float = 30.0, interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll ``condition`` until it returns something truthy; the timeout only guards a hang."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)



# ---------------------------------------------------------------------------------- live API


class LiveServer:
    """The real app under uvicorn in a background thread; ``stop()``/``start()`` keep the port
    (and the database), like an API restart."""

    def __init__(self, settings: Settings, port: int | None = None) -> None:
        self.settings = settings
        self.port = port or free_port()
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        config = uvicorn.Config(
            create_app(self.settings), host="127.0.0.1", port=self.port, log_level="warning",
            lifespan="on", timeout_graceful_shutdown=1, log_config=None,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name=f"uvicorn-{self.port}", daemon=True)
        thread.start()
        wait_for(lambda: server.started or not thread.is_alive(), timeout=30, what="uvicorn")
        if not server.started:
            raise RuntimeError(f"uvicorn did not start on port {self.port}")
        self.server, self.thread = server, thread

    def stop(self) -> None:
        if self.server is None or self.thread is None:
            return
        self.server.should_exit = True
        self.thread.join(timeout=15)
        assert not self.thread.is_alive(), "uvicorn did not stop"
        self.server = self.thread = None


def _create_maintainer(settings: Settings, name: str) -> str:
    from app.users.models import Role
    from app.users.service import create_user

    async def create() -> str:
        db = Database(settings.effective_database_url)
        try:
            async with db.session(write=True) as session:
                issued = await create_user(session, name=name, role=Role.maintainer)
            return issued.plaintext
        finally:
            await db.dispose()

    return asyncio.run(create())


@dataclass
class Reprise:
    """A running API with a maintainer, a member and a worker token, spoken to over HTTP."""

    server: LiveServer
    maintainer_token: str
    member_token: str
    worker_token: str
    http: httpx.Client = field(repr=False)

    @property
    def url(self) -> str:
        return self.server.url

    def member(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.member_token}"}

    def submit(self, files: dict[str, str | bytes] | None = None) -> dict[str, Any]:
        data = targz(files if files is not None else toy_files())
        resp = self.http.post(
            "/v1/submissions", headers=self.member(),
            files={"package": ("package.tar.gz", data, "application/octet-stream")},
        )
        assert resp.status_code == 202, resp.text
        body: dict[str, Any] = resp.json()
        return body

    def submission(self, submission_id: int) -> dict[str, Any]:
        resp = self.http.get(f"/v1/submissions/{submission_id}", headers=self.member())
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    def job(self, job_id: int) -> dict[str, Any]:
        resp = self.http.get(f"/v1/jobs/{job_id}", headers=self.member())
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    def wait_finished(self, submission_id: int, timeout: float = 45.0) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            detail = self.submission(submission_id)
            finished = detail["version"]["status"] in ("finished", "cancelled")
            if finished and all(j["status"] in FINAL for j in detail["jobs"]):
                return detail
            return None

        return wait_for(done, timeout=timeout, what=f"submission {submission_id} to finish")

    def wait_job(self, job_id: int, condition: Callable[[dict[str, Any]], bool],
                 timeout: float = 30.0, what: str = "job state") -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            job = self.job(job_id)
            return job if condition(job) else None

        return wait_for(check, timeout=timeout, what=f"job {job_id}: {what}")

    def client(self, **kwargs: Any) -> ServerClient:
        kwargs.setdefault("wait_s", 1.0)
        kwargs.setdefault("backoff", Backoff(initial=0.05, maximum=0.5))
        return ServerClient(self.url, self.worker_token, **kwargs)

    def config(self, workdir: Path, **overrides: Any) -> WorkerConfig:
        values: dict[str, Any] = {
            "server": self.url, "token": self.worker_token, "backend": "local",
            "concurrency": 1, "worker_id": "test-worker", "workdir": workdir, "wait_s": 1.0,
            "grace_s": 10.0, "health_interval_s": 0.1, "backoff_initial_s": 0.05,
            "backoff_max_s": 0.5, "result_retry_s": 60.0,
        }
        values.update(overrides)
        return WorkerConfig(**values)


@contextlib.contextmanager
def live_reprise(settings: Settings) -> Iterator[Reprise]:
    """Start the API on ``settings`` (a migrated database), with three accounts."""
    maintainer = _create_maintainer(settings, "maya")
    server = LiveServer(settings)
    server.start()
    http = httpx.Client(base_url=server.url, timeout=30)
    try:
        resp = http.post("/v1/workers", headers={"Authorization": f"Bearer {maintainer}"},
                         json={"name": "test-worker", "labels": {}})
        assert resp.status_code == 201, resp.text
        worker_token = resp.json()["token"]
        resp = http.post("/v1/users", json={"name": "alice"})
        assert resp.status_code == 201, resp.text
        member_token = resp.json()["token"]["token"]
        yield Reprise(server, maintainer, member_token, worker_token, http)
    finally:
        http.close()
        server.stop()


# ---------------------------------------------------------------------------------- workers


@dataclass
class WorkerThread:
    worker: Worker
    thread: threading.Thread
    exit_code: list[int]

    def stop(self, *, hard: bool = False, timeout: float = 60.0) -> int:
        self.worker.stop()
        if hard:
            self.worker.stop()
        self.thread.join(timeout=timeout)
        assert not self.thread.is_alive(), "the worker did not stop"
        return self.exit_code[0]


def start_worker(config: WorkerConfig, backend: Backend) -> WorkerThread:
    """Run a ``Worker`` in a thread (signals stay with pytest; stop it with ``.stop()``)."""
    worker = Worker(config, backend=backend)
    code: list[int] = []
    thread = threading.Thread(target=lambda: code.append(worker.run()), name="worker-main",
                              daemon=True)
    thread.start()
    return WorkerThread(worker, thread, code)


def worker_process(
    reprise: Reprise, workdir: Path, health: Path, *extra: str, worker_id: str = "sub-worker",
) -> subprocess.Popen[bytes]:
    """``python -m runners.cli`` against ``reprise`` (local backend, one slot)."""
    env = {**os.environ, "REPRISE_WORKER_TOKEN": reprise.worker_token}
    env.pop("REPRISE_TOKEN", None)
    cmd = [sys.executable, "-m", "runners.cli", "--server", reprise.url, "--backend", "local",
           "--concurrency", "1", "--worker-id", worker_id, "--workdir", str(workdir),
           "--health-file", str(health), "--health-interval", "0.1", "--wait", "1",
           "--backoff-max", "0.5", "--log-level", "INFO", *extra]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def read_health(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def running_phase(path: Path, phase: str = "ingest") -> dict[str, Any] | None:
    """The first running job of a health file once it reached ``phase``."""
    health = read_health(path)
    if health is None:
        return None
    for job in health.get("running_jobs", []):
        if job.get("phase") == phase:
            return dict(job)
    return None


def kill(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)


# ---------------------------------------------------------------------------------- packages


GATED_OPTIMIZER = '''
import os
import time

GATE = {gate!r}


class SGD:
    """Plain SGD that waits while the test's gate file exists (bounded)."""

    def __init__(self, params, *, lr=0.1):
        self.params = params
        self.lr = lr
        deadline = time.monotonic() + 25
        while os.path.exists(GATE) and time.monotonic() < deadline:
            time.sleep(0.02)

    def step(self, grads):
        for p, g in zip(self.params, grads):
            p -= self.lr * g
'''


def gated_files(gate: Path) -> dict[str, str | bytes]:
    """The toy package whose ingest waits while ``gate`` exists (the local backend sees it)."""
    return toy_files(**{"sgd.py": GATED_OPTIMIZER.format(gate=str(gate))})


def broken_files() -> dict[str, str | bytes]:
    """The toy package whose entry module does not import."""
    return toy_files(**{"sgd.py": "import definitely_not_a_module_reprise\n"})


# ---------------------------------------------------------------------------------- a scripted API


def benchmark_bundles(folder: Path = TOY_BENCHMARK) -> tuple[str, dict[str, bytes]]:
    """``(content_hash, {"ingest": tar, "score": tar})`` exactly as the server builds them."""
    from app.benchmarks.catalog import build_bundle, load_folder

    loaded = load_folder(folder)
    return loaded.content_hash, {p: build_bundle(loaded, p) for p in ("ingest", "score")}


class FakeServer:
    """The worker API as an ``httpx.MockTransport`` handler, for unit tests without uvicorn.

    Serves one job: its lease, package and bundles; records heartbeats, results and releases.
    ``fail_next`` holds statuses (or exceptions) to answer before the real answer, per path part
    ("lease", "package", "benchmark", "heartbeat", "result", "release").
    """

    def __init__(
        self, *, package: bytes | None = None, kind: str = "optimizer",
        claim_metrics: dict[str, Any] | None = None, limits: dict[str, Any] | None = None,
        job_id: int = 7, attempt: int = 1,
    ) -> None:
        self.package = package if package is not None else targz(toy_files())
        self.package_sha256 = hashlib.sha256(self.package).hexdigest()
        self.content_hash, self.bundles = benchmark_bundles()
        self.kind = kind
        self.claim_metrics = claim_metrics or {"score": {"direction": "higher"}}
        self.limits = limits or {"cpus": 1.0, "memory_mb": 512, "timeout_s": 30, "pids": 256,
                                 "tmpfs_mb": 64, "output_mb": 16}
        self.job_id = job_id
        self.attempt = attempt
        self.token = "lease-token-0123456789"
        self.requests: list[httpx.Request] = []
        self.results: list[dict[str, Any]] = []
        self.heartbeats: list[dict[str, Any]] = []
        self.releases: list[dict[str, Any]] = []
        self.leases_left = 1
        self.cancel = False
        self.stale = False
        self.fail_next: dict[str, list[int | Exception]] = {}
        self.lock = threading.Lock()

    def lease_json(self, **overrides: Any) -> dict[str, Any]:
        base = f"/v1/worker/jobs/{self.job_id}"
        data: dict[str, Any] = {
            "job_id": self.job_id, "attempt": self.attempt, "lease_token": self.token,
            "lease_expires_at": "2030-01-01T00:00:30Z", "lease_ttl_s": 3.0, "kind": "claimed",
            "seed": 3, "submission_id": 1, "version": 1,
            "package": {"sha256": self.package_sha256, "size": len(self.package),
                        "url": f"{base}/package"},
            "benchmark": {"id": "toy", "version": 1, "kind": self.kind,
                          "content_hash": self.content_hash,
                          "ingest_url": f"{base}/benchmark?phase=ingest",
                          "score_url": f"{base}/benchmark?phase=score", "limits": self.limits,
                          "ingest_sha256": hashlib.sha256(self.bundles["ingest"]).hexdigest(),
                          "score_sha256": hashlib.sha256(self.bundles["score"]).hexdigest()},
            "environment": {"base": "python-numpy", "requirements": None, "input_hash": "ab" * 8},
            "run_config": {
                "format": 1, "job_id": self.job_id, "seed": 3, "job_kind": "claimed",
                "benchmark": {"id": "toy", "version": 1},
                "entry": ({"command": ["python", "train.py"]} if self.kind == "command"
                          else {"optimizer": "sgd:SGD"}),
                "hyperparameters": {"lr": 0.1}, "claim_metrics": self.claim_metrics,
            },
        }
        data.update(overrides)
        return data

    def lease(self, **overrides: Any) -> Lease:
        return Lease.from_json(self.lease_json(**overrides))

    def count(self, part: str) -> int:
        return sum(1 for r in self.requests if r.url.path.rstrip("/").endswith(part))

    def client(self, **kwargs: Any) -> ServerClient:
        kwargs.setdefault("backoff", Backoff(initial=0.001, maximum=0.01))
        return ServerClient("http://reprise.test", "worker-token",
                            transport=httpx.MockTransport(self.handler), **kwargs)

    def handler(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append(request)
        part = request.url.path.rstrip("/").rsplit("/", 1)[-1]
        queued = self.fail_next.get(part)
        if queued:
            failure = queued.pop(0)
            if isinstance(failure, Exception):
                raise failure
            return httpx.Response(failure, json={"title": "scripted", "status": failure,
                                                 "detail": f"scripted {failure}"})
        if part == "lease":
            with self.lock:
                if self.leases_left <= 0:
                    return httpx.Response(204)
                self.leases_left -= 1
            return httpx.Response(200, json=self.lease_json())
        if part in ("package", "benchmark", "heartbeat", "result", "release"):
            params = request.url.params
            body = json.loads(request.content) if request.content else {}
            token = body.get("lease_token", params.get("lease_token"))
            if self.stale or token != self.token:
                return httpx.Response(409, json={"title": "stale lease", "status": 409,
                                                 "detail": "the lease is no longer valid"})
        if part == "package":
            return httpx.Response(200, content=self.package,
                                  headers={"ETag": f'"{self.package_sha256}"'})
        if part == "benchmark":
            phase = request.url.params["phase"]
            return httpx.Response(200, content=self.bundles[phase],
                                  headers={"ETag": f'"{self.content_hash}-{phase}"'})
        if part == "heartbeat":
            self.heartbeats.append(body)
            return httpx.Response(200, json={"lease_expires_at": "2030-01-01T00:00:30Z",
                                             "cancel": self.cancel})
        if part == "result":
            with self.lock:
                duplicate = any(r["lease_token"] == body["lease_token"] for r in self.results)
                if not duplicate:
                    self.results.append(body)
            return httpx.Response(200, json={"recorded": not duplicate, "duplicate": duplicate})
        if part == "release":
            self.releases.append(body)
            return httpx.Response(200, json={"released": True})
        return httpx.Response(404, json={"title": "not found", "status": 404, "detail": part})
