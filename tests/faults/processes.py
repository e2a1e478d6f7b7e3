"""The service's processes for the chaos runs: the API (``uvicorn --factory``) and Docker
workers (``python -m runners.cli``), each a child process that can be SIGKILLed and started
again with the same command, port and worker id."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from app.core.config import REPO_ROOT
from tests.helpers import api_command
from tests.runners.workerkit import wait_for


class Process:
    """One child process that can be killed and started again with the same command."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.cmd = cmd
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        handle = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                self.cmd, cwd=REPO_ROOT, env=self.env, stdout=handle, stderr=subprocess.STDOUT
            )
        finally:
            handle.close()
        self.starts += 1

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self, timeout: float = 90.0) -> int | None:
        """SIGTERM, then wait; SIGKILL if it does not stop in time."""
        if self.proc is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None


class ApiProcess(Process):
    def __init__(self, env: dict[str, str], port: int, log_path: Path) -> None:
        cmd = api_command(port, "--timeout-graceful-shutdown", "2")
        super().__init__("api", cmd, env, log_path)
        self.port = port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        super().start()

        def up() -> bool:
            if not self.alive:
                raise RuntimeError(f"the API exited; see {self.log_path}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=120, interval=0.2, what="the API to answer /healthz")


class WorkerProcess(Process):
    def __init__(
        self, worker_id: str, server: str, token: str, docker_url: str, root: Path
    ) -> None:
        self.workdir = root / worker_id
        self.health = root / f"{worker_id}.health.json"
        env = {**os.environ, "REPRISE_WORKER_TOKEN": token}
        env.pop("REPRISE_TOKEN", None)
        cmd = [
            sys.executable,
            "-m",
            "runners.cli",
            "--server",
            server,
            "--backend",
            "docker",
            "--docker-url",
            docker_url,
            "--concurrency",
            "1",
            "--worker-id",
            worker_id,
            "--workdir",
            str(self.workdir),
            "--health-file",
            str(self.health),
            "--health-interval",
            "0.5",
            "--wait",
            "2",
            "--backoff-max",
            "1",
            "--grace",
            "10",
            "--log-level",
            "INFO",
        ]
        super().__init__(worker_id, cmd, env, root / f"{worker_id}.log")

    def running_job(self) -> dict[str, Any] | None:
        try:
            health = json.loads(self.health.read_text())
        except (OSError, ValueError):
            return None
        jobs = health.get("running_jobs") or []
        return dict(jobs[0]) if jobs else None
