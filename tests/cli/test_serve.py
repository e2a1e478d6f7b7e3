"""`reprise serve --with-worker` (what `make serve` runs): the API migrates its database, starts
an embedded worker on the same HTTP protocol, and a submission goes all the way to a verdict."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import FIXTURE_BENCHMARKS
from tests.helpers import free_port, targz, toy_files
from tests.runners.workerkit import wait_for


def test_serve_with_worker_replicates_a_submission(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "REPRISE_DATA_DIR": str(tmp_path / "var"),
        "REPRISE_BENCHMARKS_DIR": str(FIXTURE_BENCHMARKS),
        "REPRISE_LOG_LEVEL": "WARNING",
        "REPRISE_WORKER_LOG_FORMAT": "json",
    }
    env.pop("REPRISE_DATABASE_URL", None)
    cli = [sys.executable, "-m", "app.cli"]
    server = subprocess.Popen(
        [*cli, "serve", "--port", str(port), "--with-worker", "--backend", "local"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            try:
                return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=90, what="the server")
        token = httpx.post(f"{url}/v1/users", json={"name": "ada"}).json()["token"]["token"]
        resp = httpx.post(
            f"{url}/v1/submissions",
            headers={"Authorization": f"Bearer {token}"},
            files={"package": ("p.tar.gz", targz(toy_files()), "application/gzip")},
        )
        assert resp.status_code == 202, resp.text
        sid = resp.json()["id"]

        def scored() -> dict[str, object] | None:
            body: dict[str, object] = httpx.get(f"{url}/v1/submissions/{sid}").json()
            return body if body["state"] == "finished" else None

        body = wait_for(scored, timeout=180, what="the embedded worker to finish the jobs")
        assert body["verdict"] in ("reproduced", "inconclusive", "exceeded", "not_reproduced")
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        output = server.stdout.read().decode(errors="replace") if server.stdout else ""
    assert server.returncode is not None, output[-2000:]
    worker_lines = [
        json.loads(line) for line in output.splitlines() if line.startswith('{"ts"')
    ]
    job_lines = [line for line in worker_lines if line["job_id"] != "-"]
    assert job_lines, f"no JSON worker line names its job:\n{output[-2000:]}"
    assert {line["worker_id"] for line in job_lines} == {f"embedded-{server.pid}"}
    assert not any(line["logger"] == "httpx" for line in worker_lines)  # no line per request
    time.sleep(0.2)
    leftovers = subprocess.run(
        ["pgrep", "-f", f"embedded-{server.pid}"], capture_output=True, text=True
    )
    assert leftovers.stdout.strip() == "", "the embedded worker outlived the server"
