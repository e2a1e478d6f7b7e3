"""The worker protocol's wire types and errors (docs/worker-protocol.md), without transport;
``runners.client`` speaks the protocol over HTTP and re-exports all of it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from runners.backends.base import Limits

T = TypeVar("T")
_HASH = re.compile(r"[0-9A-Za-z]{1,128}")


# ---------------------------------------------------------------------------------- errors


class ClientError(Exception):
    """A protocol call failed for good."""


class ServerUnavailable(ClientError):
    """The API did not answer usefully within the retry budget (or the caller gave up)."""


class ProtocolError(ClientError):
    """A final ``4xx`` answer, or an answer that breaks the protocol."""

    def __init__(self, message: str, status: int | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class Unauthorized(ProtocolError):
    """401/403: the token is refused, or it may not do this (labels, unsandboxed backend)."""


class LeaseLost(ProtocolError):
    """The lease is stale (409) or its job is gone (404)."""


class ResultRejected(ProtocolError):
    """The server refused the result's payload (400/422)."""


class PackageIntegrityError(ClientError):
    """The downloaded package does not match the lease's sha256 or size."""


class BundleIntegrityError(ClientError):
    """A downloaded benchmark bundle does not match the lease's sha256 (the blob store or the
    path between holds something else than the catalog recorded)."""


# ---------------------------------------------------------------------------------- wire types


def _req(obj: Mapping[str, Any], key: str, kind: type[T]) -> T:
    value = obj.get(key)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ProtocolError(f"the lease's {key!r} is missing or not a {kind.__name__}")
    return value


def _obj(obj: Mapping[str, Any], key: str) -> dict[str, Any]:
    return _req(obj, key, dict)


def _optional_sha(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-f]{64}", value.lower()):
        raise ProtocolError(f"the lease's {key!r} is not a sha256")
    return value.lower()


@dataclass(frozen=True)
class PackageRef:
    sha256: str
    size: int
    url: str


@dataclass(frozen=True)
class BenchmarkRef:
    id: str
    version: int
    kind: str
    content_hash: str
    ingest_url: str
    score_url: str
    limits: Limits
    # sha256 of each phase's bundle; None from a server older than the field (then unchecked).
    ingest_sha256: str | None = None
    score_sha256: str | None = None

    @property
    def label(self) -> str:
        return f"{self.id}@{self.version}"


@dataclass(frozen=True)
class EnvironmentRef:
    base: str
    requirements: str | None
    input_hash: str


@dataclass(frozen=True)
class Lease:
    """One leased job, as ``POST /v1/worker/lease`` answered it."""

    job_id: int
    attempt: int
    lease_token: str
    lease_expires_at: str
    lease_ttl_s: float
    kind: str
    seed: int
    submission_id: int
    version: int
    package: PackageRef
    benchmark: BenchmarkRef
    environment: EnvironmentRef
    run_config: dict[str, Any] = field(repr=False)

    @property
    def ref(self) -> dict[str, Any]:
        """The lease reference every later call carries."""
        return {"lease_token": self.lease_token, "attempt": self.attempt}

    @property
    def tag(self) -> str:
        return f"job {self.job_id} attempt {self.attempt}"

    @classmethod
    def from_json(cls, data: Any) -> Lease:
        if not isinstance(data, dict):
            raise ProtocolError("the lease answer is not a JSON object")
        pkg, bench, env = _obj(data, "package"), _obj(data, "benchmark"), _obj(data, "environment")
        content_hash = _req(bench, "content_hash", str)
        sha = _req(pkg, "sha256", str).lower()
        if not _HASH.fullmatch(content_hash) or not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise ProtocolError("the lease's package sha256 or benchmark content hash is malformed")
        requirements = env.get("requirements")
        return cls(
            job_id=_req(data, "job_id", int),
            attempt=_req(data, "attempt", int),
            lease_token=_req(data, "lease_token", str),
            lease_expires_at=str(data.get("lease_expires_at", "")),
            lease_ttl_s=_req(data, "lease_ttl_s", float),
            kind=str(data.get("kind", "")),
            seed=_req(data, "seed", int),
            submission_id=_req(data, "submission_id", int),
            version=_req(data, "version", int),
            package=PackageRef(sha256=sha, size=_req(pkg, "size", int), url=_req(pkg, "url", str)),
            benchmark=BenchmarkRef(
                id=_req(bench, "id", str),
                version=_req(bench, "version", int),
                kind=_req(bench, "kind", str),
                content_hash=content_hash,
                ingest_url=_req(bench, "ingest_url", str),
                score_url=_req(bench, "score_url", str),
                limits=limits_from_json(bench.get("limits") or {}),
                ingest_sha256=_optional_sha(bench, "ingest_sha256"),
                score_sha256=_optional_sha(bench, "score_sha256"),
            ),
            environment=EnvironmentRef(
                base=_req(env, "base", str),
                requirements=requirements if isinstance(requirements, str) else None,
                input_hash=str(env.get("input_hash") or ""),
            ),
            run_config=_obj(data, "run_config"),
        )


def limits_from_json(raw: Mapping[str, Any]) -> Limits:
    """The benchmark's limits; absent or malformed values keep the defaults of ``Limits``."""
    base = Limits()
    values: dict[str, Any] = {}
    for name, kind in (("cpus", float), ("memory_mb", int), ("timeout_s", float), ("pids", int),
                       ("tmpfs_mb", int), ("output_mb", int), ("nofile", int)):
        value = raw.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            continue
        values[name] = kind(value)
    return Limits(**{**base.__dict__, **values})


@dataclass(frozen=True)
class HeartbeatAnswer:
    cancel: bool
    lease_lost: bool = False


@dataclass(frozen=True)
class ResultAck:
    recorded: bool
    duplicate: bool = False
    lease_lost: bool = False
