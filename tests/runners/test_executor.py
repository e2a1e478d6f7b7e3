"""The job pipeline with the FakeBackend and a scripted API: specs, every outcome, cleanup."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runners import executor
from runners.archives import ArchiveError
from runners.backends.base import Backend, RunResult, RunSpec
from runners.backends.fake import FakeBackend
from runners.executor import ResultPayload, execute
from tests.helpers import targz, toy_files
from tests.runners.workerkit import FakeServer

METRICS = {"metrics": {"score": 1.5, "loss": 0.03}, "self_reported": False}


def _writer(
    ingest: dict[str, str] | None = None, score: dict[str, str] | None = None,
) -> Callable[[RunSpec, Path], None]:
    """Write files into the phase's output folder, per phase."""

    def write(spec: RunSpec, out: Path) -> None:
        files = ingest if spec.labels["reprise.phase"] == "ingest" else score
        for name, text in (files or {}).items():
            (out / name).write_text(text)

    return write


def _results(ingest: RunResult, score: RunResult | None = None) -> Callable[[RunSpec], RunResult]:
    def handler(spec: RunSpec) -> RunResult:
        if spec.labels["reprise.phase"] == "ingest":
            return ingest
        assert score is not None, "the score phase must not run"
        return score

    return handler


def ok(log: str = "") -> RunResult:
    return RunResult(exit_code=0, wall_s=0.5, cpu_s=0.4, peak_memory_mb=30.0, log_tail=log)


def run(
    tmp_path: Path, backend: FakeBackend, server: FakeServer | None = None, *,
    cancel: threading.Event | None = None, phases: list[str] | None = None,
) -> ResultPayload:
    server = server or FakeServer()
    payload = execute(
        server.lease(), backend=backend, client=server.client(), workdir=tmp_path / "work",
        worker_id="w-1", labels={"cpu": "x86_64"}, cancel_event=cancel or threading.Event(),
        on_phase=(phases.append if phases is not None else None),
    )
    jobs = tmp_path / "work" / "jobs"
    assert not jobs.exists() or list(jobs.iterdir()) == [], "the scratch must be removed"
    return payload


def test_succeeded_with_specs_per_the_contract(tmp_path: Path) -> None:
    backend = FakeBackend(
        _results(ok("ingest ok\n"), ok("score ok\n")),
        write_outputs=_writer(
            ingest={"curve.json": json.dumps({"step": [0, 1], "loss": [2.0, 1.0]})},
            score={"metrics.json": json.dumps(METRICS)},
        ),
    )
    phases: list[str] = []
    server = FakeServer()
    payload = run(tmp_path, backend, server, phases=phases)
    assert payload.outcome == "succeeded", payload.reason
    assert payload.reason is None
    assert payload.metrics == {"score": 1.5, "loss": 0.03}
    assert payload.curve == {"step": [0.0, 1.0], "loss": [2.0, 1.0]}
    assert payload.self_reported is False
    assert phases == ["prepare", "ingest", "score", "report"]
    assert [p.phase for p in payload.phases] == ["ingest", "score"]
    assert payload.phases[0].exit_code == 0
    assert payload.phases[0].log_tail == "ingest ok\n"

    ingest, score = backend.calls
    assert ingest.name == "reprise-7-1-ingest"
    assert score.name == "reprise-7-1-score"
    assert ingest.labels == {"reprise.worker": "w-1", "reprise.job": "7", "reprise.attempt": "1",
                             "reprise.phase": "ingest"}
    assert ingest.command == ["python3", "/reprise/harness/harness.py", "ingest"]
    assert score.command == ["python3", "/reprise/harness/harness.py", "score"]
    assert ingest.workdir == "/reprise/package"
    assert score.workdir == "/reprise/harness"
    assert all(m.read_only for m in ingest.mounts + score.mounts)
    assert not ingest.output.read_only
    assert ingest.output.target == "/reprise/output"
    assert ingest.output.source != score.output.source
    assert {m.target for m in ingest.mounts} == {
        "/reprise/harness", "/reprise/package", "/reprise/train", "/reprise/run.json"}
    assert {m.target for m in score.mounts} == {
        "/reprise/harness", "/reprise/artifacts", "/reprise/train", "/reprise/test",
        "/reprise/run.json"}
    artifacts = next(m for m in score.mounts if m.target == "/reprise/artifacts")
    assert artifacts.source == ingest.output.source
    assert ingest.env == {
        "REPRISE_PHASE": "ingest", "REPRISE_SEED": "3", "REPRISE_RUN_CONFIG": "/reprise/run.json",
        "REPRISE_HARNESS_DIR": "/reprise/harness", "REPRISE_TRAIN_DIR": "/reprise/train",
        "REPRISE_PACKAGE_DIR": "/reprise/package", "REPRISE_OUTPUT": "/reprise/output",
        "HOME": "/tmp", "TMPDIR": "/tmp", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1",
    }
    assert "REPRISE_TEST_DIR" not in ingest.env  # hidden data never where package code runs
    assert score.env["REPRISE_TEST_DIR"] == "/reprise/test"
    assert score.env["REPRISE_ARTIFACTS_DIR"] == "/reprise/artifacts"
    assert "REPRISE_PACKAGE_DIR" not in score.env
    assert ingest.limits.memory_mb == 512
    assert ingest.limits.timeout_s == 30.0
    assert backend.prepared[0].base == "python-numpy"

    prov = payload.provenance
    assert prov["backend"] == "fake"
    assert prov["worker_id"] == "w-1"
    assert prov["benchmark"] == "toy@1"
    assert prov["seed"] == 3
    assert prov["image"].startswith("fake/python-numpy")
    assert prov["image_digest"]
    assert prov["harness_version"] == server.content_hash
    assert prov["package_sha256"] == server.package_sha256
    assert prov["worker_labels"] == {"cpu": "x86_64"}
    for key in ("cpu_model", "gpu_model", "gpu_driver", "engine_version"):
        assert key in prov
    body = payload.to_json()
    assert set(body) == {"outcome", "reason", "metrics", "curve", "self_reported", "phases",
                         "provenance"}
    assert set(body["phases"][0]) == {"phase", "exit_code", "timed_out", "oom_killed", "wall_s",
                                      "cpu_s", "peak_memory_mb", "log_tail", "log_dropped_bytes"}


def test_inputs_are_really_there(tmp_path: Path) -> None:
    """What the phases would see: the package root, run.json, the bundles."""
    seen: dict[str, Any] = {}

    def handler(spec: RunSpec) -> RunResult:
        mounts = {m.target: m.source for m in spec.mounts}
        if spec.labels["reprise.phase"] == "ingest":
            seen["manifest"] = (mounts["/reprise/package"] / "reprise.toml").is_file()
            seen["run"] = json.loads(mounts["/reprise/run.json"].read_text())
            seen["train"] = sorted(p.name for p in mounts["/reprise/train"].iterdir())
            seen["mode"] = oct(mounts["/reprise/package"].stat().st_mode & 0o777)
        else:
            seen["test"] = sorted(p.name for p in mounts["/reprise/test"].iterdir())
        return ok()

    # A package inside a top-level folder: the root is the folder with reprise.toml.
    server = FakeServer(package=targz(toy_files(), prefix="toy-sgd/"))
    backend = FakeBackend(handler, write_outputs=_writer(score={"metrics.json":
                                                                json.dumps(METRICS)}))
    payload = run(tmp_path, backend, server)
    assert payload.outcome == "succeeded", payload.reason
    assert seen["manifest"]
    assert seen["run"] == server.lease().run_config
    assert seen["train"] == ["train.npz"]
    assert seen["test"] == ["test.npz"]


def test_local_paths_and_scratch_tmp(tmp_path: Path) -> None:
    class LocalLike(FakeBackend):
        def visible_path(self, mount: Any) -> str:
            return str(mount.source)

    backend = LocalLike(_results(ok(), ok()),
                        write_outputs=_writer(score={"metrics.json": json.dumps(METRICS)}))
    payload = run(tmp_path, backend)
    assert payload.outcome == "succeeded"
    ingest = backend.calls[0]
    assert ingest.env["REPRISE_OUTPUT"] == str(ingest.output.source)
    assert ingest.env["HOME"].startswith(str(tmp_path / "work" / "jobs"))
    assert ingest.workdir.endswith("package")


def test_user_error_takes_the_reason_from_error_json(tmp_path: Path) -> None:
    error = {"kind": "entry_import", "message": "cannot import sgd:SGD: No module named 'sgd'"}
    backend = FakeBackend(_results(RunResult(exit_code=2, log_tail="Traceback...\nboom\n")),
                          write_outputs=_writer(ingest={"error.json": json.dumps(error)}))
    payload = run(tmp_path, backend)
    assert payload.outcome == "user_error"
    assert payload.reason == error["message"]
    assert len(backend.calls) == 1  # no score phase
    assert payload.metrics == {}
    assert payload.to_json()["metrics"] == {}


@pytest.mark.parametrize("error_json", [None, "not json", '{"kind": "x"}', '{"message": 3}',
                                        '{"message": NaN}'])
def test_user_error_falls_back_to_the_last_log_line(tmp_path: Path, error_json: str | None) -> None:
    files = {"error.json": error_json} if error_json is not None else {}
    backend = FakeBackend(_results(RunResult(exit_code=1, log_tail="x\nValueError: bad lr\n\n")),
                          write_outputs=_writer(ingest=files))
    payload = run(tmp_path, backend)
    assert payload.outcome == "user_error"
    assert payload.reason == "ValueError: bad lr"


def test_user_error_without_any_log(tmp_path: Path) -> None:
    payload = run(tmp_path, FakeBackend(_results(RunResult(exit_code=3))))
    assert payload.outcome == "user_error"
    assert payload.reason == "the ingest phase exited with status 3"


def test_error_json_symlink_is_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"message": "host secret"}))

    def write(spec: RunSpec, out: Path) -> None:
        os.symlink(secret, out / "error.json")

    backend = FakeBackend(_results(RunResult(exit_code=2, log_tail="last\n")), write_outputs=write)
    payload = run(tmp_path, backend)
    assert payload.outcome == "user_error"
    assert payload.reason == "last"


def test_score_exit_2_is_invalid_output(tmp_path: Path) -> None:
    error = {"kind": "invalid_artifacts", "message": "params have the wrong shape"}
    backend = FakeBackend(_results(ok(), RunResult(exit_code=2)),
                          write_outputs=_writer(score={"error.json": json.dumps(error)}))
    payload = run(tmp_path, backend)
    assert payload.outcome == "invalid_output"
    assert payload.reason == "params have the wrong shape"
    assert [p.exit_code for p in payload.phases] == [0, 2]


def test_symlinked_metrics_json_is_refused(tmp_path: Path) -> None:
    planted = tmp_path / "planted.json"
    planted.write_text(json.dumps(METRICS))

    def write(spec: RunSpec, out: Path) -> None:
        if spec.labels["reprise.phase"] == "score":
            os.symlink(planted, out / "metrics.json")

    payload = run(tmp_path, FakeBackend(_results(ok(), ok()), write_outputs=write))
    assert payload.outcome == "invalid_output"
    assert "metrics.json" in (payload.reason or "")
    assert payload.metrics == {}


@pytest.mark.parametrize("text", [
    '{"metrics": {"score": NaN}}',
    '{"metrics": {"score": 1e999}}',
    '{"metrics": {"score": "high"}}',
    '{"metrics": {"sc ore": 1}}',
    '{"metrics": {"score": 1, "score": 2}}',
    '{"score": 1}',
    "[1, 2]",
    "not json",
    "",
    '{"metrics": {"score": true}}',
    '{"metrics": ' + "[" * 50 + "]" * 50 + "}",
])
def test_bad_metrics_are_invalid_output(tmp_path: Path, text: str) -> None:
    backend = FakeBackend(_results(ok(), ok()), write_outputs=_writer(score={"metrics.json": text}))
    payload = run(tmp_path, backend)
    assert payload.outcome == "invalid_output", text
    assert payload.reason
    assert payload.reason.startswith("metrics.json")


def test_missing_and_oversized_metrics(tmp_path: Path) -> None:
    payload = run(tmp_path, FakeBackend(_results(ok(), ok())))
    assert payload.outcome == "invalid_output"
    big = json.dumps({"metrics": {"score": 1}, "pad": "x" * (1024 * 1024)})
    backend = FakeBackend(_results(ok(), ok()), write_outputs=_writer(score={"metrics.json": big}))
    payload = run(tmp_path, backend)
    assert payload.outcome == "invalid_output"


def test_output_overflow_is_invalid_output(tmp_path: Path) -> None:
    overflow = RunResult(exit_code=0, output_overflow=True)
    payload = run(tmp_path, FakeBackend(_results(overflow)))
    assert payload.outcome == "invalid_output"
    assert "16 MB" in (payload.reason or "")


def test_score_harness_failure_is_infrastructure_error(tmp_path: Path) -> None:
    backend = FakeBackend(_results(ok(), RunResult(exit_code=1, log_tail="KeyError: 'x'\n")))
    payload = run(tmp_path, backend)
    assert payload.outcome == "infrastructure_error"
    assert payload.reason == "the scoring harness failed with exit status 1: KeyError: 'x'"


@pytest.mark.parametrize(("result", "outcome"), [
    (RunResult(exit_code=137, timed_out=True, oom_killed=True), "timeout"),
    (RunResult(exit_code=137, oom_killed=True), "oom"),
    (RunResult(exit_code=None, cancelled=True, timed_out=True), "cancelled"),
    (RunResult(exit_code=None), "infrastructure_error"),
])
def test_classification_order_in_ingest(tmp_path: Path, result: RunResult, outcome: str) -> None:
    payload = run(tmp_path, FakeBackend(_results(result)))
    assert payload.outcome == outcome
    assert payload.reason


@pytest.mark.parametrize(("result", "outcome"), [
    (RunResult(exit_code=137, timed_out=True), "timeout"),
    (RunResult(exit_code=137, oom_killed=True), "oom"),
    (RunResult(exit_code=2, timed_out=True), "timeout"),
])
def test_classification_order_in_score(tmp_path: Path, result: RunResult, outcome: str) -> None:
    payload = run(tmp_path, FakeBackend(_results(ok(), result)))
    assert payload.outcome == outcome


def test_timeout_reason_names_the_limit(tmp_path: Path) -> None:
    payload = run(tmp_path, FakeBackend(_results(RunResult(exit_code=137, timed_out=True))))
    assert payload.reason == "the ingest phase ran past its 30 s limit"


def test_cancel_during_a_phase(tmp_path: Path) -> None:
    cancel = threading.Event()
    backend = FakeBackend(hang=True)

    def on_phase(name: str) -> None:
        if name == "ingest":
            cancel.set()  # the server's cancel arrives while the package runs

    server = FakeServer()
    payload = execute(server.lease(), backend=backend, client=server.client(),
                      workdir=tmp_path / "work", worker_id="w-1", labels={},
                      cancel_event=cancel, on_phase=on_phase)
    assert payload.outcome == "cancelled"
    assert backend.cancelled == ["reprise-7-1-ingest"]
    assert list((tmp_path / "work" / "jobs").iterdir()) == []


def test_cancel_before_anything_runs(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    backend = FakeBackend()
    payload = run(tmp_path, backend, cancel=cancel)
    assert payload.outcome == "cancelled"
    assert backend.calls == []
    assert backend.prepared == []


def test_hash_mismatch_is_infrastructure_error(tmp_path: Path) -> None:
    server = FakeServer()
    server.package = server.package + b"tampered"
    backend = FakeBackend()
    payload = run(tmp_path, backend, server)
    assert payload.outcome == "infrastructure_error"
    assert "does not match" in (payload.reason or "") or "larger" in (payload.reason or "")
    assert backend.calls == []


def test_disk_full_while_extracting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(path: Path, dest: Path, limits: Any) -> Any:
        dest.mkdir()
        (dest / "partial").write_text("x")
        raise ArchiveError("disk_full", "entry 'x' could not be written: the disk is full")

    monkeypatch.setattr(executor, "extract_archive", full)
    backend = FakeBackend()
    payload = run(tmp_path, backend)
    assert payload.outcome == "infrastructure_error"
    assert payload.reason
    assert "disk is full" in payload.reason
    assert backend.calls == []


def test_disk_full_while_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(self: Path, *args: Any, **kwargs: Any) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    payload = run(tmp_path, FakeBackend())
    assert payload.outcome == "infrastructure_error"
    assert payload.reason == "the worker's disk is full"


def test_refused_archive_is_infrastructure_error(tmp_path: Path) -> None:
    server = FakeServer(package=targz({"README.md": "no manifest"}))
    payload = run(tmp_path, FakeBackend(), server)
    assert payload.outcome == "infrastructure_error"
    assert "no_manifest" in (payload.reason or "")


def test_backend_failure_is_infrastructure_error(tmp_path: Path) -> None:
    backend = FakeBackend()
    backend.is_healthy = False
    payload = run(tmp_path, backend)
    assert payload.outcome == "infrastructure_error"
    assert "unhealthy" in (payload.reason or "")


def test_a_bug_in_the_handler_is_infrastructure_error(tmp_path: Path) -> None:
    def broken(spec: RunSpec) -> RunResult:
        raise RuntimeError("kaboom")

    payload = run(tmp_path, FakeBackend(broken))
    assert payload.outcome == "infrastructure_error"
    assert payload.reason == "worker error: RuntimeError: kaboom"


def test_lease_lost_during_download(tmp_path: Path) -> None:
    server = FakeServer()
    server.fail_next["package"] = [409]
    payload = run(tmp_path, FakeBackend(), server)
    assert payload.lease_lost
    assert payload.outcome == "infrastructure_error"


def test_download_failure_is_infrastructure_error(tmp_path: Path) -> None:
    server = FakeServer()
    server.fail_next["benchmark"] = [400]
    payload = run(tmp_path, FakeBackend(), server)
    assert payload.outcome == "infrastructure_error"
    assert not payload.lease_lost
    assert "HTTP 400" in (payload.reason or "")


def test_command_kind_accepts_only_claimed_metrics(tmp_path: Path) -> None:
    server = FakeServer(kind="command", claim_metrics={"accuracy": {"direction": "higher"}})
    good = json.dumps({"metrics": {"accuracy": 0.9}, "self_reported": True})
    backend = FakeBackend(_results(ok(), ok()), write_outputs=_writer(score={"metrics.json": good}))
    payload = run(tmp_path, backend, server)
    assert payload.outcome == "succeeded"
    assert payload.metrics == {"accuracy": 0.9}
    assert payload.self_reported is True

    extra = json.dumps({"metrics": {"accuracy": 0.9, "loss": 0.1}})
    backend = FakeBackend(_results(ok(), ok()),
                          write_outputs=_writer(score={"metrics.json": extra}))
    payload = run(tmp_path, backend, FakeServer(kind="command",
                                                claim_metrics={"accuracy": {}}))
    assert payload.outcome == "invalid_output"
    assert "loss" in (payload.reason or "")


def test_curve_from_metrics_json_wins_and_is_validated(tmp_path: Path) -> None:
    doc = {**METRICS, "curve": {"step": list(range(5000)), "loss": [1.0] * 5000}}
    backend = FakeBackend(_results(ok(), ok()), write_outputs=_writer(
        ingest={"curve.json": json.dumps({"step": [0], "loss": [9.0]})},
        score={"metrics.json": json.dumps(doc)}))
    payload = run(tmp_path, backend)
    assert payload.curve is not None
    assert len(payload.curve["step"]) == 1000
    assert payload.curve["step"][0] == 0.0
    assert payload.curve["step"][-1] == 4999.0


@pytest.mark.parametrize("curve", ['{"step": [0, 1], "loss": [1.0]}',
                                   '{"step": [0], "loss": [1e999]}',
                                   "garbage", '{"step": [true], "loss": [1]}'])
def test_bad_ingest_curve_is_dropped_not_fatal(tmp_path: Path, curve: str) -> None:
    backend = FakeBackend(_results(ok(), ok()), write_outputs=_writer(
        ingest={"curve.json": curve}, score={"metrics.json": json.dumps(METRICS)}))
    payload = run(tmp_path, backend)
    assert payload.outcome == "succeeded"
    assert payload.curve is None


def test_log_tail_is_capped_at_64_kib(tmp_path: Path) -> None:
    log = "a" * 70_000 + "\nTHE END"
    backend = FakeBackend(_results(RunResult(exit_code=1, log_tail=log, log_dropped_bytes=5)))
    payload = run(tmp_path, backend)
    phase = payload.phases[0]
    assert len(phase.log_tail) == 65536
    assert phase.log_tail.endswith("THE END")
    assert phase.log_dropped_bytes == 5 + len(log) - 65536
    assert payload.reason == "THE END"


def test_reason_is_one_clean_line(tmp_path: Path) -> None:
    error = {"message": "line one\nline\ttwo \x1b[31mred\x1b[0m " + "y" * 3000}
    backend = FakeBackend(_results(RunResult(exit_code=2)),
                          write_outputs=_writer(ingest={"error.json": json.dumps(error)}))
    payload = run(tmp_path, backend)
    assert payload.reason is not None
    assert "\n" not in payload.reason
    assert "\x1b" not in payload.reason
    assert payload.reason.startswith("line one line two")
    assert len(payload.reason) == 500


def test_bundles_are_reused_across_jobs(tmp_path: Path) -> None:
    server = FakeServer()
    client = server.client()
    for attempt in (1, 2):
        server.attempt = attempt
        backend = FakeBackend(_results(ok(), ok()),
                              write_outputs=_writer(score={"metrics.json": json.dumps(METRICS)}))
        payload = execute(server.lease(), backend=backend, client=client,
                          workdir=tmp_path / "work", worker_id="w", labels={},
                          cancel_event=threading.Event())
        assert payload.outcome == "succeeded"
    assert server.count("benchmark") == 2  # ingest + score, once each
    assert server.count("package") == 2


@pytest.mark.docker
def test_the_toy_job_in_docker(docker_backend: Backend, tmp_path: Path) -> None:
    """The real harness in hardened containers: mounts, permissions, env and outputs line up."""
    server = FakeServer()
    payload = execute(server.lease(), backend=docker_backend, client=server.client(),
                      workdir=tmp_path / "work", worker_id="pytest-executor", labels={},
                      cancel_event=threading.Event())
    assert payload.outcome == "succeeded", (payload.reason, payload.phases)
    assert set(payload.metrics) == {"score", "loss"}
    assert payload.curve is not None
    assert len(payload.curve["step"]) == 60
    assert payload.provenance["backend"] == "docker"
    assert payload.provenance["image_digest"].startswith("sha256:")
    assert payload.provenance["engine_version"]
    assert list((tmp_path / "work" / "jobs").iterdir()) == []
