"""Dispatch benchmark (reports, never gates): how much the service adds around the containers.

    .venv/bin/python -m tests.perf.bench_dispatch [--backend docker|local] [--rounds 5] [--json P]

A live API (SQLite) and one idle worker. A `custom-command` package whose ingest phase records
the wall-clock time its process started, sleeps one second, and writes a metric. Reported, each
with its baseline from the same run:

- enqueue → start: from the moment the submission was accepted (202) to the moment the first
  job's ingest process started inside its sandbox, with the worker idle and long-polling
  (goal p50 ≤ 250 ms);
- overhead ratio: submit → recorded time of that one-second job, over the time of a bare
  `docker run --rm --network none` of the same two phases (ingest sleeping 1 s, then a trivial
  score) on the same image (goal ≤ 1.3).
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from app.core.config import REPO_ROOT, Settings  # noqa: E402
from tests.helpers import migrate, targz  # noqa: E402

STARTER = """import json, os, time
started = time.time()
print("REPRISE-START", repr(started), flush=True)
time.sleep(1.0)
with open(os.path.join(os.environ["REPRISE_OUTPUT"], "metrics.json"), "w") as fh:
    json.dump({"score": 1.0}, fh)
"""

MANIFEST = """format = 1
[package]
name = "dispatch-probe"
version = "1.0.0"
title = "Dispatch probe: sleeps one second"
authors = ["Reprise <perf@example.org>"]
license = "MIT"
[benchmark]
id = "custom-command"
version = 1
[entry]
command = ["python3", "probe.py"]
[claim]
seeds = [0]
[claim.metrics.score]
mean = 1.0
direction = "higher"
tolerance = 0.1
"""


def _package() -> bytes:
    return targz({"reprise.toml": MANIFEST, "probe.py": STARTER, "README.md": "probe\n"})


def _bare_docker(image: str) -> tuple[float, float]:
    """Both phases as bare containers: ingest sleeping 1 s, then a trivial score. Returns the
    invoke → process start latency of the first and the time of both."""
    started = time.perf_counter()
    invoked = time.time()
    out = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", image, "python3", "-c",
         "import time; print(repr(time.time()), flush=True); time.sleep(1.0)"],
        check=True, capture_output=True, text=True,
    )
    latency = float(out.stdout.split()[0]) - invoked
    subprocess.run(["docker", "run", "--rm", "--network", "none", image, "python3", "-c", "pass"],
                   check=True, capture_output=True)
    return latency, time.perf_counter() - started


def _first_finished(reprise: Any, job_id: int) -> dict[str, Any] | None:
    job: dict[str, Any] = reprise.job(job_id)
    return job if job["status"] not in ("queued", "running") else None


def _start_of_ingest(job: dict[str, Any]) -> float | None:
    for phase in (job.get("result") or {}).get("phases", []):
        for line in phase.get("log_tail", "").splitlines():
            if line.startswith("REPRISE-START"):
                return float(line.split()[1])
    return None


def run(backend: str = "docker", rounds: int = 5) -> dict[str, Any]:
    """``rounds`` measured submissions (after one warm-up), each followed by its bare baseline."""
    import datetime as dt

    from runners.cli import build_backend
    from tests.perf.common import figure
    from tests.runners.workerkit import live_reprise, start_worker, wait_for

    bare_ok = backend == "docker" and shutil.which("docker") is not None
    with tempfile.TemporaryDirectory(prefix="reprise-perf-dispatch-") as tmp:
        work = Path(tmp)
        db = work / "reprise.sqlite3"
        migrate(f"sqlite+aiosqlite:///{db}")
        settings = Settings(
            environment="test",
            database_url=f"sqlite+aiosqlite:///{db}",
            data_dir=work / "var",
            benchmarks_dir=REPO_ROOT / "benchmarks",
            allow_unsandboxed=backend == "local",
            log_level="WARNING",
        )
        latencies, totals, bare_starts, bare_totals = [], [], [], []
        with live_reprise(settings) as reprise:
            config = reprise.config(
                work / "worker",
                backend=backend,
                concurrency=1,
                worker_id="perf-dispatch",
                wait_s=20.0,
            )
            worker = start_worker(config, build_backend(config))
            try:
                for i in range(rounds + 1):  # the first round warms caches and is dropped
                    time.sleep(1.0)  # the worker is idle and long-polling
                    posted = time.time()
                    resp = reprise.http.post(
                        "/v1/submissions",
                        headers=reprise.member(),
                        files={"package": ("p.tar.gz", _package(), "application/gzip")},
                    )
                    assert resp.status_code == 202, resp.text
                    enqueued = time.time()  # the jobs exist once the 202 has left the server
                    first = min(j["id"] for j in resp.json()["jobs"])
                    job = wait_for(
                        functools.partial(_first_finished, reprise, first),
                        timeout=120,
                        what="the first job",
                    )
                    recorded = dt.datetime.fromisoformat(job["result"]["recorded_at"]).timestamp()
                    start = _start_of_ingest(job)
                    # Only the first job is measured: withdraw the rest (queued jobs are
                    # cancelled at once) and wait until the worker is idle again.
                    reprise.http.post(f"/v1/submissions/{resp.json()['id']}/withdraw",
                                      headers=reprise.member()).raise_for_status()
                    reprise.wait_finished(resp.json()["id"], timeout=300)
                    if i and start is not None:
                        latencies.append(start - enqueued)
                        totals.append(recorded - posted)
                        if bare_ok:  # the worker is idle again: same conditions for the bare run
                            bare_start, bare_total = _bare_docker("reprise/python-numpy:bookworm")
                            bare_starts.append(bare_start)
                            bare_totals.append(bare_total)
            finally:
                worker.stop()
    p50 = statistics.median(latencies) if latencies else None
    total = statistics.median(totals) if totals else None
    bare = statistics.median(bare_totals) if bare_totals else None
    result: dict[str, Any] = {
        "backend": backend,
        "rounds": len(latencies),
        "enqueue_to_start_p50_ms": None if p50 is None else round(p50 * 1000, 1),
        "enqueue_to_start_spread_ms": [
            round(min(latencies) * 1000, 1),
            round(max(latencies) * 1000, 1),
        ]
        if latencies
        else None,
        "submit_to_recorded_s": None if total is None else round(total, 3),
        "bare_docker_two_phases_s": None if bare is None else round(bare, 3),
        "overhead_ratio": None if (bare is None or total is None) else round(total / bare, 3),
        "goals": {"enqueue_to_start_p50_ms": "<= 250", "overhead_ratio": "<= 1.3"},
        "figures": [],
    }
    if bare_totals:
        result["figures"] = [
            figure("dispatch.total", measured=totals, baseline=bare_totals, unit="s",
                   measured_label="submit → recorded, one 1-second job (s)",
                   baseline_label="bare `docker run` of its two phases (s)",
                   higher_is_better=False, goal=1.3),
            figure("dispatch.start", measured=[x * 1000 for x in latencies],
                   baseline=[x * 1000 for x in bare_starts], unit="ms",
                   measured_label="enqueue → start of the ingest process, idle worker (ms)",
                   baseline_label="bare `docker run` → start of its process (ms)",
                   higher_is_better=False, absolute_goal=("<=", 250.0, "p50 ≤ 250 ms")),
        ]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", default="docker", choices=["docker", "local"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = run(args.backend, args.rounds)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
