"""The docker backend under concurrency: every run's outputs arrive intact, or the run is a
BackendError (infrastructure, retried) -- never an empty output folder blamed on the package.

In a demo run (two workers, ~110 jobs) a keeper container died at start twice: once before
``docker start`` returned ("cannot start a stopped process"), once just after, which let the
phase's tmpfs be unmounted when the phase stopped and ``get_archive`` read a fresh, empty one:
the job became ``invalid_output``. Both keepers had hit their pids limit of 4 (the kernel logged
"fork rejected by pids controller" for each): runc's own init has 5-10 threads in the container's
cgroup while it starts the command. See docs/runner-backends.md, "Output stores".
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from runners.backends.base import BackendError
from runners.backends.docker import DockerBackend
from tests.runners.conftest import TEST_WORKER, script_spec

THREADS = int(os.environ.get("REPRISE_STRESS_THREADS", "4"))
RUNS = int(os.environ.get("REPRISE_STRESS_RUNS", "6"))  # per thread

pytestmark = pytest.mark.docker

PACKAGE = """
import hashlib, os, sys
token = os.environ["STRESS_TOKEN"]
data = hashlib.sha256(token.encode()).digest() * 8192  # 256 KiB, known content
with open("/reprise/output/params.bin", "wb") as f:
    f.write(data)
os.makedirs("/reprise/output/sub")
with open("/reprise/output/sub/token.txt", "w") as f:
    f.write(token)
if os.environ.get("STRESS_LINGER"):
    import time
    time.sleep(float(os.environ["STRESS_LINGER"]))
"""


def expected_params(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest() * 8192


def intact(out: Path, token: str) -> bool:
    try:
        return (out / "sub" / "token.txt").read_text() == token and (
            out / "params.bin"
        ).read_bytes() == expected_params(token)
    except OSError:
        return False


def run_many(
    backend: DockerBackend, tmp_path: Path, threads: int, runs: int, linger: float = 0.0
) -> tuple[Counter[str], list[str]]:
    """``threads`` x ``runs`` phases in parallel; counts ok / backend_error / lost."""
    counts: Counter[str] = Counter()
    problems: list[str] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        for number in range(runs):
            token = f"{index}-{number}-{uuid.uuid4().hex}"
            env = {"STRESS_TOKEN": token, **({"STRESS_LINGER": str(linger)} if linger else {})}
            spec = script_spec(backend, tmp_path, PACKAGE, env=env)
            try:
                result = backend.run(spec)
            except BackendError as exc:
                with lock:
                    counts["backend_error"] += 1
                    problems.append(f"{spec.name}: {exc}")
                continue
            ok = result.exit_code == 0 and intact(spec.output.source, token)
            with lock:
                counts["ok" if ok else "lost"] += 1
                if not ok:
                    found = sorted(p.name for p in spec.output.source.rglob("*"))
                    problems.append(f"{spec.name}: exit {result.exit_code}, found {found}")

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return counts, problems


@pytest.fixture(params=["auto", "keeper"])
def backend(
    request: pytest.FixtureRequest, docker_backend: DockerBackend
) -> Iterator[DockerBackend]:
    """The default store (host tmpfs when root) and the keeper, each on its own backend."""
    made = DockerBackend(grace_s=1.0, outputs=request.param)
    yield made
    made.close()


def test_parallel_runs_all_deliver_their_outputs(backend: DockerBackend, tmp_path: Path) -> None:
    started = time.monotonic()
    counts, problems = run_many(backend, tmp_path, THREADS, RUNS)
    elapsed = time.monotonic() - started
    print(f"{backend.outputs}: {dict(counts)} in {elapsed:.1f} s")  # shown with -s
    assert counts == Counter(ok=THREADS * RUNS), problems


def test_a_keeper_that_dies_never_yields_empty_outputs(
    docker_backend: DockerBackend, tmp_path: Path
) -> None:
    """Chaos: a neighbour kills the keeper of every other run while its phase runs. Each run
    must deliver intact outputs or raise BackendError; none may return an empty folder."""
    backend = DockerBackend(grace_s=1.0, outputs="keeper")
    api = backend.client().api
    stop = threading.Event()
    killed: set[str] = set()

    def neighbour() -> None:
        seen: set[str] = set()
        selector = {"label": [f"reprise.worker={TEST_WORKER}", "reprise.role=phase"]}
        while not stop.is_set():
            for phase in api.containers(filters=selector):  # running phases only
                name = phase["Names"][0].lstrip("/")
                if name in seen:
                    continue
                seen.add(name)
                if len(seen) % 2 == 0:
                    try:
                        api.kill(f"{name}-keeper")
                        killed.add(name)
                    except docker.errors.APIError:
                        pass
            time.sleep(0.02)

    chaos = threading.Thread(target=neighbour, daemon=True)
    chaos.start()
    try:
        counts, problems = run_many(backend, tmp_path, 2, 4, linger=1.0)
    finally:
        stop.set()
        chaos.join(timeout=5)
        backend.close()
    print(f"chaos: {dict(counts)}, keepers killed: {len(killed)}")
    assert counts["lost"] == 0, problems
    assert killed
    assert counts["backend_error"] == len(killed), problems
    assert all("output keeper" in problem for problem in problems), problems
    assert counts["ok"] == 8 - len(killed)
