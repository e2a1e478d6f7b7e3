"""The local backend: phases as supervised subprocesses, for trusted code only.

NOT a security boundary. It gives a trusted package the same *shape* of run as the docker backend
(scrubbed environment, private scratch as HOME/TMPDIR, rlimits, wall-clock timeout, no network
where a network namespace can be made, nothing left running afterwards), but the package runs as
the worker's own user and can read and write whatever that user can. See docs/runner-backends.md.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import resource
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from runners import hostinfo, sandbox
from runners.backends.base import (
    BackendError,
    EnvironmentSpec,
    Mount,
    PreparedEnvironment,
    RunResult,
    RunSpec,
)

log = logging.getLogger(__name__)

MIB = 1024 * 1024
DEFAULT_INTERPRETERS: Mapping[str, str] = {"python-numpy": sys.executable}
# Measured (numpy 2.4 + OpenBLAS, import and a 400x400 matmul): 132 MB of address space with one
# BLAS thread, 175 MB with two. glibc reserves a 64 MB malloc arena per thread on top.
AS_BASE_HEADROOM_MB = 256
AS_PER_THREAD_HEADROOM_MB = 128
KILL_MARGIN_S = 3.0  # after the grace, how long the supervisor gets before it is SIGKILLed


class LocalBackend:
    """Runs each phase as a process tree under ``runners.sandbox``'s supervisor."""

    name = "local"

    def __init__(
        self,
        *,
        interpreters: Mapping[str, str] | None = None,
        scratch_root: Path | None = None,
        isolate_network: bool | None = None,
        grace_s: float = 2.0,
    ) -> None:
        """``isolate_network``: None = when possible, True = required, False = never."""
        log.warning(
            "LocalBackend: packages run as plain processes of user %s with this host's files "
            "and kernel. This is NOT a security boundary: use it for trusted code only.",
            os.getuid(),
        )
        self.interpreters = dict(interpreters or DEFAULT_INTERPRETERS)
        self.scratch_root = scratch_root or Path(tempfile.gettempdir()) / "reprise-local"
        self.scratch_root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.grace_s = grace_s
        self._checked: dict[str, PreparedEnvironment] = {}
        self._lock = threading.Lock()
        possible = isolate_network is not False and self._probe_network_isolation()
        if isolate_network and not possible:
            raise BackendError("a network namespace cannot be created here (isolate_network=True)")
        self.network_isolated = possible
        if not possible:
            log.warning("LocalBackend: no network namespace; packages can reach the network")

    # ------------------------------------------------------------------ interface

    def visible_path(self, mount: Mount) -> str:
        return str(mount.source)

    def prepare_environment(self, spec: EnvironmentSpec) -> PreparedEnvironment:
        """The configured interpreter for ``spec.base``; packages with requirements are refused."""
        if spec.requirements and any(
            line.strip() and not line.lstrip().startswith("#")
            for line in spec.requirements.splitlines()
        ):
            raise BackendError(
                "the local backend does not install requirements (it would run pip with network "
                "access on the worker's host); run this package on a docker worker"
            )
        python = self.interpreters.get(spec.base)
        if python is None:
            raise BackendError(
                f"base {spec.base!r} is not configured on this local worker "
                f"(known: {', '.join(sorted(self.interpreters)) or 'none'})"
            )
        with self._lock:
            if spec.base in self._checked:
                return self._checked[spec.base]
        try:
            subprocess.run(  # noqa: S603 - a configured interpreter, fixed arguments
                [python, "-I", "-c", "import numpy"],
                check=True,
                capture_output=True,
                timeout=60,
                env={"PATH": os.defpath, "LANG": "C.UTF-8"},
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise BackendError(
                f"interpreter {python} for {spec.base!r} cannot import numpy"
            ) from exc
        prepared = PreparedEnvironment(reference=python, python=python, digest=None)
        with self._lock:
            self._checked[spec.base] = prepared
        return prepared

    def run(self, spec: RunSpec, cancel: threading.Event | None = None) -> RunResult:
        scratch = Path(tempfile.mkdtemp(prefix=f"{_safe(spec.name)}.", dir=self.scratch_root))
        try:
            return self._run(spec, cancel, scratch)
        finally:
            _rmtree(scratch)

    def reconcile(self, worker_id: str, keep: set[str]) -> list[str]:
        """Stop supervisors left by an earlier worker process with this id; remove their dirs."""
        removed = []
        for marker in self.scratch_root.glob("*/run.json"):
            try:
                info = json.loads(marker.read_text())
            except (OSError, ValueError):
                continue
            if info.get("labels", {}).get("reprise.worker") != worker_id or info["name"] in keep:
                continue
            pid = int(info.get("pid", 0))
            if pid and sandbox.process_start_time(pid) == info.get("start_time"):
                _terminate_tree(pid, self.grace_s)
            _rmtree(marker.parent)
            removed.append(str(info["name"]))
        return removed

    def healthy(self) -> bool:
        return True

    def describe(self) -> dict[str, str]:
        facts = {"backend": "local", "python": sys.version.split()[0]}
        facts.update(hostinfo.host_facts())
        facts["network_isolated"] = "true" if self.network_isolated else "false"
        facts["security_boundary"] = "false"
        return facts

    def close(self) -> None:
        pass

    # ------------------------------------------------------------------ internals

    def _probe_network_isolation(self) -> bool:
        with tempfile.TemporaryDirectory(dir=self.scratch_root) as tmp:
            config = self._config(cpu_s=30, address_space=None, file_size=MIB, nofile=64, net=True)
            status_r, status_w = os.pipe()
            try:
                proc = subprocess.run(  # noqa: S603 - our own supervisor and interpreter
                    sandbox.supervisor_argv(sys.executable, config, status_w, ["true"]),
                    pass_fds=(status_w,),
                    cwd=tmp,
                    env={"PATH": os.defpath},
                    capture_output=True,
                    timeout=30,
                    check=False,
                )
            finally:
                os.close(status_w)
                with os.fdopen(status_r, "rb") as f:
                    events = sandbox.parse_events(f.read())
        failed = [e for e in events if e.get("event") == "setup_error"]
        if failed:
            log.info("LocalBackend: network isolation unavailable: %s", failed[0].get("message"))
        return proc.returncode == 0 and not failed

    def _config(
        self, *, cpu_s: int, address_space: int | None, file_size: int, nofile: int, net: bool
    ) -> sandbox.SandboxConfig:
        return sandbox.SandboxConfig(
            cpu_seconds=cpu_s,
            address_space=address_space,
            file_size=file_size,
            nofile=nofile,
            grace_s=self.grace_s,
            isolate_network=net,
            parent_pid=os.getpid(),
        )

    def _run(self, spec: RunSpec, cancel: threading.Event | None, scratch: Path) -> RunResult:
        limits = spec.limits
        threads = max(1, math.ceil(limits.cpus))
        config = self._config(
            cpu_s=math.ceil(limits.timeout_s * threads) + 1,
            address_space=(
                limits.memory_mb + AS_BASE_HEADROOM_MB + AS_PER_THREAD_HEADROOM_MB * threads
            )
            * MIB,
            file_size=max(limits.output_mb, limits.tmpfs_mb) * MIB,
            nofile=limits.nofile,
            net=self.network_isolated,
        )
        home = scratch / "tmp"
        home.mkdir(mode=0o700)
        bindir = scratch / "bin"
        bindir.mkdir(mode=0o700)
        python = spec.environment.python
        for alias in ("python", "python3"):  # `python train.py` must mean the environment's python
            wrapper = bindir / alias
            wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(python)} "$@"\n')
            wrapper.chmod(0o700)
        # Only PATH, LANG and spec.env; HOME/TMPDIR default to a fresh private scratch (the
        # worker may name its own, as it does for the container's /tmp).
        env = {
            "PATH": f"{bindir}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": str(home),
            "TMPDIR": str(home),
            **spec.env,
        }
        env["TMP"] = env["TMPDIR"]
        cwd = spec.workdir if spec.workdir not in ("", "/") else str(home)
        spec.output.source.mkdir(parents=True, exist_ok=True)

        tail = sandbox.TailBuffer(limits.log_tail_bytes, mirror=spec.live_tail)
        status_r, status_w = os.pipe()
        log_r, log_w = os.pipe()
        started = time.monotonic()
        try:
            proc = subprocess.Popen(  # noqa: S603 - the package's command, on purpose
                sandbox.supervisor_argv(sys.executable, config, status_w, spec.command),
                stdin=subprocess.DEVNULL,
                stdout=log_w,
                stderr=log_w,
                cwd=cwd,
                env=env,
                start_new_session=True,
                pass_fds=(status_w,),
            )
        except OSError as exc:
            os.close(status_r)
            os.close(log_r)
            raise BackendError(f"cannot start the sandbox: {exc}") from exc
        finally:
            os.close(status_w)
            os.close(log_w)
        reader = threading.Thread(
            target=_drain, args=(log_r, tail), daemon=True, name=f"log-{spec.name}"
        )
        reader.start()
        with os.fdopen(status_r, "rb") as status_pipe:
            try:
                marker = {
                    "name": spec.name,
                    "labels": spec.labels,
                    "pid": proc.pid,
                    "start_time": sandbox.process_start_time(proc.pid),
                }
                (scratch / "run.json").write_text(json.dumps(marker))
                status, rusage, timed_out, cancelled = self._wait(
                    proc, limits.timeout_s, cancel, started
                )
            finally:
                if proc.returncode is None:  # an error while waiting: never leave the tree
                    _terminate_tree(proc.pid, 0)
            wall = time.monotonic() - started
            reader.join(timeout=5)
            os.set_blocking(status_r, False)  # everything is written; never wait for a writer
            events = sandbox.parse_events(status_pipe.read() or b"")
        for event in events:
            if event.get("event") == "setup_error":
                raise BackendError(f"the local sandbox could not be set up: {event.get('message')}")
        exit_code = _exit_code(status)
        exec_errors = [e for e in events if e.get("event") == "exec_error"]
        if exec_errors:
            tail.feed(f"\n[reprise] {exec_errors[0].get('message')}\n".encode())
        if exit_code == 128 + signal.SIGXCPU:  # the kernel's CPU-time limit (≈ the timeout)
            timed_out = True
        return RunResult(
            exit_code=exit_code,
            timed_out=timed_out and not cancelled,
            oom_killed=False,  # no cgroup here: a MemoryError is the package's own failure
            cancelled=cancelled,
            wall_s=round(wall, 3),
            cpu_s=round(rusage.ru_utime + rusage.ru_stime, 3) if rusage else None,
            peak_memory_mb=round(rusage.ru_maxrss / 1024, 1) if rusage else None,
            log_tail=tail.text(),
            log_dropped_bytes=tail.dropped,
            output_overflow=_tree_size(spec.output.source) > limits.output_mb * MIB,
        )

    def _wait(
        self,
        proc: subprocess.Popen[bytes],
        timeout_s: float,
        cancel: threading.Event | None,
        started: float,
    ) -> tuple[int, resource.struct_rusage | None, bool, bool]:
        deadline = started + timeout_s
        kill_at: float | None = None
        timed_out = cancelled = False
        pidfd = _pidfd_open(proc.pid)
        try:
            while True:
                pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    proc.returncode = os.waitstatus_to_exitcode(status)
                    return status, rusage, timed_out, cancelled
                now = time.monotonic()
                if kill_at is None and cancel is not None and cancel.is_set():
                    cancelled = True
                if kill_at is None and now >= deadline:
                    timed_out = True
                if kill_at is None and (cancelled or timed_out):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(proc.pid, signal.SIGTERM)  # the supervisor relays and escalates
                    kill_at = now + self.grace_s + KILL_MARGIN_S
                elif kill_at is not None and now >= kill_at:
                    log.error("local sandbox %d ignored SIGTERM; killing its session", proc.pid)
                    _kill_session(proc.pid)
                    kill_at = now + 3600
                step = min(0.05, max(0.0, deadline - now)) if kill_at is None else 0.05
                if pidfd is not None:
                    select.select([pidfd], [], [], step)
                else:
                    time.sleep(step)
        finally:
            if pidfd is not None:
                os.close(pidfd)


def _drain(fd: int, tail: sandbox.TailBuffer) -> None:
    with os.fdopen(fd, "rb", buffering=0) as f:
        while chunk := f.read(65536):
            tail.feed(chunk)


def _exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code  # killed by signal N -> 128+N, as docker reports


def _pidfd_open(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _kill_session(sid: int) -> None:
    for pid in sandbox.session_members(sid):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _terminate_tree(pid: int, grace_s: float) -> None:
    """SIGTERM a supervisor (it cleans up its descendants); SIGKILL its session if it lingers."""
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s + KILL_MARGIN_S
    while time.monotonic() < deadline and sandbox.process_start_time(pid) is not None:
        with contextlib.suppress(ChildProcessError, OSError):
            if os.waitpid(pid, os.WNOHANG)[0]:
                return
        time.sleep(0.05)
    _kill_session(pid)
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, 0)


def _tree_size(root: Path) -> int:
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80] or "run"


def _rmtree(path: Path) -> None:
    def unlock(func: object, p: str, exc: object) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)

    shutil.rmtree(path, onerror=unlock)
