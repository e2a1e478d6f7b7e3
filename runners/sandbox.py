"""Process-level sandboxing for the local backend, and the bounded log tail shared by backends.

The local backend does not fork the worker with a ``preexec_fn`` (unsafe in a process that runs
heartbeat threads: the child may deadlock on a lock held by another thread before ``exec``).
Instead it starts this file as a tiny supervisor, ``python -I -S sandbox.py CONFIG FD -- CMD``,
which plays the part of docker's ``init``:

* it dies with the worker (``PR_SET_PDEATHSIG``) and becomes a *subreaper*, so every orphan the
  package leaves behind — even one that called ``setsid()`` — is re-parented to it;
* it forks the command into a process group of its own; in that (single-threaded) child it cuts
  the network (a new network namespace with only ``lo``), applies the rlimits and execs;
* on SIGTERM (timeout or cancel) it sends SIGTERM to the command's group, SIGKILL after the grace;
* when the command exits it SIGKILLs the group and every remaining descendant and reaps them all
  before exiting itself, so nothing outlives the run and ``wait4`` of the supervisor accounts for
  every process's CPU time and peak RSS.

Events go to the status pipe ``FD`` as JSON lines: ``started``, ``setup_error``, ``exec_error``,
``exit``. This module must stay runnable with the standard library alone (``-S``, no ``runners``).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # this file also runs as a standalone supervisor: no runtime import
    from runners.backends.base import LiveTail

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
SETUP_FAILED = 125  # exit status of the supervisor's child when the sandbox could not be built
EXEC_FAILED = 127


@dataclass(frozen=True)
class SandboxConfig:
    """What the supervisor applies to the command (sizes in bytes, times in seconds)."""

    cpu_seconds: int
    address_space: int | None
    file_size: int
    nofile: int
    grace_s: float
    isolate_network: bool
    parent_pid: int


def supervisor_argv(
    python: str, config: SandboxConfig, status_fd: int, command: Sequence[str]
) -> list[str]:
    """The argv that runs ``command`` under the supervisor with ``python`` (the worker's own)."""
    return [
        python,
        "-I",
        "-S",
        os.path.abspath(__file__),
        json.dumps(asdict(config)),
        str(status_fd),
        "--",
        *command,
    ]


class TailBuffer:
    """Keeps the last ``limit`` bytes of a stream and counts the rest."""

    def __init__(self, limit: int, *, mirror: LiveTail | None = None) -> None:
        self.limit = max(0, limit)
        self.total = 0
        self.mirror = mirror  # a live view of the same stream, for heartbeats
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        if self.mirror is not None:
            self.mirror.feed(data)
        self.total += len(data)
        self._buf += data
        if len(self._buf) > 2 * self.limit + 65536:
            del self._buf[: len(self._buf) - self.limit]

    @property
    def dropped(self) -> int:
        return self.total - min(len(self._buf), self.limit)

    def text(self) -> str:
        tail = bytes(self._buf[-self.limit :]) if self.limit else b""
        return tail.decode("utf-8", errors="replace")


def parse_events(raw: bytes) -> list[dict[str, object]]:
    """The supervisor's JSON-line events; garbage lines are skipped."""
    events: list[dict[str, object]] = []
    for line in raw.splitlines():
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict):
                events.append(event)
    return events


def session_members(sid: int) -> list[int]:
    """Pids whose session id is ``sid`` (the supervisor's session: it is a session leader)."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields and int(fields[3]) == sid:
                members.append(int(entry))
    return members


def process_start_time(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot (guards against pid reuse)."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name: [state, ppid, pgrp, session, ...]."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("ascii", errors="replace")
    except OSError:
        return None
    return raw.rpartition(")")[2].split()


# ---------------------------------------------------------------- the supervisor (runs as __main__)


def _emit(fd: int, **event: object) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, (json.dumps(event) + "\n").encode())


def _libc_call(name: str, *args: int) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if getattr(libc, name)(*args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}")


def _cut_network() -> str:
    """Move this process into a new network namespace with only ``lo`` (up)."""
    try:
        _libc_call("unshare", CLONE_NEWNET)
        how = "netns"
    except PermissionError:
        uid, gid = os.getuid(), os.getgid()
        _libc_call("unshare", CLONE_NEWUSER | CLONE_NEWNET)
        for name, text in (
            ("setgroups", "deny"),
            ("uid_map", f"{uid} {uid} 1"),
            ("gid_map", f"{gid} {gid} 1"),
        ):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
        how = "userns+netns"
    import fcntl
    import socket
    import struct

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        iff_up_loopback_running = 0x1 | 0x8 | 0x40
        fcntl.ioctl(s, 0x8914, struct.pack("16sH14s", b"lo", iff_up_loopback_running, b""))
    return how


def _apply_limits(config: SandboxConfig) -> None:
    def clamp(which: int, value: int) -> tuple[int, int]:
        _, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        return value, value

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, clamp(resource.RLIMIT_NOFILE, config.nofile))
    resource.setrlimit(resource.RLIMIT_FSIZE, clamp(resource.RLIMIT_FSIZE, config.file_size))
    # SIGXCPU at the soft limit, SIGKILL at the hard one.
    soft, _ = clamp(resource.RLIMIT_CPU, config.cpu_seconds)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, clamp(resource.RLIMIT_CPU, soft + 5)[0]))
    if config.address_space is not None:
        resource.setrlimit(resource.RLIMIT_AS, clamp(resource.RLIMIT_AS, config.address_space))


def _child(config: SandboxConfig, status_fd: int, command: list[str]) -> None:
    """In the forked child: build the sandbox and exec; never returns."""
    try:
        os.setpgid(0, 0)
        for sig in (
            signal.SIGTERM,
            signal.SIGINT,
            signal.SIGHUP,
            signal.SIGALRM,
            signal.SIGPIPE,
            signal.SIGXFSZ,
        ):
            signal.signal(sig, signal.SIG_DFL)
        if config.isolate_network:
            _cut_network()
        _apply_limits(config)
    except BaseException as exc:
        _emit(status_fd, event="setup_error", message=f"{type(exc).__name__}: {exc}")
        os._exit(SETUP_FAILED)
    try:
        os.execvp(command[0], command)  # noqa: S606 - the package's command, on purpose
    except BaseException as exc:
        _emit(status_fd, event="exec_error", message=f"cannot execute {command[0]!r}: {exc}")
    os._exit(EXEC_FAILED)


def _children_of(pid: int) -> list[int]:
    kids = []
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = [int(p) for p in f.read().split()]
    except OSError:
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                fields = _stat_fields(int(entry))
                if fields and int(fields[1]) == pid:
                    kids.append(int(entry))
    return kids


def _kill_everything_left(main_pid: int) -> int:
    """SIGKILL the command's group and every descendant re-parented to us; reap all of them."""
    with contextlib.suppress(OSError):
        os.killpg(main_pid, signal.SIGKILL)
    killed = 0
    while True:
        for kid in _children_of(os.getpid()):
            with contextlib.suppress(OSError):
                os.kill(kid, signal.SIGKILL)
                killed += 1
        try:
            pid, _ = os.waitpid(-1, 0)
        except ChildProcessError:
            return killed
        while pid:  # reap whatever else is already dead before scanning again
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return killed


def main(argv: list[str]) -> int:
    config = SandboxConfig(**json.loads(argv[1]))
    status_fd = int(argv[2])
    command = argv[4:]
    os.set_inheritable(status_fd, False)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # it may re-raise the command's SIGSEGV
    try:
        _libc_call("prctl", PR_SET_PDEATHSIG, signal.SIGTERM)
        _libc_call("prctl", PR_SET_CHILD_SUBREAPER, 1)
    except OSError as exc:
        _emit(status_fd, event="setup_error", message=f"prctl: {exc}")
        return SETUP_FAILED
    if os.getppid() != config.parent_pid:  # the worker died before PDEATHSIG was armed
        return SETUP_FAILED
    # ctypes is imported by now (_libc_call), so the forked child does not import anything.

    state = {"pid": 0, "asked": False, "terminating": False}

    def terminate() -> None:
        if state["pid"] and not state["terminating"]:
            state["terminating"] = True
            with contextlib.suppress(OSError):
                os.killpg(int(state["pid"]), signal.SIGTERM)
            signal.setitimer(signal.ITIMER_REAL, max(config.grace_s, 0.01))

    def on_term(signum: int, frame: object) -> None:
        state["asked"] = True
        terminate()

    def on_alarm(signum: int, frame: object) -> None:
        with contextlib.suppress(OSError):
            os.killpg(int(state["pid"]), signal.SIGKILL)

    signal.signal(signal.SIGALRM, on_alarm)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_term)

    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(config, status_fd, command)
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)
    state["pid"] = pid
    _emit(status_fd, event="started", pid=pid)
    if state["asked"]:  # SIGTERM arrived before the fork
        terminate()
    while True:
        try:
            done, status = os.waitpid(-1, 0)
        except ChildProcessError:  # cannot happen while the main child is unreaped
            return SETUP_FAILED
        if done == pid:
            break
    signal.setitimer(signal.ITIMER_REAL, 0)
    killed = _kill_everything_left(pid)
    code = os.waitstatus_to_exitcode(status)
    _emit(
        status_fd,
        event="exit",
        code=code if code >= 0 else None,
        signal=-code if code < 0 else None,
        leftovers_killed=killed,
        seconds=round(time.monotonic() - started, 3),
    )
    if code < 0:  # die the same way, so the parent's wait4 sees the signal too
        if -code not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        return 128 - code
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
