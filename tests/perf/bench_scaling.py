"""Worker scaling benchmark (reports, never gates): sleep-bound jobs on 1, 2, 4 and 8 workers.

    .venv/bin/python -m tests.perf.bench_scaling [--sleep 0.5] [--waves 7] [--reps 1]

A real ``reprise serve`` (SQLite, the toy fixture benchmark) and ``n`` reference workers
(``runners.worker.Worker``, one slot each, in threads of this process) whose backend is the fake
one with an ingest phase that sleeps ``--sleep`` seconds: the jobs need no CPU, so ``n`` workers
should finish ``n`` times the jobs in the same time. With the workers idle and long-polling,
``n`` toy submissions (seven jobs each: ``--waves`` jobs per worker) are made; the makespan is
from the first job's start to the last job's end, as the server recorded them.

Figure per ``n``: throughput (jobs/s) with ``n`` workers over ``n`` × the throughput of one —
the parallel efficiency, speed-up / n (goal ≥ 0.8).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from app.core.config import Settings
from runners.backends.base import RunResult, RunSpec
from runners.backends.fake import FakeBackend
from runners.config import WorkerConfig
from runners.worker import Worker
from tests.helpers import migrate, targz, toy_files
from tests.perf.common import ROOT, figure, loadavg, reprise_server

LEVELS = (1, 2, 4, 8)
JOBS_PER_SUBMISSION = 7  # the toy package: three claimed seeds, three fresh, one probe


def sleeping_backend(seconds: float) -> FakeBackend:
    """The fake backend: ingest sleeps (no CPU), score writes the toy metrics."""

    def handler(spec: RunSpec) -> RunResult:
        if spec.labels.get("reprise.phase") == "ingest":
            time.sleep(seconds)
        return RunResult(exit_code=0, wall_s=seconds, log_tail="slept\n")

    def outputs(spec: RunSpec, out: Path) -> None:
        if spec.labels.get("reprise.phase") == "score":
            (out / "metrics.json").write_text(
                '{"metrics": {"score": 2.0, "loss": 0.1}, "self_reported": false}\n')

    return FakeBackend(handler, write_outputs=outputs)


def _makespan(http: httpx.Client, member: str, ids: list[int], timeout: float) -> float:
    """Seconds from the first job's start to the last job's end, once every job ended."""
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"Bearer {member}"}
    while True:
        jobs = [j for sid in ids
                for j in http.get(f"/v1/submissions/{sid}", headers=headers).json()["jobs"]]
        if all(j["finished_at"] for j in jobs):
            break
        if time.monotonic() > deadline:
            raise RuntimeError("the sleep-bound jobs did not finish in time")
        time.sleep(0.1)
    failed = [j for j in jobs if j["status"] != "succeeded"]
    if failed:
        raise RuntimeError(f"{len(failed)} job(s) did not succeed: {failed[0]['reason']}")
    start = min(dt.datetime.fromisoformat(j["started_at"]) for j in jobs)
    end = max(dt.datetime.fromisoformat(j["finished_at"]) for j in jobs)
    return (end - start).total_seconds()


def one_level(url: str, token: str, member: str, workers: int, *, sleep: float, waves: int,
              workdir: Path) -> tuple[int, float]:
    """(jobs, makespan) of ``workers`` idle workers given ``workers × waves`` jobs."""
    fleet = []
    for i in range(workers):
        config = WorkerConfig(server=url, token=token, backend="fake", worker_id=f"scale-{i}",
                              workdir=workdir / f"w{workers}-{i}", wait_s=2.0, grace_s=5.0,
                              backoff_initial_s=0.05, backoff_max_s=0.5)
        worker = Worker(config, backend=sleeping_backend(sleep))
        thread = threading.Thread(target=worker.run, name=f"scale-{i}", daemon=True)
        thread.start()
        fleet.append((worker, thread))
    try:
        time.sleep(1.0)  # every worker is idle and long-polling
        submissions = max(1, round(workers * waves / JOBS_PER_SUBMISSION))
        package = targz(toy_files())
        with httpx.Client(base_url=url, timeout=60) as http:
            ids = []
            for _ in range(submissions):
                resp = http.post("/v1/submissions", headers={"Authorization": f"Bearer {member}"},
                                 files={"package": ("p.tar.gz", package, "application/gzip")})
                resp.raise_for_status()
                ids.append(int(resp.json()["id"]))
            span = _makespan(http, member, ids, timeout=60 + 4 * waves * (sleep + 1))
        return submissions * JOBS_PER_SUBMISSION, span
    finally:
        for worker, _thread in fleet:
            worker.stop()
        for _worker, thread in fleet:
            thread.join(timeout=30)


def run(*, sleep: float = 0.5, waves: int = 7, reps: int = 1) -> dict[str, Any]:
    """Throughput per level, ``reps`` interleaved repetitions; efficiency figures against n=1."""
    from app.cli.server import _create_user, _create_worker

    rates: dict[int, list[float]] = {n: [] for n in LEVELS}
    with tempfile.TemporaryDirectory(prefix="reprise-perf-scaling-") as tmp:
        work = Path(tmp)
        url_db = f"sqlite+aiosqlite:///{work / 'scaling.sqlite3'}"
        migrate(url_db)
        settings = Settings(database_url=url_db, data_dir=work / "var")
        member = asyncio.run(_create_user(settings, "perf-author", "member"))
        token = asyncio.run(_create_worker(settings, "perf-scaling", {}, "perf-maintainer"))
        env = {"REPRISE_DATABASE_URL": url_db, "REPRISE_DATA_DIR": str(work / "var"),
               "REPRISE_BENCHMARKS_DIR": str(ROOT / "tests" / "fixtures" / "benchmarks"),
               "REPRISE_QUOTAS__SUBMISSIONS_PER_DAY": "100000",
               "REPRISE_QUOTAS__ACTIVE_JOBS_PER_USER": "100000"}
        with reprise_server(env) as (url, _pid):
            for rep in range(reps):
                for n in LEVELS:
                    jobs, span = one_level(url, token, member, n, sleep=sleep, waves=waves,
                                           workdir=work / f"r{rep}")
                    rates[n].append(jobs / span)
    base = rates[1]
    figures = [
        figure(f"scaling.{n}", measured=rates[n], baseline=[n * b for b in base],
               unit="jobs/s", measured_label=f"{n} workers: jobs/s",
               baseline_label=f"{n} × the jobs/s of one worker", higher_is_better=True,
               goal=0.8, note=f"{sleep:g} s sleep per job, about {waves} jobs per worker")
        for n in LEVELS[1:]
    ]
    return {"figures": figures, "sleep_s": sleep, "waves": waves, "load": loadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sleep", type=float, default=0.5)
    parser.add_argument("--waves", type=int, default=7)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = run(sleep=args.sleep, waves=args.waves, reps=args.reps)
    for f in result["figures"]:
        print(f"{f['measured_label']}: {f['measured']['median']:.2f}  efficiency "
              f"{f['ratio']['median']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
