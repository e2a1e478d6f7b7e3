"""The worker's configuration: one dataclass, filled from flags, keyword options or ``REPRISE_*``.

Environment variables (flags win over them)::

    REPRISE_SERVER                     API base URL
    REPRISE_WORKER_TOKEN/REPRISE_TOKEN the worker token (never pass it as a flag on shared hosts)
    REPRISE_WORKER_BACKEND             docker | local | fake
    REPRISE_WORKER_ID                  stable id; default: host name + a hash of the workdir
    REPRISE_WORKER_CONCURRENCY         jobs run at once
    REPRISE_WORKER_LABELS              k=v,k=v (at most the token's registered labels)
    REPRISE_WORKER_DIR                 scratch and caches
    REPRISE_WORKER_HEALTH_FILE         JSON health file, rewritten every few seconds
    REPRISE_WORKER_DOCKER_RUNTIME      OCI runtime for the containers (e.g. runsc: gVisor)
    REPRISE_WORKER_LOG_FORMAT          text (default) or json: one object per line with job_id
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

BackendName = Literal["docker", "local", "fake"]
BACKENDS: tuple[BackendName, ...] = ("docker", "local", "fake")
WORKER_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
LABEL = re.compile(r"[A-Za-z0-9._-]{1,64}")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message says which and how to fix it."""


def default_workdir() -> Path:
    """``$XDG_CACHE_HOME/reprise-worker`` (``~/.cache/reprise-worker``)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "reprise-worker"


def default_worker_id(workdir: Path) -> str:
    """The host name plus a short hash of the workdir: stable across restarts, and distinct for
    two workers on one host (each reconciles only its own leftovers at start)."""
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()).strip("-.") or "worker"
    digest = hashlib.sha256(str(workdir.expanduser().resolve()).encode()).hexdigest()[:6]
    return f"{host[:57]}-{digest}"


def parse_labels(text: str) -> dict[str, str]:
    """``"k=v,k=v"`` as a dict; raises ``ConfigError`` on anything else."""
    labels: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not LABEL.fullmatch(key) or not LABEL.fullmatch(value):
            raise ConfigError(f"label {part!r} is not key=value of [A-Za-z0-9._-]")
        labels[key] = value
    return labels


def _mapping(text: str, what: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key or not value:
            raise ConfigError(f"{what} {part!r} is not base=value")
        result[key] = value
    return result


@dataclass
class WorkerConfig:
    """Everything a worker process needs; ``validate()`` runs on every constructor below."""

    server: str
    token: str
    backend: BackendName = "docker"
    concurrency: int = 1
    labels: dict[str, str] = field(default_factory=dict)
    worker_id: str = ""  # "" = default_worker_id(workdir)
    workdir: Path = field(default_factory=default_workdir)
    wait_s: float = 20.0  # lease long-poll; the server caps it (30 s by default)
    health_file: Path | None = None
    health_interval_s: float = 5.0
    grace_s: float = 60.0  # on SIGTERM: how long running jobs may finish before their release
    docker_images: dict[str, str] = field(default_factory=dict)  # base -> tag; {} = defaults
    docker_url: str | None = None
    docker_runtime: str | None = None  # an OCI runtime of the engine, e.g. runsc (gVisor)
    local_python: str | None = None  # interpreter for base python-numpy; None = this one
    heartbeat_interval_s: float | None = None  # None = the lease's ttl / 3
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    result_retry_s: float = 900.0  # how long a finished job's result is retried
    log_level: str = "INFO"
    log_format: str = "text"  # or "json" (runners.logs)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir).expanduser()
        if self.health_file is not None:
            self.health_file = Path(self.health_file).expanduser()
        if not self.worker_id:
            self.worker_id = default_worker_id(self.workdir)
        self.validate()

    def validate(self) -> None:
        if not self.server.startswith(("http://", "https://")):
            raise ConfigError(f"server {self.server!r} must be an http(s) URL")
        if not self.token:
            raise ConfigError("a worker token is needed: --token or REPRISE_WORKER_TOKEN")
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend {self.backend!r} is not one of {', '.join(BACKENDS)}")
        if not 1 <= self.concurrency <= 64:
            raise ConfigError("concurrency must be between 1 and 64")
        if not WORKER_ID.fullmatch(self.worker_id):
            raise ConfigError(f"worker id {self.worker_id!r} is not 1-64 of [A-Za-z0-9._-]")
        for key, value in self.labels.items():
            if not LABEL.fullmatch(key) or not LABEL.fullmatch(value):
                raise ConfigError(f"label {key}={value} is not 1-64 of [A-Za-z0-9._-]")
        if self.wait_s < 0 or self.grace_s < 0 or self.health_interval_s <= 0:
            raise ConfigError("wait_s and grace_s must be >= 0, health_interval_s > 0")
        if self.backoff_initial_s <= 0 or self.backoff_max_s < self.backoff_initial_s:
            raise ConfigError("backoff_initial_s must be > 0 and <= backoff_max_s")
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"log format {self.log_format!r} is not text or json")

    @property
    def base_url(self) -> str:
        return self.server.rstrip("/")

    @classmethod
    def from_options(cls, **options: Any) -> WorkerConfig:
        """Keyword options (``None`` = unset), completed from the environment."""
        given = {k: v for k, v in options.items() if v is not None}
        merged = {**_from_env(os.environ), **given}
        merged.setdefault("server", "http://127.0.0.1:8000")
        merged.setdefault("token", "")
        return cls(**merged)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WorkerConfig:
        values = _from_env(os.environ if env is None else env)
        values.setdefault("server", "http://127.0.0.1:8000")
        values.setdefault("token", "")
        return cls(**values)

    @classmethod
    def from_args(cls, argv: Sequence[str]) -> WorkerConfig:
        """Parse ``reprise-worker`` flags (see ``build_parser``)."""
        args = build_parser().parse_args(list(argv))
        options: dict[str, Any] = {
            "server": args.server,
            "token": args.token,
            "backend": args.backend,
            "concurrency": args.concurrency,
            "labels": parse_labels(args.labels) if args.labels is not None else None,
            "worker_id": args.worker_id,
            "workdir": Path(args.workdir) if args.workdir else None,
            "wait_s": args.wait,
            "health_file": Path(args.health_file) if args.health_file else None,
            "health_interval_s": args.health_interval,
            "grace_s": args.grace,
            "docker_images": _mapping(args.docker_images, "image") if args.docker_images else None,
            "docker_url": args.docker_url,
            "docker_runtime": args.docker_runtime,
            "local_python": args.local_python,
            "heartbeat_interval_s": args.heartbeat_interval,
            "backoff_max_s": args.backoff_max,
            "log_level": args.log_level,
            "log_format": args.log_format,
        }
        return cls.from_options(**options)


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if env.get("REPRISE_SERVER"):
        values["server"] = env["REPRISE_SERVER"]
    token = env.get("REPRISE_WORKER_TOKEN") or env.get("REPRISE_TOKEN")
    if token:
        values["token"] = token
    if env.get("REPRISE_WORKER_BACKEND"):
        values["backend"] = env["REPRISE_WORKER_BACKEND"]
    if env.get("REPRISE_WORKER_ID"):
        values["worker_id"] = env["REPRISE_WORKER_ID"]
    if env.get("REPRISE_WORKER_CONCURRENCY"):
        try:
            values["concurrency"] = int(env["REPRISE_WORKER_CONCURRENCY"])
        except ValueError:
            raise ConfigError("REPRISE_WORKER_CONCURRENCY must be an integer") from None
    if env.get("REPRISE_WORKER_LABELS"):
        values["labels"] = parse_labels(env["REPRISE_WORKER_LABELS"])
    if env.get("REPRISE_WORKER_DIR"):
        values["workdir"] = Path(env["REPRISE_WORKER_DIR"])
    if env.get("REPRISE_WORKER_HEALTH_FILE"):
        values["health_file"] = Path(env["REPRISE_WORKER_HEALTH_FILE"])
    if env.get("REPRISE_WORKER_DOCKER_RUNTIME"):
        values["docker_runtime"] = env["REPRISE_WORKER_DOCKER_RUNTIME"]
    if env.get("REPRISE_WORKER_LOG_FORMAT"):
        values["log_format"] = env["REPRISE_WORKER_LOG_FORMAT"]
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="reprise-worker",
        description="Lease Reprise jobs over HTTP and run them (docker: sandboxed; "
        "local: trusted code only).",
    )
    p.add_argument("--server", help="API base URL (REPRISE_SERVER)")
    p.add_argument("--token", help="worker token (prefer REPRISE_WORKER_TOKEN)")
    p.add_argument("--backend", choices=BACKENDS, help="execution backend (default docker)")
    p.add_argument("--concurrency", type=int, help="jobs run at once (default 1)")
    p.add_argument("--labels", help="k=v,k=v; at most those registered for the token")
    p.add_argument("--worker-id", help="stable id; labels this worker's containers")
    p.add_argument("--workdir", help="scratch and caches (default ~/.cache/reprise-worker)")
    p.add_argument("--wait", type=float, help="lease long-poll seconds (default 20)")
    p.add_argument("--health-file", help="JSON health file, rewritten every few seconds")
    p.add_argument("--health-interval", type=float, help="seconds between health updates")
    p.add_argument("--grace", type=float, help="seconds running jobs get on SIGTERM (default 60)")
    p.add_argument("--docker-images", help="base=tag,base=tag (docker backend)")
    p.add_argument("--docker-url", help="Docker engine URL (default: DOCKER_HOST / the socket)")
    p.add_argument("--docker-runtime",
                   help="OCI runtime for every container, e.g. runsc for gVisor "
                   "(REPRISE_WORKER_DOCKER_RUNTIME; default: the engine's)")
    p.add_argument("--local-python", help="interpreter for base python-numpy (local backend)")
    p.add_argument("--heartbeat-interval", type=float, help="seconds (default lease ttl / 3)")
    p.add_argument("--backoff-max", type=float, help="longest retry delay (default 30)")
    p.add_argument("--log-level", help="DEBUG, INFO, WARNING (default INFO)")
    p.add_argument("--log-format", choices=("text", "json"),
                   help="text (default) or json lines carrying job_id and worker_id")
    return p
