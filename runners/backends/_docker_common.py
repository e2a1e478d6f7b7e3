"""Constants and helpers shared by the docker backend's modules (``runners.backends.docker``).

Nothing here talks to the engine except through the calls it is handed; ``hardening`` is the
SECURITY.md container table as ``containers.create`` keywords, ``translate`` turns SDK and
transport exceptions into ``BackendError``/``BackendUnavailable``.
"""

from __future__ import annotations

import contextlib
import io
import re
import tarfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests
import urllib3.exceptions
from docker.types import LogConfig, Ulimit

from runners.backends.base import BackendError, BackendUnavailable, Limits, RunSpec

MIB = 1024 * 1024
SANDBOX_USER = "65534:65534"
DEFAULT_IMAGES: Mapping[str, str] = {"python-numpy": "reprise/python-numpy:bookworm"}
DEFAULT_BUILD_IMAGES: Mapping[str, str] = {"python-numpy": "reprise/python-numpy-build:bookworm"}
ENV_RECIPE = "reprise-env-1"  # bump when the derived-image Dockerfile changes
SITE_DIR = "/opt/reprise/site"
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The keeper runs only our own ``sleep`` (and ``stat`` through exec), so its limits need not be
# tight -- and must not be: on cgroup v1 the pids controller counts *threads*, and runc's own
# ``runc init`` (a Go program, 5-10 threads) sits in the container's cgroup until it execs the
# command; so does the ``runc init`` of every ``docker exec``. With ``pids=4`` a thread the
# runtime started late, or tini's fork of ``sleep``, was refused ("fork rejected by pids
# controller"): the keeper died at start ("cannot start a stopped process") or right after it
# (tini: "fork failed"), and its tmpfs -- the phase's outputs -- went with it.
KEEPER_LIMITS = Limits(cpus=1.0, memory_mb=32, pids=64, tmpfs_mb=1, nofile=64, output_mb=1)
KILL_STUCK_S = 30.0  # after SIGKILL, how long a container may take to die before we give up
START_ATTEMPTS = 3  # a container start that fails transiently is retried, recreated, this often
START_BACKOFF_S = (0.2, 0.5)
# What runc/containerd say when the container's init died between create and start (e.g. a
# thread or fork refused by the pids controller while runc's init still ran in the cgroup):
# transient, and nothing of the package ran, so starting a fresh container is safe.
TRANSIENT_START_ERRORS = (
    "cannot start a stopped process",
    "final child's PID from pipe",
    "init-p: connection reset by peer",
    "container init exited prematurely",
)
OVERFLOW_CODES = frozenset({"too_much_data", "entry_too_large", "too_many_entries"})
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_REQ = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,-]+\])?\s*==\s*[A-Za-z0-9.!+_-]+"
    r"(\s*;\s*[A-Za-z0-9_.<>=!~'\"() ]+?)?(\s+--hash=sha256:[0-9a-f]{64})*"
)


def hardening(limits: Limits) -> dict[str, Any]:
    """The SECURITY.md container controls, as ``containers.create`` keywords."""
    fsize = max(limits.output_mb, limits.tmpfs_mb) * MIB
    return {
        "user": SANDBOX_USER,
        "network_mode": "none",
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],  # seccomp: the default, never unconfined
        "privileged": False,
        "read_only": True,
        "tmpfs": {  # the container's private, size-capped scratch
            "/tmp": f"rw,nosuid,nodev,noexec,size={limits.tmpfs_mb}m,nr_inodes=65536"  # noqa: S108
        },
        "mem_limit": limits.memory_mb * MIB,
        "memswap_limit": limits.memory_mb * MIB,  # = mem_limit: no swap
        "pids_limit": limits.pids,
        "nano_cpus": int(limits.cpus * 1e9),
        "ulimits": [
            Ulimit(name="nofile", soft=limits.nofile, hard=limits.nofile),
            Ulimit(name="fsize", soft=fsize, hard=fsize),
            Ulimit(name="core", soft=0, hard=0),
        ],
        "init": True,
        "ipc_mode": "private",
        "shm_size": min(64, limits.tmpfs_mb) * MIB,
        "oom_score_adj": 500,  # should the host itself run out of memory, a package goes first
        "log_config": LogConfig(
            type="json-file",
            config={"max-size": f"{max(1, 4 * limits.log_tail_bytes // MIB)}m", "max-file": "2"},
        ),
        "hostname": "sandbox",
    }


@contextlib.contextmanager
def translate(what: str, *, unavailable: bool = False) -> Iterator[None]:
    """Turn SDK and transport exceptions into BackendError / BackendUnavailable."""
    try:
        yield
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise BackendUnavailable(f"{what}: the Docker daemon does not answer ({exc})") from exc
    except docker.errors.APIError as exc:
        raise BackendError(f"{what}: {exc.explanation or exc}") from exc
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise (BackendUnavailable if unavailable else BackendError)(f"{what}: {exc}") from exc


def api_error_text(exc: BackendError) -> str:
    """The engine's explanation behind a translated error ('' when it was no API error)."""
    cause = exc.__cause__
    if isinstance(cause, docker.errors.APIError):
        return str(cause.explanation or cause)
    return ""


def transient_start_error(exc: BackendError) -> bool:
    return any(marker in api_error_text(exc) for marker in TRANSIENT_START_ERRORS)


def is_read_timeout(exc: requests.RequestException) -> bool:
    """A wait slice that ran out: docker-py reports it as ConnectionError(ReadTimeoutError)."""
    return isinstance(exc, requests.Timeout) or any(
        isinstance(arg, urllib3.exceptions.ReadTimeoutError) for arg in exc.args
    )


def tar_of(files: dict[str, str]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


class ChunkReader(io.RawIOBase):
    """A binary file over an iterator of byte chunks (the body of ``get_archive``)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def pinned_requirements(text: str | None) -> list[str]:
    """The requirement lines, each ``name==version`` (extras, markers and hashes allowed).

    Options (``--index-url``, ``--no-binary``, ``-e``, ``-r``, URLs...) are refused: they could
    turn the build, which has network access, into running code from an sdist or another index.
    """
    lines: list[str] = []
    for number, raw in enumerate((text or "").replace("\\\n", " ").splitlines(), start=1):
        line = "" if raw.lstrip().startswith("#") else raw.split(" #", 1)[0].strip()
        if line and not _REQ.fullmatch(line):
            raise BackendError(
                f"requirements line {number} is not a pinned requirement (name==version): "
                f"{line[:120]!r}"
            )
        if line:
            lines.append(line)
    return lines


def validate_spec(spec: RunSpec) -> None:
    """Refuse a spec that would weaken the sandbox, before touching the engine."""
    if not _NAME.fullmatch(spec.name):
        raise BackendError(f"run name {spec.name!r} is not a valid container name")
    reserved = ("", "/tmp", "/proc", "/dev", "/sys")  # noqa: S108 - paths inside the container
    for mount in [*spec.mounts, spec.output]:
        if not mount.target.startswith("/") or mount.target.rstrip("/") in reserved:
            raise BackendError(f"mount target {mount.target!r} is not allowed")
    for mount in spec.mounts:
        source = Path(mount.source)
        if not mount.read_only:
            raise BackendError(f"mount {mount.target} must be read-only; only the output is not")
        if not (source.is_dir() or source.is_file()):
            raise BackendError(f"mount source {source} is not a regular file or folder")
        if "docker.sock" in source.name or source.resolve() == Path("/"):
            raise BackendError(f"mount source {source} is never mounted into a run")
