"""The life of one phase on the engine (``DockerBackend.run``): output store, container,
attach, start (retried when the runtime fails transiently), wait, outputs, cleanup."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import docker
import docker.errors
import requests
import urllib3.exceptions
from docker.types import Mount as DockerMount

from runners.backends._docker_common import (
    KILL_STUCK_S,
    MIB,
    START_ATTEMPTS,
    START_BACKOFF_S,
    api_error_text,
    hardening,
    is_read_timeout,
    transient_start_error,
    translate,
)
from runners.backends._docker_keeper import KeeperOutputs
from runners.backends._docker_outputs import HostTmpfsOutputs, MountUnavailable, collect
from runners.backends._docker_sampler import Sampler
from runners.backends.base import (
    BackendError,
    BackendUnavailable,
    Limits,
    RunResult,
    RunSpec,
)
from runners.sandbox import TailBuffer

if TYPE_CHECKING:
    from runners.backends.docker import DockerBackend

log = logging.getLogger("runners.backends.docker")

_BIND_SOURCE_MISSING = "bind source path does not exist"


class _Run:
    """The life of one phase; then ``cleanup``."""

    def __init__(
        self,
        backend: DockerBackend,
        client: docker.DockerClient,
        spec: RunSpec,
        cancel: threading.Event,
    ) -> None:
        self.backend = backend
        self.client = client
        self.api: Any = client.api  # the low-level API; it takes float timeouts
        self.spec = spec
        self.cancel = cancel
        self.container_id = spec.name
        self.outputs: HostTmpfsOutputs | KeeperOutputs | None = None
        self.tail = TailBuffer(spec.limits.log_tail_bytes, mirror=spec.live_tail)
        self.output_error: str | None = None
        self.log_complete = False
        self.stream: Any = None
        self.reader: threading.Thread | None = None
        self.sampler: Sampler | None = None

    def execute(self) -> RunResult:
        spec = self.spec
        self.remove_leftovers()
        self.prepare_outputs()
        try:
            started = self.launch()
        except BackendError as exc:
            if not (
                isinstance(self.outputs, HostTmpfsOutputs)
                and self.backend.outputs == "auto"
                and _BIND_SOURCE_MISSING in api_error_text(exc)
            ):
                raise
            # the engine does not see the worker's mounts (another mount namespace or host)
            self.backend.host_tmpfs_unusable(api_error_text(exc))
            self.remove_container(spec.name)
            self.outputs.cleanup()
            self.outputs = None
            self.prepare_outputs()
            started = self.launch()
        self.sampler = Sampler(self.api, self.container_id)
        timed_out, cancelled = self.wait(started)
        wall = time.monotonic() - started
        with translate("inspecting the finished container"):
            state = self.api.inspect_container(self.container_id)["State"]
        self.sampler.stop()
        if self.reader is not None:
            self.reader.join(timeout=5)
        self.finish_log()
        overflow = self.collect_outputs()
        usage = self.sampler.usage()
        return RunResult(
            exit_code=state.get("ExitCode"),
            timed_out=timed_out,
            oom_killed=bool(state.get("OOMKilled")),
            cancelled=cancelled,
            wall_s=round(wall, 3),
            cpu_s=None if usage.cpu_ns is None else round(usage.cpu_ns / 1e9, 3),
            peak_memory_mb=(
                None if usage.peak_memory_bytes is None else round(usage.peak_memory_bytes / MIB, 1)
            ),
            log_tail=self.tail.text(),
            log_dropped_bytes=self.tail.dropped,
            output_overflow=overflow,
            output_error=self.output_error,
        )

    def prepare_outputs(self) -> None:
        """The host tmpfs when this worker can mount one the engine sees, else the keeper."""
        if self.backend.use_host_tmpfs():
            host = HostTmpfsOutputs(self.spec, self.backend.max_output_entries)
            self.outputs = host
            try:
                host.prepare()
                return
            except MountUnavailable as exc:
                if self.backend.outputs != "auto":
                    raise BackendError(str(exc)) from exc
                self.backend.host_tmpfs_unusable(str(exc))
        self.outputs = KeeperOutputs(self)
        self.outputs.prepare()

    def labels(self, role: str) -> dict[str, str]:
        return {**self.spec.labels, "reprise.run": self.spec.name, "reprise.role": role}

    def create(
        self,
        name: str,
        command: list[str],
        limits: Limits,
        env: dict[str, str],
        workdir: str,
        mounts: list[DockerMount],
        *,
        role: str,
        init: bool = True,
    ) -> str:
        """Create a hardened container; a name still taken (409) is this run's: replace it."""
        options: dict[str, Any] = {**hardening(limits), "init": init}
        if self.backend.runtime:
            options["runtime"] = self.backend.runtime  # e.g. runsc: gVisor under the controls
        for attempt in (1, 2):
            try:
                with translate(f"creating container {name}"):
                    container = self.client.containers.create(
                        self.spec.environment.reference,
                        command,
                        name=name,
                        environment=env,
                        working_dir=workdir,
                        mounts=mounts,
                        labels=self.labels(role),
                        detach=True,
                        stdin_open=False,
                        tty=False,
                        **options,
                    )
                return str(container.id)
            except BackendError as exc:
                cause = exc.__cause__
                if attempt == 2 or not (
                    isinstance(cause, docker.errors.APIError) and cause.status_code == 409
                ):
                    raise
                log.warning("container name %s is taken by a leftover; replacing it", name)
                self.remove_container(name)
        raise AssertionError("unreachable")

    def start_container(
        self,
        name: str,
        create: Callable[[], str],
        what: str,
        *,
        before_start: Callable[[str], None] | None = None,
        after_failure: Callable[[], None] | None = None,
        check_started: Callable[[str], str | None] | None = None,
    ) -> str:
        """Create and start; when the runtime fails transiently (its init died before the
        command ran, so nothing of the package ran) or ``check_started`` finds the container
        already dead, remove, recreate under the same name and start again, a bounded number
        of times. Returns the started container's id."""
        for attempt in range(1, START_ATTEMPTS + 1):
            container_id = create()
            if before_start is not None:
                before_start(container_id)
            try:
                with translate(f"starting {what}"):
                    self.api.start(container_id)
                failure = None if check_started is None else check_started(container_id)
                if failure is None:
                    return container_id
                if attempt == START_ATTEMPTS:
                    raise BackendError(f"{what} stopped right after it started: {failure}")
            except BackendError as exc:
                if attempt == START_ATTEMPTS or not transient_start_error(exc):
                    raise
                failure = str(exc)
            log.warning(
                "starting %s (%s) failed transiently, attempt %d of %d: %s",
                what,
                name,
                attempt,
                START_ATTEMPTS,
                failure,
            )
            if after_failure is not None:
                after_failure()
            self.remove_container(name)
            time.sleep(START_BACKOFF_S[min(attempt, len(START_BACKOFF_S)) - 1])
        raise AssertionError("unreachable")

    def launch(self) -> float:
        """Create, attach and start the phase; returns the monotonic time it was started."""
        spec = self.spec
        assert self.outputs is not None
        binds = [
            DockerMount(target=m.target, source=str(m.source), type="bind", read_only=True)
            for m in spec.mounts
        ]
        mounts = [*binds, self.outputs.phase_mount()]
        started = time.monotonic()

        def attach(container_id: str) -> None:
            nonlocal started
            assert self.outputs is not None
            self.outputs.ready()
            self.tail = TailBuffer(spec.limits.log_tail_bytes, mirror=spec.live_tail)
            self.log_complete = False
            with translate("attaching to the container"):
                self.stream = self.api.attach(
                    container_id, stdout=True, stderr=True, stream=True, logs=True
                )
            self.reader = threading.Thread(
                target=self.read_logs, daemon=True, name=f"log-{spec.name}"
            )
            self.reader.start()
            started = time.monotonic()

        self.container_id = self.start_container(
            spec.name,
            lambda: self.create(
                spec.name, spec.command, spec.limits, spec.env, spec.workdir, mounts, role="phase"
            ),
            "the container",
            before_start=attach,
            after_failure=self.close_stream,
        )
        return started

    def close_stream(self) -> None:
        if self.stream is not None:
            with contextlib.suppress(Exception):
                self.stream.close()
        if self.reader is not None:
            self.reader.join(timeout=5)

    def read_logs(self) -> None:
        try:
            for chunk in self.stream:
                self.tail.feed(chunk)
            self.log_complete = True
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            log.warning("the log stream of %s broke: %s", self.spec.name, exc)
        except docker.errors.DockerException as exc:
            log.warning("the log stream of %s broke: %s", self.spec.name, exc)

    def finish_log(self) -> None:
        """When the attach stream broke, fall back to the engine's (size-capped) log file."""
        if self.log_complete:
            return
        with contextlib.suppress(BackendError), translate("reading the log tail"):
            lines = max(100, self.spec.limits.log_tail_bytes // 40)
            data = self.api.logs(self.container_id, stdout=True, stderr=True, tail=lines)
            seen = self.tail.total
            self.tail = TailBuffer(self.spec.limits.log_tail_bytes, mirror=self.spec.live_tail)
            self.tail.feed(data)
            self.tail.feed(
                b"\n[reprise] the log stream was interrupted: this tail comes from the engine's "
                b"log file, and the dropped byte count is a lower bound\n"
            )
            self.tail.total = max(self.tail.total, seen)

    def wait(self, started: float) -> tuple[bool, bool]:
        """Wait in short slices (cancel, deadline, SIGTERM then SIGKILL); survive a dropped
        daemon connection by reconnecting and finding the container again by name."""
        deadline = started + self.spec.limits.timeout_s
        timed_out = cancelled = False
        kill_at: float | None = None
        killed_at: float | None = None
        while True:
            now = time.monotonic()
            if kill_at is None:
                cancelled = self.cancel.is_set()
                timed_out = not cancelled and now >= deadline
                if cancelled or timed_out:
                    self.send_signal("SIGTERM")
                    kill_at = now + self.backend.grace_s
            if kill_at is not None and killed_at is None and now >= kill_at:
                self.send_signal("SIGKILL")
                killed_at = now
            if killed_at is not None and now - killed_at > KILL_STUCK_S:
                raise BackendError(f"container {self.spec.name} did not die after SIGKILL")
            step = 0.5 if kill_at is None else 0.2
            if kill_at is None:
                step = min(step, max(0.05, deadline - now))
            try:
                self.api.wait(self.container_id, timeout=step)
                return timed_out, cancelled
            except requests.RequestException as exc:
                if is_read_timeout(exc):
                    continue  # still running
                log.warning(
                    "Docker connection dropped while waiting for %s: %s", self.spec.name, exc
                )
                if not self.reconnect():
                    return timed_out, cancelled
            except docker.errors.NotFound as exc:
                raise BackendError(f"container {self.spec.name} disappeared while running") from exc
            except docker.errors.DockerException as exc:
                raise BackendError(f"waiting for {self.spec.name}: {exc}") from exc

    def reconnect(self) -> bool:
        """Ping with backoff, then find the container by name: True while it still runs."""
        delay, give_up = 0.25, time.monotonic() + self.backend.reconnect_budget_s
        while True:
            try:
                self.api.ping()
                found = self.api.inspect_container(self.spec.name)
                self.container_id = str(found["Id"])
                log.info("reconnected to Docker; %s: %s", self.spec.name, found["State"]["Status"])
                return bool(found["State"]["Running"])
            except docker.errors.NotFound as exc:
                raise BackendError(
                    f"container {self.spec.name} disappeared while Docker was unreachable"
                ) from exc
            except (requests.RequestException, docker.errors.DockerException) as exc:
                if time.monotonic() + delay > give_up:
                    raise BackendUnavailable(
                        f"lost the Docker daemon while {self.spec.name} ran; its container is "
                        "left for reconcile"
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def send_signal(self, sig: str) -> None:
        try:
            self.api.kill(self.container_id, signal=sig)
        except docker.errors.APIError as exc:
            if exc.status_code not in (404, 409):  # 409: it is not running any more
                raise BackendError(f"sending {sig} to {self.spec.name}: {exc.explanation}") from exc
        except (requests.RequestException, docker.errors.DockerException) as exc:
            log.warning(
                "sending %s to %s failed (the wait loop retries): %s", sig, self.spec.name, exc
            )

    def collect_outputs(self) -> bool:
        """Copy the outputs into ``spec.output.source``; True when they overflowed."""
        assert self.outputs is not None
        overflow, refusal = collect(self.outputs, self.spec, self.backend.max_output_entries)
        if refusal is not None:
            self.tail.feed(f"\n[reprise] outputs refused, none kept: {refusal}\n".encode())
            self.output_error = refusal
        return overflow

    def remove_leftovers(self) -> None:
        """What an earlier attempt under this name may have left (keeper-mode names too)."""
        self.remove_container(self.spec.name)
        keeper = KeeperOutputs(self)
        keeper.cleanup()

    def remove_container(self, name: str) -> None:
        try:
            self.api.remove_container(name, force=True)
        except docker.errors.NotFound:
            pass
        except (docker.errors.DockerException, requests.RequestException) as exc:
            log.warning("could not remove container %s (reconcile will, at stop): %s", name, exc)

    def cleanup(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
        if self.reader is not None and self.reader.is_alive():
            with contextlib.suppress(Exception):
                self.stream.close()
        self.remove_container(self.spec.name)
        if self.outputs is not None:
            self.outputs.cleanup()
