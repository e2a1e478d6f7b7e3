"""The fake backend: a scripted test double with recorded calls."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from runners.backends.base import (
    Backend,
    BackendUnavailable,
    EnvironmentSpec,
    Limits,
    Mount,
    RunResult,
    RunSpec,
)
from runners.backends.fake import FakeBackend


def _spec(tmp_path: Path, name: str = "reprise-1-1-ingest", timeout_s: float = 5) -> RunSpec:
    backend = FakeBackend()
    return RunSpec(
        name=name,
        environment=backend.prepare_environment(EnvironmentSpec(base="python-numpy")),
        command=["python3", "main.py"],
        env={},
        mounts=[],
        output=Mount(tmp_path / "out", "/reprise/output", read_only=False),
        limits=Limits(timeout_s=timeout_s),
    )


def test_answers_from_the_handler_and_writes_outputs(tmp_path):
    def outputs(spec: RunSpec, out: Path) -> None:
        (out / "metrics.json").write_text('{"metrics": {"acc": 0.9}}')

    backend: Backend = FakeBackend(
        lambda spec: RunResult(exit_code=0, log_tail=f"ran {spec.name}"), write_outputs=outputs
    )
    spec = _spec(tmp_path)
    result = backend.run(spec)
    assert result.log_tail == "ran reprise-1-1-ingest"
    assert (spec.output.source / "metrics.json").exists()
    assert isinstance(backend, FakeBackend)
    assert backend.calls == [spec]
    assert backend.visible_path(spec.output) == "/reprise/output"


def test_prepare_is_recorded_and_deterministic():
    backend = FakeBackend()
    a = backend.prepare_environment(EnvironmentSpec(base="python-numpy", requirements="x==1"))
    b = backend.prepare_environment(EnvironmentSpec(base="python-numpy", requirements="x==1"))
    assert a == b
    assert a.digest is not None
    assert a.digest.startswith("sha256:")
    assert len(backend.prepared) == 2


def test_hanging_run_ends_on_cancel_or_timeout(tmp_path):
    backend = FakeBackend(hang=True)
    cancel = threading.Event()
    threading.Timer(0.1, cancel.set).start()
    assert backend.run(_spec(tmp_path), cancel).cancelled
    assert backend.cancelled == ["reprise-1-1-ingest"]
    started = time.monotonic()
    result = backend.run(_spec(tmp_path, timeout_s=0.2))
    assert result.timed_out
    assert time.monotonic() - started < 2


def test_already_cancelled_run_does_not_call_the_handler(tmp_path):
    def boom(spec: RunSpec) -> RunResult:
        raise AssertionError("not called")

    cancel = threading.Event()
    cancel.set()
    assert FakeBackend(boom).run(_spec(tmp_path), cancel).cancelled


def test_unhealthy_refuses_work(tmp_path):
    backend = FakeBackend()
    backend.is_healthy = False
    assert backend.healthy() is False
    with pytest.raises(BackendUnavailable):
        backend.run(_spec(tmp_path))
    with pytest.raises(BackendUnavailable):
        backend.prepare_environment(EnvironmentSpec(base="python-numpy"))


def test_reconcile_bookkeeping():
    backend = FakeBackend()
    backend.leftovers = {"a": "w1", "b": "w1", "c": "w2"}
    assert backend.reconcile("w1", keep={"b"}) == ["a"]
    assert backend.leftovers == {"b": "w1", "c": "w2"}
    assert backend.reconciled == [("w1", {"b"})]
    backend.close()
    assert backend.closed
    assert backend.describe() == {"backend": "fake"}
