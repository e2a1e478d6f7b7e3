"""What every benchmark of ``tests/perf`` shares: a ``reprise serve`` subprocess, a light HTTP load
generator, and the figure format ``run.py`` collects and ``report.py`` renders.

A *figure* is one measured quantity beside the baseline it is a ratio to, both taken in the same
run, repetition by repetition (``ratio = measured / baseline`` per repetition, or its inverse
when smaller is better for the measured quantity); the report gives the median ratio and its
spread (min–max over the repetitions), never a bare absolute time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import free_port, stop

ROOT = Path(__file__).resolve().parents[2]
ADMIN_URL = os.environ.get("REPRISE_PERF_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")



def pg_url(database: str, driver: str = "") -> str:
    """The URL of ``database`` on the server of ``ADMIN_URL`` (``driver``: ``+asyncpg``...)."""
    base = ADMIN_URL.rsplit("/", 1)[0] + f"/{database}"
    return base.replace("postgresql://", f"postgresql{driver}://", 1)


def recreate_pg_database(name: str) -> None:
    """Drop and create ``name`` (never the shared ``test`` database), then migrate it."""
    import psycopg

    from tests.helpers import migrate

    if name == "test":
        raise ValueError("the perf suite never touches the shared test database")
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    migrate(pg_url(name))


def ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def reprise_server(env: dict[str, str], *, timeout: float = 120) -> Iterator[tuple[str, int]]:
    """``reprise serve --no-migrate`` (one uvicorn process) with ``env``; yields (url, pid)."""
    port = free_port()
    full = {"REPRISE_LOG_LEVEL": "WARNING", **os.environ, **env}
    with tempfile.TemporaryDirectory(prefix="reprise-perf-") as data:
        full.setdefault("REPRISE_DATA_DIR", data)
        cli = [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--no-migrate"]
        proc = subprocess.Popen(cli, env=full, cwd=ROOT, stdout=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while not ready(base):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("reprise serve did not become ready")
                time.sleep(0.2)
            yield base, proc.pid
        finally:
            stop(proc)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ---------------------------------------------------------------------------------- load generator


async def _connection(
    host: str, port: int, request: bytes, stop_at: float, latencies: list[float]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            writer.write(request)
            status = await reader.readline()
            if not status.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"load generator got {status!r}")
            length = -1
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            if length < 0:
                raise RuntimeError("load generator needs Content-Length answers")
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def hammer(url: str, path: str, *, connections: int, seconds: float) -> dict[str, float]:
    """Keep-alive GETs of ``path`` on ``connections`` connections for ``seconds`` (a small wrk):
    requests per second and latency percentiles in ms. Raw asyncio streams, so that the client
    costs the shared CPUs as little as possible and the same for every endpoint measured."""
    host, _, port = url.removeprefix("http://").partition(":")
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\r\n".encode()
    latencies: list[float] = []

    async def main() -> float:
        start = time.perf_counter()
        stop_at = start + seconds
        await asyncio.gather(*(_connection(host, int(port), request, stop_at, latencies)
                               for _ in range(connections)))
        return time.perf_counter() - start

    try:
        import uvloop

        elapsed = uvloop.run(main())
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        elapsed = asyncio.run(main())
    ms = sorted(x * 1000 for x in latencies)
    q = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else ms * 99
    return {"rps": len(ms) / elapsed, "p50_ms": statistics.median(ms), "p99_ms": q[98],
            "requests": float(len(ms))}


# ---------------------------------------------------------------------------------- figures


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, min, max, and the interquartile range when there are enough repetitions."""
    vals = sorted(values)
    out = {"median": statistics.median(vals), "min": vals[0], "max": vals[-1], "n": len(vals)}
    if len(vals) >= 4:
        q = statistics.quantiles(vals, n=4, method="inclusive")
        out.update(q1=q[0], q3=q[2])
    return out


def figure(
    name: str,
    *,
    measured: Sequence[float],
    baseline: Sequence[float],
    unit: str,
    measured_label: str,
    baseline_label: str,
    higher_is_better: bool,
    goal: float | None = None,
    goal_text: str | None = None,
    absolute_goal: tuple[str, float, str] | None = None,
    note: str = "",
) -> dict[str, Any]:
    """One figure: ratio per repetition (paired), oriented so that the goal reads ``ratio ≥ goal``
    when ``higher_is_better`` and ``ratio ≤ goal`` when not (a time over its baseline)."""
    if len(measured) != len(baseline) or not measured:
        raise ValueError(f"{name}: measured and baseline need the same, non-zero repetitions")
    ratios = [m / b for m, b in zip(measured, baseline, strict=True)]
    r = spread(ratios)
    met: bool | None = None
    if goal is not None:
        met = r["median"] >= goal if higher_is_better else r["median"] <= goal
    absolute: dict[str, Any] | None = None
    if absolute_goal is not None:
        op, value, text = absolute_goal
        med = statistics.median(measured)
        absolute = {"op": op, "value": value, "text": text,
                    "met": med >= value if op == ">=" else med <= value}
    return {
        "name": name,
        "unit": unit,
        "measured_label": measured_label,
        "baseline_label": baseline_label,
        "measured": {"samples": list(measured), **spread(measured)},
        "baseline": {"samples": list(baseline), **spread(baseline)},
        "ratio": {"samples": ratios, **r},
        "higher_is_better": higher_is_better,
        "goal": goal,
        "goal_text": goal_text or (None if goal is None
                                   else f"{'≥' if higher_is_better else '≤'} {goal:g}"),
        "met": met,
        "absolute_goal": absolute,
        "note": note,
    }
