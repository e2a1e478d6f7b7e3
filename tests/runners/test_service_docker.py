"""End to end in the real sandbox: example packages go from POST /v1/submissions through the
HTTP worker protocol and the Docker backend to a verdict, one example per standard benchmark.
Metrics come from the scoring container, provenance names the image digest."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core.config import REPO_ROOT, Settings
from runners.archives import pack_directory
from runners.backends.base import Backend
from tests.runners.workerkit import Reprise, live_reprise, start_worker

pytestmark = pytest.mark.docker

ONE_PER_BENCHMARK = {
    "logreg-digits": "sgd-logreg",
    "quadratic-illcond": "momentum-quadratic",
    "rosenbrock": "momentum-rosenbrock",
    "mlp-digits": "adam-mlp",
    "custom-command": "custom-command-example",
}


@pytest.fixture
def service(sqlite_template: Path, tmp_path: Path) -> Iterator[Reprise]:
    db = tmp_path / "reprise.sqlite3"
    shutil.copy(sqlite_template, db)
    settings = Settings(
        environment="test",
        database_url=f"sqlite+aiosqlite:///{db}",
        data_dir=tmp_path / "var",
        benchmarks_dir=REPO_ROOT / "benchmarks",
        log_level="WARNING",
    )
    with live_reprise(settings) as reprise:
        yield reprise


def _submit_example(reprise: Reprise, name: str, tmp_path: Path) -> dict[str, Any]:
    archive = tmp_path / f"{name}.tar.gz"
    pack_directory(REPO_ROOT / "examples" / name, archive)
    with archive.open("rb") as fh:
        resp = reprise.http.post(
            "/v1/submissions",
            headers=reprise.member(),
            files={"package": (archive.name, fh, "application/gzip")},
        )
    assert resp.status_code == 202, resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_every_benchmark_runs_end_to_end_in_docker(
    service: Reprise, docker_backend: Backend, tmp_path: Path
) -> None:
    submitted = {
        bench: _submit_example(service, ex, tmp_path) for bench, ex in ONE_PER_BENCHMARK.items()
    }
    worker = start_worker(
        service.config(tmp_path / "work", backend="docker", concurrency=2, worker_id="e2e-docker"),
        docker_backend,
    )
    try:
        finished = {b: service.wait_finished(s["id"], timeout=900) for b, s in submitted.items()}
    finally:
        worker.stop()
    for bench, detail in finished.items():
        statuses = {j["status"] for j in detail["jobs"]}
        assert statuses == {"succeeded"}, (
            bench,
            [(j["id"], j["status"], j["reason"]) for j in detail["jobs"]],
        )
        verdict = detail["version"]["verdict"]
        assert verdict is not None, bench
        assert verdict["runs"]["succeeded"] == len(detail["jobs"])
        job = service.job(detail["jobs"][0]["id"])
        result = job["result"]
        prov = result["provenance"]
        assert prov["backend"] == "docker"
        assert str(prov["image_digest"]).startswith("sha256:"), prov
        assert prov["benchmark"] == f"{bench}@1"
        assert [p["phase"] for p in result["phases"]] == ["ingest", "score"]
        assert all(p["exit_code"] == 0 for p in result["phases"])
        assert result["metrics"], bench
        assert result["self_reported"] is (bench == "custom-command")
        assert verdict["self_reported"] is (bench == "custom-command")
    assert docker_backend.reconcile("e2e-docker", keep=set()) == []
