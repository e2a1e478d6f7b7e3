"""Load (reports; run it, it is not a timed test): submissions and readers against a real server.

    .venv/bin/python -m tests.load.bench_load [--database-url postgresql://…/reprise_load]
        [--duration 60] [--users 20] [--submitters 200] [--readers 20] [--workers 2] [--json P]

A fresh, migrated PostgreSQL database; ``uvicorn --factory app.main:create_app --workers 2``
(the server ``reprise serve`` runs, in two processes); 20 registered users. For ``duration``
seconds, 200 submitter tasks (10 per user) upload packages one after another, and 20 reader
tasks read ``GET /v1/benchmarks/{id}/leaderboard`` and ``GET /v1/submissions``. No worker runs:
the queue only grows, as it does when submissions outpace the workers.

Pass criteria, checked by ``run()``: every request answered (no connection error, no timeout),
each answer a 2xx or a 429 carrying ``Retry-After`` (the daily quota: 50 per user), no 5xx, and
as many stored submissions as ``202`` answers. Latency percentiles are printed per route.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from app.core.config import REPO_ROOT, normalise_database_url  # noqa: E402
from tests.helpers import api_command, free_port, stop, targz  # noqa: E402

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/reprise_load"
EXAMPLE = REPO_ROOT / "examples" / "custom-command-example"


@dataclass
class Sample:
    route: str
    status: int  # 0: no answer (connection error or timeout)
    seconds: float
    retry_after: bool = False
    error: str = ""
    refusal: str = ""  # a 429's detail with its numbers blanked: which quota said no


@dataclass
class Report:
    samples: list[Sample] = field(default_factory=list)
    stored_submissions: int = -1
    duration_s: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def accepted(self) -> int:
        return sum(1 for s in self.samples if s.route == "POST /v1/submissions" and s.status == 202)

    def problems(self) -> list[str]:
        found = []
        unanswered = [s for s in self.samples if s.status == 0]
        if unanswered:
            found.append(f"{len(unanswered)} requests got no answer: {unanswered[0].error}")
        server_errors = [s for s in self.samples if s.status >= 500]
        if server_errors:
            found.append(
                f"{len(server_errors)} answers were 5xx: {Counter(s.status for s in server_errors)}"
            )
        bad_429 = [s for s in self.samples if s.status == 429 and not s.retry_after]
        if bad_429:
            found.append(f"{len(bad_429)} 429 answers without Retry-After")
        other = [
            s for s in self.samples if s.status and not (200 <= s.status < 300 or s.status == 429)
        ]
        if other:
            found.append(f"unexpected statuses: {Counter((s.route, s.status) for s in other)}")
        if self.stored_submissions != self.accepted:
            found.append(
                f"{self.stored_submissions} stored submissions != {self.accepted} answers 202"
            )
        return found

    def table(self) -> str:
        lines = [
            f"{len(self.samples)} requests in {self.duration_s:.0f} s "
            f"({len(self.samples) / max(self.duration_s, 1e-9):.0f}/s); "
            f"{self.accepted} submissions accepted, {self.stored_submissions} stored",
            "| route | requests | statuses | p50 ms | p95 ms | p99 ms | max ms |",
            "|---|---|---|---|---|---|---|",
        ]
        by_route: dict[str, list[Sample]] = defaultdict(list)
        for s in self.samples:
            by_route[s.route].append(s)
        for route, samples in sorted(by_route.items()):
            times = sorted(s.seconds * 1000 for s in samples if s.status)
            statuses = ", ".join(
                f"{k}: {v}" for k, v in sorted(Counter(s.status for s in samples).items())
            )
            lines.append(
                f"| `{route}` | {len(samples)} | {statuses} | {_pct(times, 50):.0f} | "
                f"{_pct(times, 95):.0f} | {_pct(times, 99):.0f} | {max(times or [0]):.0f} |"
            )
        refusals = Counter(s.refusal for s in self.samples if s.refusal)
        lines += [f"429 ({n}): {detail}" for detail, n in refusals.most_common()]
        return "\n".join(lines)


def _pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[max(0, min(98, int(p) - 1))]


def _package(i: int) -> bytes:
    files: dict[str, str | bytes] = {
        p.name: p.read_bytes() for p in EXAMPLE.iterdir() if p.is_file()
    }
    manifest = files["reprise.toml"].decode()  # type: ignore[union-attr]
    files["reprise.toml"] = manifest.replace(
        'name = "custom-command-example"', f'name = "load-{i % 1000:03d}-example"'
    )
    return targz(files)


def _prepare_database(url: str, data_dir: Path) -> None:
    """Schema dropped, migrated, and the catalog recorded once (two server processes starting
    on an empty catalog would race to insert the same benchmark rows)."""
    from app.benchmarks.catalog import sync_catalog
    from app.core.blobs import BlobStore
    from app.core.db import Database
    from tests.helpers import reset_database

    async_url = normalise_database_url(url)

    async def catalog() -> None:
        db = Database(async_url)
        try:
            async with db.session(write=True) as session:
                await sync_catalog(
                    session,
                    blobs=BlobStore(data_dir / "blobs", data_dir / "scratch"),
                    benchmarks_dir=REPO_ROOT / "benchmarks",
                )
        finally:
            await db.dispose()

    reset_database(async_url)
    asyncio.run(catalog())


async def _count_submissions(url: str) -> int:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(normalise_database_url(url))
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text("SELECT count(*) FROM submission"))).scalar_one())
    finally:
        await engine.dispose()


async def _timed(client: httpx.AsyncClient, route: str, method: str, url: str, **kw: Any) -> Sample:
    started = time.perf_counter()
    try:
        resp = await client.request(method, url, **kw)
    except httpx.HTTPError as exc:
        return Sample(route, 0, time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}")
    refusal = ""
    if resp.status_code == 429:
        refusal = re.sub(r"\d+", "N", str(resp.json().get("detail", "")))
    return Sample(
        route,
        resp.status_code,
        time.perf_counter() - started,
        retry_after="retry-after" in resp.headers,
        refusal=refusal,
    )


async def _load(
    base: str, tokens: list[str], *, duration: float, submitters: int, readers: int
) -> list[Sample]:
    samples: list[Sample] = []
    packages = [_package(i) for i in range(50)]
    deadline = time.monotonic() + duration
    limits = httpx.Limits(
        max_connections=submitters + readers + 10,
        max_keepalive_connections=submitters + readers + 10,
    )
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:

        async def submitter(n: int) -> None:
            headers = {"Authorization": f"Bearer {tokens[n % len(tokens)]}"}
            i = n
            while time.monotonic() < deadline:
                sample = await _timed(
                    client,
                    "POST /v1/submissions",
                    "POST",
                    "/v1/submissions",
                    headers=headers,
                    files={
                        "package": ("p.tar.gz", packages[i % len(packages)], "application/gzip")
                    },
                )
                samples.append(sample)
                i += submitters
                if sample.status == 429:  # a client that honours Retry-After would stop here;
                    await asyncio.sleep(1.0)  # this one keeps knocking, gently

        async def reader(n: int) -> None:
            routes = [
                (
                    "GET /v1/benchmarks/{id}/leaderboard",
                    "/v1/benchmarks/custom-command/leaderboard",
                ),
                ("GET /v1/submissions", "/v1/submissions"),
            ]
            i = n
            while time.monotonic() < deadline:
                route, url = routes[i % len(routes)]
                samples.append(await _timed(client, route, "GET", url))
                i += 1

        await asyncio.gather(
            *(submitter(n) for n in range(submitters)), *(reader(n) for n in range(readers))
        )
    return samples



def _wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited during start-up")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("the server did not become ready")


def run(
    *,
    database_url: str = DEFAULT_DATABASE,
    duration: float = 60.0,
    users: int = 20,
    submitters: int = 200,
    readers: int = 20,
    server_workers: int = 2,
    port: int | None = None,
) -> Report:
    """Run the load once and return the report (``report.problems()`` lists any failure)."""
    work = Path(tempfile.mkdtemp(prefix="reprise-load-"))
    data_dir = work / "var"
    port = port or free_port()
    _prepare_database(database_url, data_dir)
    env = {
        **os.environ,
        "REPRISE_ENVIRONMENT": "test",
        "REPRISE_DATABASE_URL": database_url,
        "REPRISE_DATA_DIR": str(data_dir),
        "REPRISE_BENCHMARKS_DIR": str(REPO_ROOT / "benchmarks"),
        "REPRISE_LOG_LEVEL": "WARNING",
    }
    cmd = api_command(port, "--workers", str(server_workers), "--backlog", "2048")
    log = (work / "server.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    report = Report(
        config={
            "duration_s": duration,
            "users": users,
            "submitters": submitters,
            "readers": readers,
            "server_workers": server_workers,
        }
    )
    try:
        try:
            _wait_up(base, proc)
        except RuntimeError:
            log.flush()
            tail = (work / "server.log").read_text(errors="replace")[-4000:]
            raise RuntimeError(f"the server did not start; its log ends:\n{tail}") from None
        tokens = []
        with httpx.Client(base_url=base, timeout=30) as http:
            for i in range(users):
                resp = http.post("/v1/users", json={"name": f"load-user-{i:02d}"})
                resp.raise_for_status()
                tokens.append(resp.json()["token"]["token"])
        started = time.monotonic()
        report.samples = asyncio.run(
            _load(base, tokens, duration=duration, submitters=submitters, readers=readers)
        )
        report.duration_s = time.monotonic() - started
        report.stored_submissions = asyncio.run(_count_submissions(database_url))
    finally:
        stop(proc)
        log.close()
        shutil.rmtree(work, ignore_errors=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--submitters", type=int, default=200)
    parser.add_argument("--readers", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    report = run(
        database_url=args.database_url,
        duration=args.duration,
        users=args.users,
        submitters=args.submitters,
        readers=args.readers,
        server_workers=args.workers,
    )
    print(report.table())
    problems = report.problems()
    for problem in problems:
        print(f"FAIL: {problem}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"config": report.config, "table": report.table(), "problems": problems}, indent=2
            )
        )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
