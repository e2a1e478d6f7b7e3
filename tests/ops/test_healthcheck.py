"""The container health check (``python -m app.ops.healthcheck``): the API's ``/healthz`` over
HTTP, and a worker's health file (fresh, with an acceptable status)."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from app.ops.healthcheck import check_api, check_worker, main

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_api_healthy_unhealthy_and_unreachable(server: str) -> None:
    assert check_api(f"{server}/healthz")[0] is True
    ok, detail = check_api(f"{server}/broken")
    assert ok is False
    assert "503" in detail
    assert check_api("http://127.0.0.1:9/healthz", timeout_s=1)[0] is False
    assert check_api("file:///etc/passwd")[0] is False


def test_main_exit_status_and_one_line(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", f"{server}/healthz", "--worker-file", ""]) == 0
    assert main(["--url", f"{server}/nope", "--worker-file", ""]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("healthy: ")
    assert out[1].startswith("unhealthy: ")


def _health(path: Path, status: str, age_s: float, **extra: object) -> Path:
    updated = (NOW - dt.timedelta(seconds=age_s)).isoformat(timespec="seconds")
    path.write_text(
        json.dumps({"status": status, "worker_id": "w1", "updated_at": updated, **extra})
    )
    return path


@pytest.mark.parametrize(
    ("status", "age_s", "live", "healthy"),
    [
        ("ok", 3, False, True),
        ("starting", 3, False, True),
        ("stopping", 3, False, True),
        ("ok", 120, False, False),  # the worker stopped rewriting its file: hung or dead
        ("unhealthy", 3, False, False),  # its Docker engine does not answer
        ("unhealthy", 3, True, True),  # ...which a restart would not fix: alive for liveness
        ("failed", 3, True, False),
        ("stopped", 3, False, False),
    ],
)
def test_worker_health_file(
    tmp_path: Path, status: str, age_s: float, live: bool, healthy: bool
) -> None:
    path = _health(tmp_path / "health.json", status, age_s)
    ok, detail = check_worker(path, max_age_s=60, live=live, now=NOW)
    assert ok is healthy, detail


def test_worker_health_file_missing_or_garbled(tmp_path: Path) -> None:
    ok, detail = check_worker(tmp_path / "nope.json", max_age_s=60, live=False, now=NOW)
    assert not ok
    assert "does not exist" in detail
    (tmp_path / "bad.json").write_text("{not json")
    assert not check_worker(tmp_path / "bad.json", max_age_s=60, live=False, now=NOW)[0]


def test_the_worker_file_comes_from_the_workers_own_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "health.json"
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    path.write_text(json.dumps({"status": "ok", "updated_at": now}))
    monkeypatch.setenv("REPRISE_WORKER_HEALTH_FILE", str(path))
    assert main([]) == 0
    path.write_text(json.dumps({"status": "failed", "updated_at": now, "error": "bad token"}))
    assert main([]) == 1
