"""A scripted backend for unit tests, in the spirit of httpx's ``MockTransport``.

    backend = FakeBackend(lambda spec: RunResult(exit_code=0, log_tail="ok"),
                          write_outputs=lambda spec, out: (out / "metrics.json").write_text("{}"))

Every call is recorded (``calls``, ``prepared``, ``cancelled``, ``reconciled``); ``is_healthy``
toggles ``healthy()`` and makes the other calls raise ``BackendUnavailable``; ``hang=True`` makes
``run`` block like a stuck package until its cancel event is set or the spec's timeout passes.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from pathlib import Path

from runners.backends.base import (
    BackendUnavailable,
    EnvironmentSpec,
    Mount,
    PreparedEnvironment,
    RunResult,
    RunSpec,
)

Handler = Callable[[RunSpec], RunResult]
OutputWriter = Callable[[RunSpec, Path], None]


def _succeed(spec: RunSpec) -> RunResult:
    return RunResult(exit_code=0)


class FakeBackend:
    """A test double: answers from ``handler``, writes outputs with ``write_outputs``."""

    name = "fake"

    def __init__(
        self,
        handler: Handler = _succeed,
        *,
        write_outputs: OutputWriter | None = None,
        hang: bool = False,
    ) -> None:
        self.handler = handler
        self.write_outputs = write_outputs
        self.hang = hang
        self.is_healthy = True
        self.closed = False
        self.calls: list[RunSpec] = []
        self.prepared: list[EnvironmentSpec] = []
        self.cancelled: list[str] = []
        self.reconciled: list[tuple[str, set[str]]] = []
        self.leftovers: dict[str, str] = {}  # run name -> worker id, what reconcile would find
        self._lock = threading.Lock()

    def visible_path(self, mount: Mount) -> str:
        return mount.target

    def prepare_environment(self, spec: EnvironmentSpec) -> PreparedEnvironment:
        self._check_up()
        with self._lock:
            self.prepared.append(spec)
        digest = hashlib.sha256(f"{spec.base}\n{spec.requirements or ''}".encode()).hexdigest()
        return PreparedEnvironment(
            reference=f"fake/{spec.base}:{digest[:12]}", python="python3", digest=f"sha256:{digest}"
        )

    def run(self, spec: RunSpec, cancel: threading.Event | None = None) -> RunResult:
        self._check_up()
        with self._lock:
            self.calls.append(spec)
        started = time.monotonic()
        if self.hang:
            stopped = (cancel or threading.Event()).wait(spec.limits.timeout_s)
            return (
                self._cancelled(spec, started)
                if stopped
                else RunResult(exit_code=137, timed_out=True, wall_s=time.monotonic() - started)
            )
        if cancel is not None and cancel.is_set():
            return self._cancelled(spec, started)
        if self.write_outputs is not None:
            spec.output.source.mkdir(parents=True, exist_ok=True)
            self.write_outputs(spec, spec.output.source)
        return self.handler(spec)

    def reconcile(self, worker_id: str, keep: set[str]) -> list[str]:
        self._check_up()
        with self._lock:
            self.reconciled.append((worker_id, set(keep)))
            removed = [n for n, w in self.leftovers.items() if w == worker_id and n not in keep]
            for name in removed:
                del self.leftovers[name]
        return removed

    def healthy(self) -> bool:
        return self.is_healthy

    def describe(self) -> dict[str, str]:
        return {"backend": "fake"}

    def close(self) -> None:
        self.closed = True

    def _cancelled(self, spec: RunSpec, started: float) -> RunResult:
        with self._lock:
            self.cancelled.append(spec.name)
        return RunResult(exit_code=None, cancelled=True, wall_s=time.monotonic() - started)

    def _check_up(self) -> None:
        if not self.is_healthy:
            raise BackendUnavailable("the fake backend is switched to unhealthy")
