"""Fixtures for the runner backends: a local backend, a docker backend, RunSpec builders.

The docker fixtures skip when the engine or the base image is missing -- except under
``CI=true``, where a missing engine is a failure: CI must exercise the real sandbox.
"""

from __future__ import annotations

import os
import socket
import textwrap
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from runners.backends.base import (
    Backend,
    BackendError,
    EnvironmentSpec,
    Limits,
    Mount,
    RunSpec,
)
from runners.backends.local import LocalBackend

if TYPE_CHECKING:
    from runners.backends.docker import DockerBackend

TEST_WORKER = f"pytest-{os.getpid()}"
SpecFactory = Callable[..., RunSpec]


def unavailable(reason: str) -> None:
    """Skip -- or fail, under CI=true -- a test that needs something this machine lacks."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: these tests must run, not skip)")
    pytest.skip(reason)


@pytest.fixture
def local_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBackend]:
    backend = LocalBackend(scratch_root=tmp_path_factory.mktemp("local-scratch"), grace_s=0.5)
    yield backend
    backend.close()


def ready_docker_backend(**options: Any) -> DockerBackend:
    """A DockerBackend whose engine answers and whose base image is built, else unavailable()."""
    try:
        from runners.backends.docker import DockerBackend
    except ImportError as exc:  # pragma: no cover - the SDK is a dependency
        unavailable(f"the docker SDK cannot be imported: {exc}")
        raise
    backend = DockerBackend(**options)
    try:
        if not backend.healthy():
            unavailable("the Docker daemon does not answer (scripts/ensure-docker.sh)")
        try:
            backend.prepare_environment(EnvironmentSpec(base="python-numpy"))
        except BackendError as exc:
            unavailable(f"the base image is missing (scripts/build-images.sh): {exc}")
    except BaseException:  # the skip too
        backend.close()
        raise
    return backend


@pytest.fixture(scope="session")
def _docker_backend() -> Iterator[Backend]:
    backend = ready_docker_backend(grace_s=1.0)
    yield backend
    backend.reconcile(TEST_WORKER, keep=set())
    backend.close()


@pytest.fixture
def docker_backend(_docker_backend: Backend) -> Backend:
    return _docker_backend


def write_package(root: Path, code: str, files: dict[str, str] | None = None) -> Path:
    """A package folder the sandbox user can read: main.py plus extra files."""
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    (root / "main.py").write_text(textwrap.dedent(code))
    for name, text in (files or {}).items():
        (root / name).write_text(text)
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


def script_spec(
    backend: Backend,
    tmp_path: Path,
    code: str,
    *,
    limits: Limits | None = None,
    env: dict[str, str] | None = None,
    name: str | None = None,
    files: dict[str, str] | None = None,
    worker: str = TEST_WORKER,
) -> RunSpec:
    """A RunSpec that runs ``code`` as ``main.py`` from a read-only package mount."""
    environment = backend.prepare_environment(EnvironmentSpec(base="python-numpy"))
    run_id = uuid.uuid4().hex[:10]
    package = Mount(write_package(tmp_path / f"pkg-{run_id}", code, files), "/reprise/package")
    output = Mount(tmp_path / f"out-{run_id}", "/reprise/output", read_only=False)
    pkg_dir, out_dir = backend.visible_path(package), backend.visible_path(output)
    base_env = {
        "REPRISE_PHASE": "ingest",
        "REPRISE_SEED": "0",
        "REPRISE_PACKAGE_DIR": pkg_dir,
        "REPRISE_OUTPUT": out_dir,
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    if package.target == pkg_dir:  # a container: /tmp is its private tmpfs
        base_env.update(HOME="/tmp", TMPDIR="/tmp")
    return RunSpec(
        name=name or f"reprise-test-{run_id}-1-ingest",
        environment=environment,
        command=[environment.python, f"{pkg_dir}/main.py"],
        env={**base_env, **(env or {})},
        mounts=[package],
        output=output,
        limits=limits or Limits(timeout_s=30),
        workdir=pkg_dir,
        labels={
            "reprise.worker": worker,
            "reprise.job": run_id,
            "reprise.attempt": "1",
            "reprise.phase": "ingest",
        },
    )


@pytest.fixture
def make_spec(tmp_path: Path) -> Callable[..., RunSpec]:
    def factory(backend: Backend, code: str, **kwargs: object) -> RunSpec:
        return script_spec(backend, tmp_path, code, **kwargs)  # type: ignore[arg-type]

    return factory


def with_limits(spec: RunSpec, **changes: object) -> RunSpec:
    return replace(spec, limits=replace(spec.limits, **changes))  # type: ignore[arg-type]


class Listener:
    """A TCP listener on the host's 127.0.0.1 that records whether anybody connected."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def host_listener() -> Iterator[Listener]:
    listener = Listener()
    yield listener
    listener.close()


def live_pids_with(marker: str) -> list[int]:
    """Host pids whose command line contains ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rpartition(b")")[2].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != b"Z":
            found.append(int(entry))
    return found
