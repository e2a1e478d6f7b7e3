"""Queue benchmark (reports, never gates): job cycles through the HTTP worker protocol.

    .venv/bin/python -m tests.perf.bench_queue [--db pg|sqlite|both] [--seconds 3] [--reps 3]
        [--profile DIR]

A real ``reprise serve`` (one uvicorn process) on its own database — PostgreSQL
``reprise_perf_queue`` (dropped and re-made each run) or a scratch SQLite file — with the toy
fixture benchmark. One toy submission is made over HTTP and cloned in SQL into thousands of
submissions with their seven queued jobs each (so versions finish, and are scored, as often as
in real use). Then, for 1, 4 and 8 concurrent worker clients (threads, each the reference
worker's own ``runners.client.ServerClient``), one *cycle* is lease → heartbeat → result with a
realistic payload; cycles completed per second are the figure.

Baseline, measured on the same database just before each HTTP window: the raw claim rate of a
bare loop with as many connections — PostgreSQL ``UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP
LOCKED LIMIT 1)``, SQLite the same inside ``BEGIN IMMEDIATE`` — one claim per transaction; the
claimed jobs are put back afterwards. Goals: HTTP ≥ 25% of the raw rate; ≥ 300 cycles/s on
PostgreSQL with this 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import httpx
import sqlalchemy as sa

from app.core.config import Settings
from app.jobs.models import Job
from app.submissions.models import Submission, SubmissionVersion
from runners.client import Backoff, ServerClient
from tests.helpers import migrate, targz, toy_files
from tests.perf import profiling
from tests.perf.common import (
    ROOT,
    figure,
    loadavg,
    pg_url,
    recreate_pg_database,
    reprise_server,
)

PG_DB = "reprise_perf_queue"
BENCHMARKS = ROOT / "tests" / "fixtures" / "benchmarks"
RAW_WORKER = "raw-claim-loop"
LEVELS = (1, 4, 8)


# ---------------------------------------------------------------------------------- the database


class QueueDb:
    """The benchmark's database: URLs for the server, SQLAlchemy (seeding) and the raw loop."""

    def __init__(self, kind: str, scratch: Path) -> None:
        self.kind = kind
        if kind == "pg":
            recreate_pg_database(PG_DB)
            self.server_url = pg_url(PG_DB)
            self.engine = sa.create_engine(pg_url(PG_DB, "+psycopg"))
        else:
            self.path = scratch / "queue.sqlite3"
            migrate(f"sqlite+aiosqlite:///{self.path}")
            self.server_url = f"sqlite+aiosqlite:///{self.path}"
            self.engine = sa.create_engine(f"sqlite:///{self.path}")

    def queued(self) -> int:
        with self.engine.connect() as conn:
            stmt = sa.select(sa.func.count()).where(Job.status == "queued")
            return int(conn.execute(stmt).scalar_one())

    def clone(self, template_submission: int, copies: int) -> None:
        """``copies`` new submissions, each a copy of the template's version and queued jobs."""
        sub_t, ver_t, job_t = (cast(sa.Table, m.__table__) for m in (Submission, SubmissionVersion,
                                                                     Job))
        with self.engine.begin() as conn:
            sub = dict(conn.execute(sa.select(sub_t).where(sub_t.c.id == template_submission))
                       .mappings().one())
            ver = dict(conn.execute(sa.select(ver_t).where(ver_t.c.submission_id == sub["id"]))
                       .mappings().one())
            jobs = [dict(j) for j in conn.execute(
                sa.select(job_t).where(job_t.c.version_id == ver["id"])).mappings()]
            ids = [int(conn.execute(sa.select(sa.func.max(t.c.id))).scalar_one() or 0)
                   for t in (sub_t, ver_t, job_t)]
            subs, vers, rows = [], [], []
            for i in range(1, copies + 1):
                sid, vid = ids[0] + i, ids[1] + i
                subs.append({**sub, "id": sid, "title": f"{sub['title']} #{sid}"})
                # Its own technique (package name), as submissions by many authors would be.
                package = {**ver["manifest"]["package"], "name": f"perf-{sid}"}
                vers.append({**ver, "id": vid, "submission_id": sid, "status": "queued",
                             "manifest": {**ver["manifest"], "package": package}})
                for job in jobs:
                    ids[2] += 1
                    rows.append({**job, "id": ids[2], "version_id": vid, "status": "queued",
                                 "attempt": 0, "lease_token": None, "lease_expires_at": None,
                                 "worker_id": None, "worker_token_id": None, "started_at": None,
                                 "finished_at": None, "phase": None, "log_tail": None})
            for table, values in ((sub_t, subs), (ver_t, vers), (job_t, rows)):
                conn.execute(sa.insert(table), values)
            if self.kind == "pg":
                for name in ("submission", "submission_version", "job"):
                    conn.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                        f"(SELECT max(id) FROM {name}))")
        self.maintain()

    def maintain(self) -> None:
        """PostgreSQL: vacuum and analyze the queue (outside every timed window)."""
        if self.kind == "pg":
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE job")

    def put_back_raw_claims(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.update(Job).where(Job.worker_id == RAW_WORKER).values(
                status="queued", attempt=Job.attempt - 1, lease_token=None,
                lease_expires_at=None, worker_id=None))
        self.maintain()

    # ------------------------------------------------------------------ the raw claim loop

    def raw_claims_per_s(self, connections: int, seconds: float) -> float:
        """Claims per second of ``connections`` bare claim loops (one claim per transaction)."""
        counts = [0] * connections
        ends = [0.0] * connections
        barrier = threading.Barrier(connections + 1)
        stop_at = [0.0]

        def loop(i: int) -> None:
            claim = self._pg_claimer() if self.kind == "pg" else self._sqlite_claimer()
            barrier.wait()
            while time.perf_counter() < stop_at[0]:
                if not claim():
                    break  # the queue ran dry: the window ends for this loop
                counts[i] += 1
            ends[i] = time.perf_counter()

        threads = [threading.Thread(target=loop, args=(i,)) for i in range(connections)]
        for t in threads:
            t.start()
        start = time.perf_counter()
        stop_at[0] = start + seconds
        barrier.wait()
        for t in threads:
            t.join()
        return sum(counts) / (max(ends) - start)

    def _pg_claimer(self) -> Callable[[], bool]:
        import psycopg

        conn = psycopg.connect(pg_url(PG_DB))
        sql = (
            "UPDATE job SET status = 'running', attempt = attempt + 1, lease_token = %s, "
            "lease_expires_at = now() + interval '30 seconds', worker_id = %s, "
            "updated_at = now() WHERE id = (SELECT id FROM job WHERE status = 'queued' "
            "AND requires = ANY(%s) ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) "
            "AND status = 'queued' RETURNING id"
        )

        def claim() -> bool:
            with conn.transaction():
                row = conn.execute(sql, (f"{random.getrandbits(128):032x}", RAW_WORKER,
                                         [""])).fetchone()
            return row is not None

        return claim

    def _sqlite_claimer(self) -> Callable[[], bool]:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=30,
                               check_same_thread=False)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000"):
            conn.execute(f"PRAGMA {pragma}")
        sql = (
            "UPDATE job SET status = 'running', attempt = attempt + 1, lease_token = ?, "
            "lease_expires_at = datetime('now', '+30 seconds'), worker_id = ?, "
            "updated_at = datetime('now') WHERE id = (SELECT id FROM job WHERE status = "
            "'queued' AND requires IN (?) ORDER BY id LIMIT 1) AND status = 'queued' RETURNING id"
        )

        def claim() -> bool:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(sql, (f"{random.getrandbits(128):032x}", RAW_WORKER,
                                         "")).fetchone()
            finally:
                conn.execute("COMMIT")
            return row is not None

        return claim


# ---------------------------------------------------------------------------------- HTTP cycles


def _result_payload(seed: int) -> dict[str, Any]:
    """What the reference worker posts for a toy job (two phases, provenance)."""
    rng = random.Random(seed)
    phase = {"exit_code": 0, "timed_out": False, "oom_killed": False, "wall_s": 0.4,
             "cpu_s": 0.35, "peak_memory_mb": 60.0, "log_tail": "epoch 10 loss 0.12\n" * 5,
             "log_dropped_bytes": 0}
    return {
        "outcome": "succeeded", "reason": None,
        "metrics": {"score": 2.0 + rng.gauss(0, 0.1), "loss": 0.1 + rng.gauss(0, 0.01)},
        "curve": None, "self_reported": False,
        "phases": [{"phase": "ingest", **phase}, {"phase": "score", **phase}],
        "provenance": {"backend": "fake", "image": "fake/python-numpy", "image_digest": None,
                       "harness_version": "x", "benchmark": "toy@1", "package_sha256": "0" * 64,
                       "seed": seed, "worker_id": "perf", "worker_labels": {},
                       "cpu_model": "perf", "gpu_model": None, "gpu_driver": None,
                       "engine_version": None, "host": {}},
    }


def http_cycles_per_s(url: str, token: str, workers: int, seconds: float,
                      warmup: float = 0.5) -> tuple[float, int]:
    """Cycles per second of ``workers`` concurrent clients; also how many leases came back 204."""
    stop = threading.Event()
    done: list[float] = []
    empty = [0]
    errors: list[BaseException] = []
    lock = threading.Lock()

    def loop(i: int) -> None:
        client = ServerClient(url, token, wait_s=1.0, backoff=Backoff(initial=0.05, maximum=0.5))
        try:
            while not stop.is_set():
                lease = client.lease(f"perf-{i}", {}, 1.0, "fake", abort=stop)
                if lease is None:
                    with lock:
                        empty[0] += 1
                    continue
                client.heartbeat(lease, phase="ingest", budget_s=30)
                client.post_result(lease, _result_payload(lease.seed), budget_s=30)
                with lock:
                    done.append(time.perf_counter())
        except BaseException as exc:  # reported by the caller: a failed cycle is no figure
            errors.append(exc)
            stop.set()
        finally:
            client.close()

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(workers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(warmup + seconds)
    stop.set()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"a worker client failed: {errors[0]!r}") from errors[0]
    t0 = start + warmup
    return sum(1 for t in done if t0 <= t <= t0 + seconds) / seconds, empty[0]


# ---------------------------------------------------------------------------------- driver


@contextmanager
def queue_service(kind: str, scratch: Path) -> Iterator[tuple[QueueDb, str, str, int, int]]:
    """A migrated database, a running server, a worker token and the template submission."""
    from app.cli.server import _create_user, _create_worker

    db = QueueDb(kind, scratch)
    settings = Settings(database_url=db.server_url, data_dir=scratch / "var")
    member = asyncio.run(_create_user(settings, "perf-author", "member"))
    worker = asyncio.run(_create_worker(settings, "perf-workers", {}, "perf-maintainer"))
    env = {"REPRISE_DATABASE_URL": db.server_url, "REPRISE_DATA_DIR": str(scratch / "var"),
           "REPRISE_BENCHMARKS_DIR": str(BENCHMARKS), "REPRISE_ALLOW_UNSANDBOXED": "true"}
    try:
        with reprise_server(env) as (url, pid):
            resp = httpx.post(f"{url}/v1/submissions", timeout=60,
                              headers={"Authorization": f"Bearer {member}"},
                              files={"package": ("p.tar.gz", targz(toy_files()), "app/gzip")})
            resp.raise_for_status()
            yield db, url, worker, int(resp.json()["id"]), pid
    finally:
        db.engine.dispose()


def run_db(kind: str, *, seconds: float, reps: int, raw_seconds: float,
           profile: Path | None = None) -> dict[str, Any]:
    """Raw and HTTP rates for every level, ``reps`` interleaved repetitions, on one database."""
    http: dict[int, list[float]] = {n: [] for n in LEVELS}
    raw: dict[int, list[float]] = {n: [] for n in LEVELS}
    empties = 0
    with tempfile.TemporaryDirectory(prefix="reprise-perf-queue-") as tmp, \
            queue_service(kind, Path(tmp)) as (db, url, token, template, pid):
        need = int(max(3000, 3000 * raw_seconds, 300 * seconds))
        for _ in range(reps):
            for n in LEVELS:
                if db.queued() < need:
                    db.clone(template, need // 7 + 1)
                raw[n].append(db.raw_claims_per_s(n, raw_seconds))
                db.put_back_raw_claims()
                spy = None
                if profile is not None and n == 4 and not http[n]:  # first 4-worker window
                    spy = profiling.start(pid, seconds, profile / f"queue-{kind}.txt")
                rate, empty = http_cycles_per_s(url, token, n, seconds)
                if spy is not None:
                    spy.wait()
                http[n].append(rate)
                empties += empty
                db.maintain()
    name = {"pg": "PostgreSQL", "sqlite": "SQLite"}[kind]
    bare = "FOR UPDATE SKIP LOCKED" if kind == "pg" else "BEGIN IMMEDIATE"
    figures = [
        figure(f"queue.{kind}.{n}", measured=http[n], baseline=raw[n], unit="per s",
               measured_label=f"{name}, {n} worker{'s' if n > 1 else ''}: HTTP cycles/s",
               baseline_label=f"bare {bare} claims/s, {n} connection{'s' if n > 1 else ''}",
               higher_is_better=True, goal=0.25,
               absolute_goal=(">=", 300.0, "≥ 300 cycles/s") if kind == "pg" else None)
        for n in LEVELS
    ]
    return {"figures": figures, "empty_leases": empties}


def run(*, dbs: tuple[str, ...] = ("pg", "sqlite"), seconds: float = 3.0, reps: int = 3,
        raw_seconds: float = 1.0, profile: Path | None = None) -> dict[str, Any]:
    """Both databases; with ``profile`` (a folder), py-spy stacks of the server during the
    first 4-worker window of each (summarise them with ``python -m tests.perf.profiling``)."""
    out: dict[str, Any] = {"figures": [], "empty_leases": 0}
    for kind in dbs:
        part = run_db(kind, seconds=seconds, reps=reps, raw_seconds=raw_seconds,
                      profile=profile)
        out["figures"] += part["figures"]
        out["empty_leases"] += part["empty_leases"]
    out["load"] = loadavg()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--db", choices=["pg", "sqlite", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--raw-seconds", type=float, default=1.0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--profile", type=Path, help="folder for py-spy stacks of the server")
    args = parser.parse_args()
    dbs = ("pg", "sqlite") if args.db == "both" else (args.db,)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    result = run(dbs=dbs, seconds=args.seconds, reps=args.reps, raw_seconds=args.raw_seconds,
                 profile=args.profile)
    for f in result["figures"]:
        print(f"{f['measured_label']}: {f['measured']['median']:.0f}  over "
              f"{f['baseline']['median']:.0f}  ratio {f['ratio']['median']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
