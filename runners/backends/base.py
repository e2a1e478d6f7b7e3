"""The backend interface: prepare an environment, run one phase, cancel, reconcile.

A backend executes one *phase* (``ingest`` or ``score``) of one job as a single sandboxed
process tree: a container for the docker backend, a process group for the local backend, a
scripted answer for the fake backend. Everything a phase sees arrives through ``RunSpec``; the
backend decides how (bind mounts, plain directories) and reports facts, never guesses.

Exceptions::

    BackendError              a backend call failed; the job is an infrastructure_error
    └── BackendUnavailable    the engine cannot be reached (stay up, report unhealthy, retry)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


class BackendError(Exception):
    """A backend operation failed for reasons that are not the package's fault."""


class BackendUnavailable(BackendError):
    """The execution engine (e.g. the Docker daemon) cannot be reached right now."""


class LiveTail:
    """The last bytes a running phase printed, readable by another thread while it runs.

    Backends feed it as output arrives; the worker sends it with its heartbeats, so
    ``GET /v1/jobs/{id}`` shows a live log tail while a job runs.
    """

    def __init__(self, limit: int = 8192) -> None:
        self.limit = limit
        self.version = 0  # bumped on every feed: the worker sends only a changed tail
        self._buf = bytearray()
        self._lock = threading.Lock()

    def feed(self, data: bytes) -> None:
        with self._lock:
            self._buf += data
            if len(self._buf) > 2 * self.limit:
                del self._buf[: len(self._buf) - self.limit]
            self.version += 1

    def text(self) -> str:
        with self._lock:
            return bytes(self._buf[-self.limit :]).decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Limits:
    """Resource limits for one phase; always decided by the benchmark, never by the package."""

    cpus: float = 1.0
    memory_mb: int = 1024
    timeout_s: float = 120.0
    pids: int = 256
    tmpfs_mb: int = 256
    output_mb: int = 64
    nofile: int = 1024
    log_tail_bytes: int = 64 * 1024


@dataclass(frozen=True)
class Mount:
    """A host directory made visible to the phase at ``target`` (a container path)."""

    source: Path
    target: str
    read_only: bool = True


@dataclass(frozen=True)
class EnvironmentSpec:
    """What a package asks for: an approved base and, optionally, pinned requirements."""

    base: str
    requirements: str | None = None  # the text of requirements.txt, every line pinned
    input_hash: str = ""  # sha256 over base + requirements; names the derived environment


@dataclass(frozen=True)
class PreparedEnvironment:
    """A ready environment: what to run and how to name it in provenance."""

    reference: str  # docker: image tag; local: path of the python interpreter
    python: str  # the interpreter inside the environment ("python3" in a container)
    digest: str | None = None  # docker: the image id (sha256:...); local: None


@dataclass(frozen=True)
class RunSpec:
    """One phase to execute. ``name`` is idempotent: ``reprise-{job}-{attempt}-{phase}``."""

    name: str
    environment: PreparedEnvironment
    command: list[str]
    env: dict[str, str]
    mounts: list[Mount]
    output: Mount  # the only writable mount; size-capped by limits.output_mb
    limits: Limits
    workdir: str = "/"
    labels: dict[str, str] = field(default_factory=dict)
    live_tail: LiveTail | None = field(default=None, compare=False)  # fed while it runs


@dataclass
class RunResult:
    """Facts about a finished phase. Classification into outcome kinds happens in the worker."""

    exit_code: int | None
    timed_out: bool = False
    oom_killed: bool = False
    cancelled: bool = False
    wall_s: float = 0.0
    cpu_s: float | None = None
    peak_memory_mb: float | None = None
    log_tail: str = ""
    log_dropped_bytes: int = 0
    output_overflow: bool = False  # the output directory went over its cap
    output_error: str | None = None  # why the backend refused the outputs (a link, a device...)


class Backend(Protocol):
    """What the worker needs from an execution engine. Implementations must be thread-safe."""

    name: str

    def visible_path(self, mount: Mount) -> str:
        """Where the phase process sees ``mount`` (the container path, or the host path)."""
        ...

    def prepare_environment(self, spec: EnvironmentSpec) -> PreparedEnvironment:
        """Return a ready environment for ``spec``, building and caching it when needed."""
        ...

    def run(self, spec: RunSpec, cancel: threading.Event | None = None) -> RunResult:
        """Execute ``spec`` to completion, timeout or cancellation; always clean up after."""
        ...

    def reconcile(self, worker_id: str, keep: set[str]) -> list[str]:
        """Remove leftovers labelled with ``worker_id`` whose names are not in ``keep``."""
        ...

    def healthy(self) -> bool:
        """True when the engine answers; a worker claims nothing while this is False."""
        ...

    def describe(self) -> dict[str, str]:
        """Provenance facts about this backend and host (engine version, CPU model, GPU...)."""
        ...

    def close(self) -> None:
        """Release clients and connections."""
        ...
