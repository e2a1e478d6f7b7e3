"""The worker process: N slots, each leasing a job, executing it and posting its result.

Threads::

    main        run(): lock the workdir, reconcile, start the rest, wait for stop(), shut down
    slot-N      lease (long-poll) → execute → post result, while not stopping
    hb-<job>    one per running job: heartbeat every lease_ttl/3, forward cancel, notice 409
    health      rewrite the health file every few seconds

Shutdown (SIGTERM/SIGINT → ``stop()``): stop leasing; running jobs get ``grace_s`` to finish and
post their results; after that they are cancelled and their leases released (the server re-queues
them without spending an attempt). A second signal skips the grace.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from runners.backends.base import Backend, BackendError, LiveTail
from runners.client import (
    Backoff,
    ClientError,
    Lease,
    ProtocolError,
    ResultRejected,
    ServerClient,
    ServerUnavailable,
    Unauthorized,
    worker_version,
)
from runners.config import WorkerConfig
from runners.executor import ResultPayload, execute, remove_tree
from runners.logs import bind_job

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FATAL = 2
# A lease call answered with these statuses means our request or token is wrong: retrying the
# same request cannot help, so the worker stops (exit status 2) with the server's explanation.
FATAL_LEASE_STATUSES = frozenset({400, 401, 403, 422})


@dataclass
class RunningJob:
    """A job a slot is executing; the heartbeat thread and shutdown act through it."""

    lease: Lease
    cancel: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    started_at: float = field(default_factory=time.time)
    phase: str = "prepare"
    lost: bool = False  # a heartbeat got 409: post nothing
    shutdown: bool = False  # cancelled by our own shutdown: release, do not post
    live_tail: LiveTail = field(default_factory=LiveTail)  # what the phases print, live
    sent_version: int = -1  # the live tail version the last heartbeat carried

    def set_phase(self, phase: str) -> None:
        self.phase = phase


class Worker:
    """Lease → execute → post, on ``config.concurrency`` slots, until ``stop()``."""

    def __init__(
        self, config: WorkerConfig, *, backend: Backend, client: ServerClient | None = None,
    ) -> None:
        self.config = config
        self.backend = backend
        self.worker_id = config.worker_id
        self.client = client or ServerClient(
            config.base_url, config.token, wait_s=config.wait_s,
            backoff=Backoff(config.backoff_initial_s, config.backoff_max_s),
        )
        self._owns_client = client is None
        self.stopping = threading.Event()  # no more leases
        self.stopped = threading.Event()  # run() has returned
        self._hard_stop = threading.Event()  # skip the grace period
        self._abandon = threading.Event()  # grace over: stop retrying results and releases
        self._health_stop = threading.Event()
        self._lock = threading.Lock()
        self._jobs: dict[int, RunningJob] = {}
        self._stage = "starting"  # starting → running → stopping → stopped
        self._fatal: str | None = None
        self._backend_healthy = False
        self._last_lease_at: float | None = None
        self._last_job_at: float | None = None
        self.jobs_finished = 0
        self._lock_file: TextIO | None = None

    # ------------------------------------------------------------------ public

    def run(self) -> int:
        """Work until ``stop()`` (or a fatal error); returns the process exit status."""
        log.info("worker %s starting: backend %s, %d slot(s), server %s, workdir %s",
                 self.worker_id, self.backend.name, self.config.concurrency,
                 self.config.base_url, self.config.workdir)
        health = threading.Thread(target=self._health_loop, name="health", daemon=True)
        slots: list[threading.Thread] = []
        try:
            if not self._lock_workdir():
                return EXIT_FATAL
            health.start()
            # Reconcile first: it unmounts output stores a crashed run left inside the scratch
            # that cleaning removes next (a host tmpfs must be unmounted, not emptied).
            if not self._reconcile():
                return self._exit_status()
            self._clean_workdir()
            self._stage = "running"
            for index in range(self.config.concurrency):
                slot = threading.Thread(target=self._slot, args=(index,), name=f"slot-{index}",
                                        daemon=True)
                slot.start()
                slots.append(slot)
            while not self.stopping.wait(1.0):
                pass
            self._shutdown(slots)
            return self._exit_status()
        finally:
            self.stopping.set()
            self._stage = "stopped"
            self._health_stop.set()
            if health.is_alive():
                health.join(timeout=5)
            self._write_health()
            if self._owns_client:
                self.client.close()
            self._unlock_workdir()
            self.stopped.set()
            log.info("worker %s stopped (%d jobs finished)", self.worker_id, self.jobs_finished)

    def stop(self) -> None:
        """Graceful stop; a second call cancels running jobs at once (and releases them)."""
        if self.stopping.is_set():
            if not self._hard_stop.is_set():
                log.warning("second stop request: cancelling running jobs now")
            self._hard_stop.set()
            return
        log.info("stop requested: no new leases; running jobs get %.0f s", self.config.grace_s)
        self.stopping.set()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT call ``stop()`` (main thread only)."""

        def handler(signum: int, frame: FrameType | None) -> None:
            log.info("received %s", signal.Signals(signum).name)
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    @property
    def status(self) -> str:
        """failed, stopped, stopping, unhealthy, starting or ok."""
        if self._fatal:
            return "failed"
        if self._stage in ("stopped", "stopping"):
            return self._stage
        if not self._backend_healthy:
            return "unhealthy"
        return "ok" if self._stage == "running" else "starting"

    @property
    def running_jobs(self) -> list[RunningJob]:
        with self._lock:
            return list(self._jobs.values())

    def health(self) -> dict[str, Any]:
        """What the health file holds."""
        jobs = self.running_jobs
        return {
            "status": self.status,
            "worker_id": self.worker_id,
            "backend": self.backend.name,
            "backend_healthy": self._backend_healthy,
            "pid": os.getpid(),
            "version": worker_version(),
            "server": self.config.base_url,
            "concurrency": self.config.concurrency,
            "running_jobs": [
                {"job_id": j.lease.job_id, "attempt": j.lease.attempt, "phase": j.phase,
                 "started_at": _iso(j.started_at)}
                for j in jobs
            ],
            "jobs_finished": self.jobs_finished,
            "last_lease_at": _iso(self._last_lease_at),
            "last_job_at": _iso(self._last_job_at),
            "error": self._fatal,
            "updated_at": _iso(time.time()),
        }

    # ------------------------------------------------------------------ start-up

    def _lock_workdir(self) -> bool:
        workdir = self.config.workdir
        workdir.mkdir(parents=True, exist_ok=True)
        handle = (workdir / ".worker.lock").open("a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            self._fail(f"another worker process uses the workdir {workdir}; give each worker "
                       "its own --workdir")
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._lock_file = handle
        return True

    def _unlock_workdir(self) -> None:
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def _clean_workdir(self) -> None:
        """Scratch left by an earlier process with this workdir (killed mid-job): remove it."""
        jobs = self.config.workdir / "jobs"
        if jobs.is_dir():
            for leftover in jobs.iterdir():
                log.info("removing leftover scratch %s", leftover.name)
                remove_tree(leftover)
        bundles = self.config.workdir / "bundles"
        if bundles.is_dir():
            for staging in bundles.glob(".*"):
                remove_tree(staging)

    def _reconcile(self) -> bool:
        """Remove every run this worker id left behind (no lease covers anything at start)."""
        delays = Backoff(self.config.backoff_initial_s, self.config.backoff_max_s).delays()
        while not self.stopping.is_set():
            try:
                removed = self.backend.reconcile(self.worker_id, keep=set())
            except BackendError as exc:
                self._backend_healthy = False
                delay = next(delays)
                log.warning("reconcile failed (%s); retrying in %.1f s", exc, delay)
                self.stopping.wait(delay)
                continue
            if removed:
                log.info("reconciled: removed %d leftover(s): %s", len(removed),
                         ", ".join(removed[:20]))
            return True
        return False

    # ------------------------------------------------------------------ slots

    def _slot(self, index: int) -> None:
        while not self.stopping.is_set():
            try:
                self._slot_loop(index)
            except Exception:  # a bug here must not silently cost us a slot
                log.exception("slot %d failed; restarting it", index)
                self.stopping.wait(self.config.backoff_max_s)

    def _slot_loop(self, index: int) -> None:
        unhealthy_delays = None
        error_delays = None
        while not self.stopping.is_set():
            if not self._check_backend():
                unhealthy_delays = unhealthy_delays or Backoff(
                    self.config.backoff_initial_s, self.config.backoff_max_s).delays()
                self.stopping.wait(next(unhealthy_delays))
                continue
            unhealthy_delays = None
            asked = time.monotonic()
            try:
                lease = self.client.lease(self.worker_id, self.config.labels, self.config.wait_s,
                                          self.backend.name, abort=self.stopping)
            except ServerUnavailable:
                continue  # only when stopping: lease calls retry until then
            except ProtocolError as exc:
                if isinstance(exc, Unauthorized) or exc.status in FATAL_LEASE_STATUSES:
                    self._fail(f"the server refused the lease request: {exc}")
                    return
                error_delays = error_delays or Backoff(
                    self.config.backoff_initial_s, self.config.backoff_max_s).delays()
                delay = next(error_delays)
                log.error("lease failed: %s; retrying in %.1f s", exc, delay)
                self.stopping.wait(delay)
                continue
            error_delays = None
            self._last_lease_at = time.time()
            if lease is None:
                if time.monotonic() - asked < min(1.0, self.config.wait_s / 2):
                    # A server that answers 204 at once (not long-polling) must not spin us.
                    self.stopping.wait(self.config.backoff_initial_s)
                continue
            self._last_job_at = time.time()
            if self.stopping.is_set():
                log.info("job %s leased while stopping: releasing it", lease.job_id)
                self._release(lease)
                break
            self._run_job(index, lease)

    def _check_backend(self) -> bool:
        try:
            healthy = bool(self.backend.healthy())
        except Exception:
            log.exception("backend.healthy() raised")
            healthy = False
        if healthy != self._backend_healthy:
            if healthy:
                log.info("backend %s is healthy", self.backend.name)
            else:
                log.warning("backend %s is unhealthy: claiming nothing until it is back",
                            self.backend.name)
        self._backend_healthy = healthy
        return healthy

    def _run_job(self, index: int, lease: Lease) -> None:
        with bind_job(lease.job_id):
            self._run_bound_job(index, lease)

    def _run_bound_job(self, index: int, lease: Lease) -> None:
        job = RunningJob(lease)
        tag = lease.tag
        with self._lock:
            self._jobs[index] = job
        log.info("%s leased: %s, seed %s, package %s", tag, lease.benchmark.label, lease.seed,
                 lease.package.sha256[:12])
        beat = threading.Thread(target=self._heartbeat, args=(job,), name=f"hb-{lease.job_id}",
                                daemon=True)
        beat.start()
        try:
            payload = execute(
                lease, backend=self.backend, client=self.client, workdir=self.config.workdir,
                worker_id=self.worker_id, labels=self.config.labels, cancel_event=job.cancel,
                on_phase=job.set_phase, live_tail=job.live_tail,
            )
            job.done.set()
            beat.join(timeout=5)
            self._report(job, payload)
        except Exception:  # a bug here must not kill the slot
            log.exception("%s: the slot failed; the lease will expire", tag)
        finally:
            job.done.set()
            with self._lock:
                self._jobs.pop(index, None)
                self.jobs_finished += 1

    def _report(self, job: RunningJob, payload: ResultPayload) -> None:
        lease, tag = job.lease, job.lease.tag
        if job.lost or payload.lease_lost:
            log.warning("%s: the lease was lost; posting nothing", tag)
            return
        if job.shutdown and payload.outcome == "cancelled":
            self._release(lease)
            return
        try:
            ack = self.client.post_result(lease, payload.to_json(),
                                          budget_s=self.config.result_retry_s,
                                          abort=self._abandon)
        except ResultRejected as exc:
            log.error("%s: the server refused the result (%s); reporting an "
                      "infrastructure_error instead", tag, exc.detail)
            fallback = ResultPayload(
                outcome="infrastructure_error",
                reason=f"the server refused the worker's result: {exc.detail}"[:500],
                provenance={"worker_id": self.worker_id, "backend": self.backend.name},
            )
            try:
                ack = self.client.post_result(lease, fallback.to_json(),
                                              budget_s=self.config.result_retry_s,
                                              abort=self._abandon)
            except ClientError as again:
                log.error("%s: the result is lost: %s", tag, again)
                return
        except ClientError as exc:
            log.error("%s: the result is lost: %s", tag, exc)
            return
        if ack.lease_lost:
            log.warning("%s: the lease is stale; the result was not recorded", tag)
        elif ack.duplicate:
            log.info("%s: result already recorded", tag)
        else:
            log.info("%s: result recorded (%s)", tag, payload.outcome)

    def _release(self, lease: Lease) -> None:
        try:
            released = self.client.release(lease, abort=self._abandon)
        except ClientError as exc:
            log.warning("%s: release failed (%s); the lease will expire", lease.tag, exc)
            return
        log.info("%s: %s", lease.tag, "lease released" if released else "lease already gone")

    def _heartbeat(self, job: RunningJob) -> None:
        with bind_job(job.lease.job_id):
            self._heartbeat_loop(job)

    def _heartbeat_loop(self, job: RunningJob) -> None:
        lease = job.lease
        interval = self.config.heartbeat_interval_s or max(0.2, lease.lease_ttl_s / 3)
        while not job.done.wait(interval):
            version = job.live_tail.version
            tail = job.live_tail.text() if version != job.sent_version else None
            try:
                answer = self.client.heartbeat(lease, phase=job.phase, log_tail=tail,
                                               budget_s=interval)
                job.sent_version = version
            except ClientError as exc:
                log.warning("%s: heartbeat failed: %s", lease.tag, exc)
                continue
            if job.done.is_set():
                return
            if answer.lease_lost:
                log.warning("%s: the lease is lost (409); stopping the job", lease.tag)
                job.lost = True
                job.cancel.set()
                return
            if answer.cancel and not job.cancel.is_set():
                log.info("%s: cancel requested by the server", lease.tag)
                job.cancel.set()

    # ------------------------------------------------------------------ shutdown

    def _shutdown(self, slots: list[threading.Thread]) -> None:
        self._stage = "stopping"
        deadline = time.monotonic() + self.config.grace_s
        while self.running_jobs and time.monotonic() < deadline and not self._hard_stop.is_set():
            self._hard_stop.wait(min(0.2, max(0.0, deadline - time.monotonic())))
        self._abandon.set()
        for job in self.running_jobs:
            log.info("%s: grace period over: cancelling and releasing it", job.lease.tag)
            job.shutdown = True
            job.cancel.set()
        # Idle slots return from their long-poll within wait_s; a lease they get is released.
        join_by = time.monotonic() + self.config.wait_s + 60
        for slot in slots:
            slot.join(timeout=max(0.0, join_by - time.monotonic()))
        stuck = [s.name for s in slots if s.is_alive()]
        if stuck:
            log.error("slots still busy at exit: %s", ", ".join(stuck))
            return
        # Nothing runs any more: remove what a failed removal left during the run (a container
        # the engine would not delete while its connection was down), not only at the next start.
        try:
            removed = self.backend.reconcile(self.worker_id, keep=set())
        except BackendError as exc:
            log.warning("reconcile at shutdown failed (%s); the next start retries it", exc)
            return
        if removed:
            log.info("removed %d leftover(s) at shutdown: %s", len(removed),
                     ", ".join(removed[:20]))

    def _fail(self, message: str) -> None:
        log.error("%s", message)
        self._fatal = message
        self.stopping.set()
        self._hard_stop.set()

    def _exit_status(self) -> int:
        return EXIT_FATAL if self._fatal else EXIT_OK

    # ------------------------------------------------------------------ health file

    def _health_loop(self) -> None:
        while True:
            self._check_backend()
            self._write_health()
            if self._health_stop.wait(self.config.health_interval_s):
                return

    def _write_health(self) -> None:
        path = self.config.health_file
        if path is None:
            return
        write_json_atomic(path, self.health())


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` with ``data`` so that a reader never sees half a file; never raises."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("cannot write the health file %s: %s", path, exc)
        with contextlib.suppress(OSError):
            tmp.unlink()


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).isoformat(timespec="seconds")
