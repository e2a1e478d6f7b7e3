"""``reprise demo``: a real end-to-end replication on a fresh SQLite database.

It migrates a new database under ``var/demo``, starts the API and an embedded worker (Docker when
an engine answers and the base image can be had, otherwise the local backend), submits every
example package through the HTTP API like a researcher would, follows the jobs, and prints each
claim's verdict, quality score and explanation next to what the example was built to show.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.live import Live
from rich.table import Table

from app.core.config import REPO_ROOT, Settings

# A pipe or a CI log is not a terminal: give the tables room instead of rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 120)

# What each example is built to show; the demo reports whether the service saw it.
EXPECTED: dict[str, str] = {
    "sgd-logreg": "reproduced",
    "adam-logreg": "reproduced",
    "momentum-quadratic": "reproduced",
    "momentum-rosenbrock": "reproduced",
    "adam-mlp": "reproduced",
    "inflated-logreg": "not_reproduced",
    "cherrypicked-logreg": "seed-selection flag",
    "nondeterministic-logreg": "not deterministic",
    "broken-import": "every run user_error",
    "custom-command-example": "reproduced (self-reported)",
}
FINAL = {
    "succeeded",
    "user_error",
    "timeout",
    "oom",
    "invalid_output",
    "infrastructure_error",
    "cancelled",
}


@dataclass
class Entry:
    example: str
    submission_id: int
    jobs: int = 0
    done: int = 0
    state: str = "queued"
    verdict: dict[str, Any] | None = None
    failures: dict[str, int] | None = None


def _free_port(preferred: int) -> int:
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", preferred)) != 0:
            return preferred
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _choose_backend(requested: str) -> str:
    from app.cli.server import docker_available

    if requested != "auto":
        return requested
    if not docker_available():
        console.print(
            "[yellow]no Docker engine answers: using the local backend (not a sandbox; "
            "fine for these trusted examples)[/]"
        )
        return "local"
    script = REPO_ROOT / "scripts" / "build-images.sh"
    console.print(
        "Docker engine found: making sure the base image exists (scripts/build-images.sh)"
    )
    result = subprocess.run([str(script)], check=False)  # noqa: S603 - our own script
    if result.returncode != 0:
        console.print("[yellow]the base image could not be built: using the local backend[/]")
        return "local"
    return "docker"


@contextlib.contextmanager
def _serving(settings: Settings, port: int) -> Iterator[str]:
    import uvicorn

    from app.main import create_app

    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_config=None, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="reprise-demo-api", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API server did not start")
        time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _examples() -> list[Path]:
    root = REPO_ROOT / "examples"
    found = sorted(p.parent for p in root.glob("*/reprise.toml"))
    order = {name: i for i, name in enumerate(EXPECTED)}
    return sorted(found, key=lambda p: (order.get(p.name, len(order)), p.name))


def _table(entries: list[Entry]) -> Table:
    table = Table(title="Reprise demo: replications", expand=True)
    for col in ("example", "jobs", "verdict", "Q", "flags", "built to show"):
        table.add_column(col)
    for e in entries:
        v = e.verdict or {}
        flags = []
        if v.get("seed_selection", {}).get("flag"):
            flags.append("seed-selection")
        if v.get("determinism", {}).get("deterministic") is False:
            flags.append("non-deterministic")
        if v.get("self_reported"):
            flags.append("self-reported")
        if e.failures:
            flags.append(", ".join(f"{n} {k}" for k, n in sorted(e.failures.items())))
        verdict = v.get("claim_verdict", e.state)
        quality = v.get("quality", {}).get("total")
        table.add_row(
            e.example,
            f"{e.done}/{e.jobs}",
            verdict,
            "" if quality is None else f"{quality:.1f}",
            "; ".join(flags),
            EXPECTED.get(e.example, ""),
        )
    return table


def _follow(client: httpx.Client, entries: list[Entry], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    with Live(_table(entries), console=console, refresh_per_second=2) as live:
        while True:
            for e in entries:
                body = client.get(f"/v1/submissions/{e.submission_id}").json()
                e.jobs = len(body["jobs"])
                e.done = sum(1 for j in body["jobs"] if j["status"] in FINAL)
                e.state = body["version"]["status"]
                e.verdict = body["version"].get("verdict")
                failed = [j["status"] for j in body["jobs"] if j["status"] in FINAL - {"succeeded"}]
                e.failures = {s: failed.count(s) for s in set(failed)} or None
            live.update(_table(entries))
            if all(e.state in ("finished", "cancelled") for e in entries):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(1.0)


def _bootstrap_accounts(settings: Settings) -> tuple[str, str]:
    from app.cli.server import _create_user, _create_worker

    researcher = asyncio.run(_create_user(settings, "ada", "member"))
    asyncio.run(_create_user(settings, "demo-maintainer", "maintainer"))
    worker = asyncio.run(_create_worker(settings, "demo-worker", {}, "demo-maintainer"))
    return researcher, worker


def run_demo(*, port: int, backend: str, keep_serving: bool) -> int:
    from app.cli.client import upload_package
    from app.cli.server import embedded_worker, upgrade_database
    from runners.archives import pack_directory

    data_dir = REPO_ROOT / "var" / "demo"
    shutil.rmtree(data_dir, ignore_errors=True)
    chosen = _choose_backend(backend)
    settings = Settings(
        environment="development",
        data_dir=data_dir,
        allow_unsandboxed=chosen == "local",
        log_level="WARNING",
    )
    upgrade_database(settings)
    researcher, worker_token = _bootstrap_accounts(settings)
    port = _free_port(port)
    examples = _examples()
    if not examples:
        console.print("[red]no example packages under examples/[/]")
        return 1
    with (
        _serving(settings, port) as url,
        embedded_worker(url, worker_token, chosen, concurrency=2),
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        console.print(f"API at {url} (OpenAPI at {url}/docs); worker backend: [bold]{chosen}[/]")
        entries = []
        for folder in examples:
            archive = data_dir / "uploads" / f"{folder.name}.tar.gz"
            archive.parent.mkdir(parents=True, exist_ok=True)
            pack_directory(folder, archive)
            body = upload_package(url, researcher, archive, submission_id=None)
            title = tomllib.loads((folder / "reprise.toml").read_text())["package"]["title"]
            console.print(f"submitted [bold]{folder.name}[/] (#{body['id']}): {title}")
            entries.append(Entry(example=folder.name, submission_id=int(body["id"])))
        finished = _follow(
            client, entries, timeout_s=float(os.environ.get("REPRISE_DEMO_TIMEOUT", 1800))
        )
        console.print()
        for e in entries:
            v = e.verdict or {}
            console.print(f"[bold]{e.example}[/] → {v.get('claim_verdict', e.state)}")
            if v.get("explanation"):
                console.print(f"  {v['explanation']}")
            console.print(f"  {url}/submissions/{e.submission_id}")
        if keep_serving:
            console.print(f"\nserving at {url}; Ctrl-C to stop")
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
    if not finished:
        console.print("[red]some submissions did not finish in time[/]")
        return 1
    return 0
