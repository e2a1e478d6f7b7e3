"""One leased job from download to result payload: the two harness phases of
docs/harness-contract.md, classified as docs/worker-protocol.md ("Outcome kinds") says.

``execute`` never raises for a job-level problem: a failed download, a refused archive, a full
disk, a backend error or a bug here all become an ``infrastructure_error`` payload (which the
server retries on another attempt), and the job's scratch folder is always removed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import shutil
import stat
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runners.archives import ArchiveError, ArchiveLimits, extract_archive
from runners.backends.base import (
    Backend,
    BackendError,
    EnvironmentSpec,
    Limits,
    LiveTail,
    Mount,
    PreparedEnvironment,
    RunResult,
    RunSpec,
)
from runners.client import (
    ClientError,
    Lease,
    LeaseLost,
    PackageIntegrityError,
    ServerClient,
    worker_version,
)
from runners.outputs import (
    OutputError,
    clamp_tail,
    error_reason,
    last_line,
    one_line,
    read_curve,
    read_metrics,
)

log = logging.getLogger(__name__)

DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})

# Where a container sees each input (the local backend uses the host paths instead).
TARGETS = {
    "harness": "/reprise/harness",
    "package": "/reprise/package",
    "train": "/reprise/train",
    "test": "/reprise/test",
    "artifacts": "/reprise/artifacts",
    "run_config": "/reprise/run.json",
    "output": "/reprise/output",
}
CONTAINER_TMP = "/tmp"  # noqa: S108 - inside the sandbox: a private, size-capped tmpfs
PROVENANCE_FACTS = ("cpu_model", "gpu_model", "gpu_driver", "engine_version")
PhaseCallback = Callable[[str], None]


@dataclass
class PhaseReport:
    """Facts about one phase, as the result's ``phases`` list carries them."""

    phase: str
    exit_code: int | None
    timed_out: bool = False
    oom_killed: bool = False
    wall_s: float | None = None
    cpu_s: float | None = None
    peak_memory_mb: float | None = None
    log_tail: str = ""
    log_dropped_bytes: int = 0

    @classmethod
    def from_run(cls, phase: str, result: RunResult) -> PhaseReport:
        tail, dropped = clamp_tail(result.log_tail, result.log_dropped_bytes)
        return cls(
            phase=phase,
            exit_code=result.exit_code,
            timed_out=result.timed_out,
            oom_killed=result.oom_killed,
            wall_s=_non_negative(result.wall_s),
            cpu_s=_non_negative(result.cpu_s),
            peak_memory_mb=_non_negative(result.peak_memory_mb),
            log_tail=tail,
            log_dropped_bytes=max(0, dropped),
        )

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ResultPayload:
    """The body of ``POST /v1/worker/jobs/{id}/result`` minus the lease reference."""

    outcome: str
    reason: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    curve: dict[str, list[float]] | None = None
    self_reported: bool = False
    phases: list[PhaseReport] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    lease_lost: bool = False  # a download got 409: post nothing (not sent)

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "reason": self.reason,
            "metrics": dict(self.metrics) if self.outcome == "succeeded" else {},
            "curve": self.curve,
            "self_reported": self.self_reported,
            "phases": [p.to_json() for p in self.phases],
            "provenance": self.provenance,
        }


class _Outcome(Exception):
    """Ends the pipeline with a classified outcome (internal)."""

    def __init__(self, outcome: str, reason: str | None) -> None:
        super().__init__(reason or outcome)
        self.outcome = outcome
        self.reason = reason


def execute(
    lease: Lease,
    *,
    backend: Backend,
    client: ServerClient,
    workdir: Path,
    worker_id: str,
    labels: Mapping[str, str],
    cancel_event: threading.Event,
    on_phase: PhaseCallback | None = None,
    live_tail: LiveTail | None = None,
) -> ResultPayload:
    """Run ``lease``'s job to a result payload; never raises for a job-level problem.

    ``live_tail`` receives the phases' output as it is printed (for heartbeats)."""
    return _Job(lease, backend, client, workdir, worker_id, dict(labels), cancel_event,
                on_phase, live_tail).run()


class _Job:
    def __init__(
        self, lease: Lease, backend: Backend, client: ServerClient, workdir: Path,
        worker_id: str, labels: dict[str, str], cancel: threading.Event,
        on_phase: PhaseCallback | None,
        live_tail: LiveTail | None = None,
    ) -> None:
        self.lease = lease
        self.live_tail = live_tail
        self.backend = backend
        self.client = client
        self.workdir = workdir
        self.worker_id = worker_id
        self.labels = labels
        self.cancel = cancel
        self.on_phase = on_phase
        self.limits: Limits = lease.benchmark.limits
        self.scratch = workdir / "jobs" / f"{lease.job_id}-{lease.attempt}-{uuid.uuid4().hex[:8]}"
        self.phases: list[PhaseReport] = []
        self.environment: PreparedEnvironment | None = None
        self.lease_lost = False
        self.container = _uses_container_paths(backend)

    # ------------------------------------------------------------------ driver

    def run(self) -> ResultPayload:
        try:
            payload = self._classified()
        finally:
            remove_tree(self.scratch)
        payload.phases = self.phases
        payload.provenance = self.provenance()
        payload.lease_lost = self.lease_lost
        log.info("job %s attempt %s: %s%s", self.lease.job_id, self.lease.attempt,
                 payload.outcome, f" ({payload.reason})" if payload.reason else "")
        return payload

    def _classified(self) -> ResultPayload:
        try:
            return self._pipeline()
        except _Outcome as done:
            return ResultPayload(outcome=done.outcome, reason=done.reason)
        except Exception as exc:  # anything the package did not cause
            if isinstance(exc, LeaseLost):
                self.lease_lost = True
            if self.cancel.is_set():
                return ResultPayload(outcome="cancelled", reason="the job was cancelled")
            return ResultPayload(outcome="infrastructure_error", reason=self._infra_reason(exc))

    def _infra_reason(self, exc: Exception) -> str:
        tag = f"job {self.lease.job_id} attempt {self.lease.attempt}"
        if isinstance(exc, LeaseLost):
            self.lease_lost = True
            return "the lease was lost while the job was being prepared"
        if isinstance(exc, ArchiveError):
            if exc.code == "disk_full":
                log.error("%s: the worker's disk is full: %s", tag, exc.message)
                return f"the worker's disk is full ({exc.message})"
            return f"the worker refused the package archive ({exc.code}: {exc.message})"
        if isinstance(exc, OSError) and exc.errno in DISK_FULL:
            log.error("%s: the worker's disk is full: %s", tag, exc)
            return "the worker's disk is full"
        if isinstance(exc, PackageIntegrityError | ClientError | BackendError):
            log.warning("%s: %s", tag, exc)
            return one_line(str(exc))
        log.exception("%s: unexpected worker error", tag)
        return one_line(f"worker error: {type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------ the pipeline

    def _pipeline(self) -> ResultPayload:
        lease = self.lease
        self._phase("prepare")
        self._check_cancel()
        self.scratch.mkdir(mode=0o755, parents=True)
        archive = self.client.download_package(lease, self.scratch / "package.download",
                                               abort=self.cancel)
        self._check_cancel()
        limits = ArchiveLimits()
        limits = ArchiveLimits(max_archive_bytes=max(limits.max_archive_bytes, lease.package.size))
        extracted = extract_archive(archive, self.scratch / "package", limits)
        archive.unlink()
        package = extracted.root
        try:
            regular = stat.S_ISREG(os.lstat(package / "reprise.toml").st_mode)
        except FileNotFoundError:
            regular = False
        if not regular:
            raise _Outcome("infrastructure_error", "the unpacked package has no reprise.toml")
        os.chmod(self.scratch / "package", 0o755)  # noqa: S103 - the sandbox user reads it

        bundles = self.workdir / "bundles"
        ingest_bundle = self.client.download_benchmark(lease, "ingest", bundles,
                                                       abort=self.cancel)
        harness = self._bundle_dir(ingest_bundle, "harness", required=True)
        train = self._bundle_dir(ingest_bundle, "train")
        run_json = self.scratch / "run.json"
        run_json.write_text(json.dumps(lease.run_config, indent=2, sort_keys=True) + "\n")
        run_json.chmod(0o644)
        self._check_cancel()
        self.environment = self.backend.prepare_environment(EnvironmentSpec(
            base=lease.environment.base,
            requirements=lease.environment.requirements,
            input_hash=lease.environment.input_hash,
        ))
        self._check_cancel()

        ingest_out = self._fresh_dir("ingest-output")
        ingest = self._spec(
            "ingest",
            inputs={"harness": harness, "package": package, "train": train,
                    "run_config": run_json},
            output=ingest_out,
            workdir="package",
        )
        self._phase("ingest")
        result = self.backend.run(ingest, self.cancel)
        self.phases.append(PhaseReport.from_run("ingest", result))
        self._classify_ingest(result, ingest_out)

        self._phase("score")
        self._check_cancel()
        score_bundle = self.client.download_benchmark(lease, "score", bundles, abort=self.cancel)
        score_out = self._fresh_dir("score-output")
        score = self._spec(
            "score",
            inputs={"harness": self._bundle_dir(score_bundle, "harness", required=True),
                    "artifacts": ingest_out,
                    "train": self._bundle_dir(score_bundle, "train"),
                    "test": self._bundle_dir(score_bundle, "test"),
                    "run_config": run_json},
            output=score_out,
            workdir="harness",
        )
        self._check_cancel()
        result = self.backend.run(score, self.cancel)
        self.phases.append(PhaseReport.from_run("score", result))
        payload = self._classify_score(result, score_out, ingest_out)
        self._phase("report")
        return payload

    def _phase(self, name: str) -> None:
        if self.on_phase is not None:
            try:
                self.on_phase(name)
            except Exception:  # a reporting hook never fails the job
                log.exception("on_phase(%s) failed", name)

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise _Outcome("cancelled", "the job was cancelled")

    def _fresh_dir(self, name: str) -> Path:
        path = self.scratch / name
        path.mkdir(mode=0o755)
        path.chmod(0o755)  # whatever the umask: the sandbox user lists it
        return path

    def _bundle_dir(self, bundle: Path, name: str, *, required: bool = False) -> Path:
        path = bundle / name
        if path.is_dir() and not path.is_symlink():
            if required and not (path / "harness.py").is_file():
                raise _Outcome("infrastructure_error",
                               f"the benchmark bundle's {name}/ has no harness.py")
            return path
        if required:
            raise _Outcome("infrastructure_error", f"the benchmark bundle has no {name}/ folder")
        empty = self.scratch / f"empty-{name}"
        if not empty.exists():
            empty.mkdir(mode=0o755)
        return empty

    def _spec(self, phase: str, *, inputs: dict[str, Path], output: Path,
              workdir: str) -> RunSpec:
        assert self.environment is not None
        mounts = {key: Mount(source=path, target=TARGETS[key], read_only=True)
                  for key, path in inputs.items()}
        out_mount = Mount(source=output, target=TARGETS["output"], read_only=False)
        visible = {key: self.backend.visible_path(m) for key, m in mounts.items()}
        if self.container:
            tmp = CONTAINER_TMP
        else:
            scratch_tmp = self.scratch / f"tmp-{phase}"
            scratch_tmp.mkdir(mode=0o700, exist_ok=True)
            tmp = str(scratch_tmp)
        threads = str(max(1, math.ceil(self.limits.cpus)))
        env = {
            "REPRISE_PHASE": phase,
            "REPRISE_SEED": str(self.lease.seed),
            "REPRISE_RUN_CONFIG": visible["run_config"],
            "REPRISE_HARNESS_DIR": visible["harness"],
            "REPRISE_TRAIN_DIR": visible["train"],
            "REPRISE_OUTPUT": self.backend.visible_path(out_mount),
            "HOME": tmp,
            "TMPDIR": tmp,
            "OMP_NUM_THREADS": threads,
            "OPENBLAS_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads,
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        if phase == "ingest":
            env["REPRISE_PACKAGE_DIR"] = visible["package"]
        else:
            env["REPRISE_TEST_DIR"] = visible["test"]
            env["REPRISE_ARTIFACTS_DIR"] = visible["artifacts"]
        lease = self.lease
        return RunSpec(
            name=f"reprise-{lease.job_id}-{lease.attempt}-{phase}",
            environment=self.environment,
            command=[self.environment.python, f"{visible['harness']}/harness.py", phase],
            env=env,
            mounts=list(mounts.values()),
            output=out_mount,
            limits=self.limits,
            workdir=visible[workdir],
            labels={
                "reprise.worker": self.worker_id,
                "reprise.job": str(lease.job_id),
                "reprise.attempt": str(lease.attempt),
                "reprise.phase": phase,
            },
            live_tail=self.live_tail,
        )

    # ------------------------------------------------------------------ classification

    def _stopped(self, result: RunResult, phase: str) -> None:
        """cancelled → timeout → oom, the first three kinds, for either phase."""
        if result.cancelled or self.cancel.is_set():
            raise _Outcome("cancelled", "the job was cancelled")
        if result.timed_out:
            raise _Outcome("timeout",
                           f"the {phase} phase ran past its {self.limits.timeout_s:g} s limit")
        if result.oom_killed:
            raise _Outcome("oom", f"the {phase} phase ran out of its {self.limits.memory_mb} MB "
                                  "of memory")
        if result.exit_code is None:
            raise _Outcome("infrastructure_error",
                           f"the backend reported no exit status for the {phase} phase")

    def _classify_ingest(self, result: RunResult, output: Path) -> None:
        self._stopped(result, "ingest")
        if result.exit_code != 0:
            raise _Outcome("user_error", error_reason(output) or last_line(result.log_tail)
                           or f"the ingest phase exited with status {result.exit_code}")
        if result.output_error:
            # Refused as a whole (a link, a setuid bit, too many entries...): say why, rather
            # than let the score phase report the artifacts as merely missing.
            raise _Outcome("invalid_output", one_line(
                f"the ingest phase's outputs were refused: {result.output_error}"))
        if result.output_overflow:
            raise _Outcome("invalid_output", "the ingest phase wrote more than its "
                                             f"{self.limits.output_mb} MB of output")

    def _classify_score(self, result: RunResult, output: Path, artifacts: Path) -> ResultPayload:
        self._stopped(result, "score")
        if result.exit_code == 2:
            raise _Outcome("invalid_output", error_reason(output) or last_line(result.log_tail)
                           or "the scoring harness refused the artifacts")
        if result.output_overflow:
            raise _Outcome("invalid_output", "the score phase wrote more than its "
                                             f"{self.limits.output_mb} MB of output")
        if result.exit_code != 0:
            line = last_line(result.log_tail)
            raise _Outcome("infrastructure_error",
                           f"the scoring harness failed with exit status {result.exit_code}"
                           + (f": {line}" if line else ""))
        command = self.lease.benchmark.kind == "command"
        claimed = self.lease.run_config.get("claim_metrics")
        allowed = set(claimed) if command and isinstance(claimed, dict) else None
        if command and allowed is None:
            allowed = set()
        try:
            metrics, curve, self_reported = read_metrics(output, allowed=allowed)
        except OutputError as exc:
            raise _Outcome("invalid_output", one_line(f"metrics.json: {exc.message}")) from None
        if curve is None:
            curve = read_curve(artifacts)
        return ResultPayload(outcome="succeeded", metrics=metrics, curve=curve,
                             self_reported=self_reported or command)

    # ------------------------------------------------------------------ provenance

    def provenance(self) -> dict[str, Any]:
        lease, env = self.lease, self.environment
        try:
            facts = {str(k): str(v) for k, v in self.backend.describe().items()}
        except Exception:  # best effort: a fact that cannot be read is left out
            log.warning("backend.describe() failed", exc_info=True)
            facts = {}
        provenance: dict[str, Any] = {
            "backend": self.backend.name,
            "image": env.reference if env else None,
            "image_digest": env.digest if env else None,
            "harness_version": lease.benchmark.content_hash,
            "benchmark": lease.benchmark.label,
            "package_sha256": lease.package.sha256,
            "seed": lease.seed,
            "worker_id": self.worker_id,
            "worker_labels": dict(self.labels),
            "worker_version": worker_version(),
        }
        for key in PROVENANCE_FACTS:
            provenance[key] = facts.get(key) or None
        host = {k: v[:200] for k, v in sorted(facts.items())
                if k not in PROVENANCE_FACTS and k != "backend"}
        provenance["host"] = dict(list(host.items())[:32])
        return provenance


def _non_negative(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return max(0.0, float(value))


def _uses_container_paths(backend: Backend) -> bool:
    """True when the backend shows mounts at their targets (a container), not their sources."""
    probe = Mount(source=Path("/nonexistent/reprise-probe"), target="/reprise/probe")
    return backend.visible_path(probe) == probe.target


def remove_tree(path: Path) -> None:
    """Remove ``path`` entirely, even folders a package made unreadable; never raises."""

    def unlock(func: object, p: str, exc: object) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), 0o700)
            if os.path.isdir(p) and not os.path.islink(p):
                os.chmod(p, 0o700)
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)

    if not os.path.lexists(path):
        return
    try:
        shutil.rmtree(path, onerror=unlock)
    except OSError:
        log.warning("could not remove %s", path, exc_info=True)
