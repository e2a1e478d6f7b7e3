"""API benchmark (reports, never gates): the leaderboard JSON under load, at 100,000 submissions.

    .venv/bin/python -m tests.perf.bench_api [--seconds 3] [--reps 3] [--connections 16]

Needs the seeded ``reprise_perf`` database of ``bench_leaderboard`` (``run.py`` seeds it when it
is missing). Starts ``reprise serve`` on it (one uvicorn process, uvloop + httptools) and, beside
it, a bare FastAPI app in the same kind of process whose one ``async def`` route answers the
exact bytes the board answered. Both are loaded alike, alternately, by ``common.hammer`` (keep-
alive GETs on ``--connections`` connections). Figures: requests per second of the board over
those of the bare endpoint (goal ≥ 0.5), and the board's p99 over the bare p99 (goal ≤ 2, the
same bound seen from the latency side).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import free_port, stop
from tests.perf.bench_leaderboard import BOARD, server
from tests.perf.common import ROOT, figure, hammer, loadavg, ready


@contextmanager
def bare_server(body: bytes) -> Iterator[str]:
    """A bare FastAPI app serving ``body`` at ``/board`` (own uvicorn process)."""
    port = free_port()
    with tempfile.NamedTemporaryFile(suffix=".json") as fh:
        fh.write(body)
        fh.flush()
        cmd = [sys.executable, "-m", "tests.perf.bench_api", "--serve-bare", fh.name,
               "--port", str(port)]
        proc = subprocess.Popen(cmd, cwd=ROOT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while not ready(base):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the bare app did not start")
                time.sleep(0.1)
            yield base
        finally:
            stop(proc)


def serve_bare(path: Path, port: int) -> None:
    import uvicorn
    from fastapi import FastAPI, Response

    body = path.read_bytes()
    app = FastAPI()

    @app.get("/board")
    async def board() -> Response:
        return Response(content=body, media_type="application/json")

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)


def run(*, seconds: float = 3.0, reps: int = 3, connections: int = 16) -> dict[str, Any]:
    rps: dict[str, list[float]] = {"board": [], "bare": []}
    p99: dict[str, list[float]] = {"board": [], "bare": []}
    with server() as base:
        body = httpx.get(f"{base}{BOARD}", timeout=60).content
        with bare_server(body) as bare:
            assert httpx.get(f"{bare}/board").content == body
            for url, path in ((base, BOARD), (bare, "/board")):  # warm-up
                hammer(url, path, connections=connections, seconds=min(1.0, seconds))
            for _ in range(reps):
                for key, url, path in (("board", base, BOARD), ("bare", bare, "/board")):
                    got = hammer(url, path, connections=connections, seconds=seconds)
                    rps[key].append(got["rps"])
                    p99[key].append(got["p99_ms"])
    note = f"{len(body):,} bytes, {connections} keep-alive connections, {seconds:g} s windows"
    figures = [
        figure("api.rps", measured=rps["board"], baseline=rps["bare"], unit="req/s",
               measured_label=f"GET {BOARD} (50 rows), 100k submissions: req/s",
               baseline_label="bare FastAPI route answering the same bytes: req/s",
               higher_is_better=True, goal=0.5, note=note),
        figure("api.p99", measured=p99["board"], baseline=p99["bare"], unit="ms",
               measured_label=f"GET {BOARD}: p99 (ms)",
               baseline_label="bare FastAPI route: p99 (ms)",
               higher_is_better=False, goal=2.0, note=note),
    ]
    return {"figures": figures, "bytes": len(body), "load": loadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--serve-bare", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.serve_bare, args.port)
        return
    result = run(seconds=args.seconds, reps=args.reps, connections=args.connections)
    for f in result["figures"]:
        print(f"{f['measured_label']}: {f['measured']['median']:.1f} over "
              f"{f['baseline']['median']:.1f}  ratio {f['ratio']['median']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
