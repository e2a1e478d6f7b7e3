"""The worker side of the protocol (docs/worker-protocol.md) over a synchronous ``httpx.Client``.

A connection error, a timeout, a ``5xx`` or a ``429`` is retried with exponential backoff and
jitter (0.5 s doubling to 30 s, ±25 %), so an API restart never kills a worker; any other ``4xx``
is final. Exceptions::

    ClientError                    a call failed for good
    ├── ServerUnavailable          retries ran out (budget spent, or the caller aborted)
    ├── ProtocolError              a 4xx, or an answer that does not follow the protocol
    │   ├── Unauthorized           401/403: the token is wrong, revoked or not a worker token
    │   ├── LeaseLost              409 (or 404) on a job call: stop, clean up, post nothing
    │   └── ResultRejected         400/422 on a result: the payload broke the schema
    ├── PackageIntegrityError      the package's sha256 or size is not what the lease says
    └── BundleIntegrityError       a benchmark bundle's sha256 is not what the lease says
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO, Literal, TypeVar, cast

import httpx

from runners.archives import ArchiveLimits, extract_tar_stream
from runners.protocol import (
    BenchmarkRef,
    BundleIntegrityError,
    ClientError,
    EnvironmentRef,
    HeartbeatAnswer,
    Lease,
    LeaseLost,
    PackageIntegrityError,
    PackageRef,
    ProtocolError,
    ResultAck,
    ResultRejected,
    ServerUnavailable,
    Unauthorized,
    limits_from_json,
)

log = logging.getLogger(__name__)

__all__ = [  # with the protocol types, re-exported from runners.protocol
    "BUNDLE_LIMITS",
    "Backoff",
    "BenchmarkRef",
    "BundleIntegrityError",
    "ClientError",
    "EnvironmentRef",
    "HeartbeatAnswer",
    "Lease",
    "LeaseLost",
    "PackageIntegrityError",
    "PackageRef",
    "ProtocolError",
    "ResultAck",
    "ResultRejected",
    "ServerClient",
    "ServerUnavailable",
    "Unauthorized",
    "limits_from_json",
    "worker_version",
]

T = TypeVar("T")
Phase = Literal["ingest", "score"]
# A benchmark bundle is trusted (it comes from the catalog), but is still unpacked with caps.
BUNDLE_LIMITS = ArchiveLimits(
    max_archive_bytes=64 * 2**30,
    max_total_bytes=16 * 2**30,
    max_entries=200_000,
    max_entry_bytes=8 * 2**30,
    max_depth=64,
)
_NEVER = threading.Event()  # an abort that is never set: results and releases are not abandoned
_CHUNK = 1 << 16


def worker_version() -> str:
    try:
        return metadata.version("reprise")
    except metadata.PackageNotFoundError:
        return "0+unknown"


# ---------------------------------------------------------------------------------- backoff


@dataclass
class Backoff:
    """Exponential delays with ±``jitter`` relative jitter: 0.5, 1, 2, ... up to ``maximum``."""

    initial: float = 0.5
    maximum: float = 30.0
    jitter: float = 0.25
    rng: random.Random = field(default_factory=random.Random)

    def delays(self) -> Iterator[float]:
        delay = self.initial
        while True:
            yield delay * self.rng.uniform(1 - self.jitter, 1 + self.jitter)
            delay = min(delay * 2, self.maximum)


class _Retry(Exception):
    """A retryable failure (internal): connection error, timeout, 5xx, 429."""

    def __init__(self, message: str, after: float | None = None) -> None:
        super().__init__(message)
        self.after = after


# ---------------------------------------------------------------------------------- the client


class ServerClient:
    """The protocol calls a worker makes, each retried as the protocol says. Thread-safe."""

    def __init__(
        self,
        server: str,
        token: str,
        *,
        wait_s: float = 20.0,
        backoff: Backoff | None = None,
        transport: httpx.BaseTransport | None = None,
        abort: threading.Event | None = None,
    ) -> None:
        self.server = server.rstrip("/")
        self.wait_s = wait_s
        self.backoff = backoff or Backoff()
        self.abort = abort  # set: stop retrying (shutdown); calls then raise ServerUnavailable
        self._http = httpx.Client(
            base_url=self.server,
            headers={
                "Authorization": f"Bearer {token}",
                "User-Agent": f"reprise-worker/{worker_version()}",
            },
            timeout=httpx.Timeout(connect=5.0, read=wait_s + 10.0, write=30.0, pool=30.0),
            transport=transport,
            follow_redirects=False,
        )
        self._bundle_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ServerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the retry engine

    def _call(
        self,
        what: str,
        attempt: Callable[[], T],
        *,
        budget_s: float | None,
        abort: threading.Event | None = None,
    ) -> T:
        """Run ``attempt`` until it returns or raises a final error; retry ``_Retry`` failures."""
        stop = abort or self.abort
        deadline = None if budget_s is None else time.monotonic() + budget_s
        delays = self.backoff.delays()
        tries = 0
        while True:
            tries += 1
            try:
                return attempt()
            except _Retry as exc:
                delay = next(delays)
                if exc.after is not None:
                    delay = max(delay, min(exc.after, self.backoff.maximum))
                if deadline is not None:
                    delay = min(delay, deadline - time.monotonic())
                if delay <= 0 or (stop is not None and stop.is_set()):
                    raise ServerUnavailable(
                        f"{what}: {exc} (gave up after {tries} tries)"
                    ) from None
                log.log(logging.INFO if tries == 1 else logging.DEBUG,
                        "%s: %s; retrying in %.1f s", what, exc, delay)
                if stop is not None:
                    if stop.wait(delay):
                        raise ServerUnavailable(f"{what}: {exc} (aborted)") from None
                else:
                    time.sleep(delay)

    @contextlib.contextmanager
    def _transport_errors(self) -> Iterator[None]:
        try:
            yield
        except httpx.TimeoutException as exc:
            raise _Retry(f"timed out ({type(exc).__name__})") from exc
        except (httpx.TransportError, httpx.DecodingError) as exc:  # connect, read, protocol
            raise _Retry(f"connection failed ({type(exc).__name__}: {exc})") from exc

    def _check(self, response: httpx.Response, what: str, *, job: bool = False) -> None:
        """Raise for anything but 2xx: ``_Retry`` for 5xx/429, a ``ProtocolError`` otherwise."""
        status = response.status_code
        if status < 300:
            return
        if status >= 500 or status == 429:
            after = _retry_after(response.headers.get("Retry-After"))
            raise _Retry(f"HTTP {status}", after)
        detail = _problem_detail(response)
        message = f"{what}: HTTP {status}: {detail}"
        if status in (401, 403):
            raise Unauthorized(message, status, detail)
        if job and status in (404, 409):
            raise LeaseLost(message, status, detail)
        if status in (400, 422) and what.startswith("result"):
            raise ResultRejected(message, status, detail)
        raise ProtocolError(message, status, detail)

    def _json(
        self, what: str, method: str, url: str, body: dict[str, Any], *, job: bool,
        budget_s: float | None, abort: threading.Event | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> tuple[int, Any]:
        def attempt() -> tuple[int, Any]:
            with self._transport_errors():
                if timeout is not None:
                    response = self._http.request(method, url, json=body, timeout=timeout)
                else:
                    response = self._http.request(method, url, json=body)
                self._check(response, what, job=job)
                if response.status_code == 204 or not response.content:
                    return response.status_code, None
                try:
                    return response.status_code, response.json()
                except ValueError:
                    raise ProtocolError(f"{what}: the answer is not JSON", 200) from None

        return self._call(what, attempt, budget_s=budget_s, abort=abort)

    # ------------------------------------------------------------------ the calls

    def lease(
        self,
        worker_id: str,
        labels: Mapping[str, str],
        wait_s: float | None = None,
        backend: str = "other",
        *,
        abort: threading.Event | None = None,
        budget_s: float | None = None,
    ) -> Lease | None:
        """Long-poll for a job; ``None`` when none arrived within ``wait_s`` (HTTP 204)."""
        wait = self.wait_s if wait_s is None else wait_s
        body = {
            "worker_id": worker_id,
            "labels": dict(labels),
            "wait_s": wait,
            "backend": backend if backend in ("docker", "local", "fake") else "other",
        }
        timeout = httpx.Timeout(connect=5.0, read=wait + 10.0, write=30.0, pool=30.0)
        status, data = self._json("lease", "POST", "/v1/worker/lease", body, job=False,
                                  budget_s=budget_s, abort=abort, timeout=timeout)
        if status == 204 or data is None:
            return None
        return Lease.from_json(data)

    def heartbeat(
        self, lease: Lease, phase: str | None = None, log_tail: str | None = None,
        *, budget_s: float | None = None,
    ) -> HeartbeatAnswer:
        """Extend the lease; ``cancel`` asks the job to stop, ``lease_lost`` to stop silently."""
        body: dict[str, Any] = {**lease.ref}
        if phase is not None:
            body["phase"] = phase
        if log_tail is not None:
            body["log_tail"] = log_tail[-65536:]
        try:
            _, data = self._json(f"heartbeat ({lease.tag})", "POST",
                                 f"/v1/worker/jobs/{lease.job_id}/heartbeat", body, job=True,
                                 budget_s=budget_s)
        except LeaseLost:
            return HeartbeatAnswer(cancel=False, lease_lost=True)
        if not isinstance(data, dict):
            raise ProtocolError("heartbeat: the answer is not a JSON object")
        return HeartbeatAnswer(cancel=data.get("cancel") is True)

    def post_result(
        self, lease: Lease, payload: Mapping[str, Any], *, budget_s: float | None = 900.0,
        abort: threading.Event | None = None,
    ) -> ResultAck:
        """Record the job's result; a stale lease gives ``lease_lost`` (quietly), a retry after a
        lost answer gives ``duplicate``."""
        body = {**payload, **lease.ref}
        try:
            _, data = self._json(f"result ({lease.tag})", "POST",
                                 f"/v1/worker/jobs/{lease.job_id}/result", body, job=True,
                                 budget_s=budget_s, abort=abort or _NEVER)
        except LeaseLost:
            return ResultAck(recorded=False, lease_lost=True)
        data = data if isinstance(data, dict) else {}
        return ResultAck(recorded=data.get("recorded") is True,
                         duplicate=data.get("duplicate") is True)

    def release(
        self, lease: Lease, *, budget_s: float | None = 30.0, abort: threading.Event | None = None,
    ) -> bool:
        """Hand an unfinished lease back without spending an attempt; False if already gone."""
        try:
            self._json(f"release ({lease.tag})", "POST",
                       f"/v1/worker/jobs/{lease.job_id}/release", dict(lease.ref), job=True,
                       budget_s=budget_s, abort=abort or _NEVER)
        except LeaseLost:
            return False
        return True

    # ------------------------------------------------------------------ downloads

    @contextlib.contextmanager
    def _stream(self, what: str, url: str, lease: Lease) -> Iterator[httpx.Response]:
        # ``params=`` would replace the query the URL already has (``?phase=score``): merge.
        target = httpx.URL(url).copy_merge_params(
            {"lease_token": lease.lease_token, "attempt": str(lease.attempt)})
        with self._transport_errors(), self._http.stream("GET", target) as response:
            if response.status_code >= 300:
                response.read()
            self._check(response, what, job=True)
            yield response

    def download_package(
        self, lease: Lease, dest: Path, *, budget_s: float | None = 600.0,
        abort: threading.Event | None = None,
    ) -> Path:
        """Stream the package to ``dest``, checking size and sha256 on the fly."""
        what = f"package ({lease.tag})"
        expected = lease.package

        def attempt() -> Path:
            digest = hashlib.sha256()
            written = 0
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
            with self._stream(what, expected.url, lease) as response, \
                    os.fdopen(os.open(dest, flags, 0o600), "wb") as out:
                for chunk in response.iter_bytes(_CHUNK):
                    written += len(chunk)
                    if written > expected.size:
                        raise PackageIntegrityError(
                            f"the package is larger than the {expected.size} B the lease names")
                    digest.update(chunk)
                    out.write(chunk)
            if written != expected.size or digest.hexdigest() != expected.sha256:
                raise PackageIntegrityError(
                    f"the package does not match the lease: sha256 {digest.hexdigest()} "
                    f"({written} B), expected {expected.sha256} ({expected.size} B)")
            return dest

        try:
            return self._call(what, attempt, budget_s=budget_s, abort=abort)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise

    def download_benchmark(
        self, lease: Lease, phase: Phase, cache_dir: Path, *, budget_s: float | None = 600.0,
        abort: threading.Event | None = None,
    ) -> Path:
        """The unpacked bundle for ``phase`` (harness/, train/, test/ for score), from the cache
        ``cache_dir/<content_hash>-<phase>`` or downloaded into it; safe for concurrent jobs."""
        if phase not in ("ingest", "score"):
            raise ValueError(f"phase {phase!r}")
        key = f"{lease.benchmark.content_hash}-{phase}"
        final = cache_dir / key
        with self._bundle_lock(key):
            if final.is_dir():
                return final
            cache_dir.mkdir(parents=True, exist_ok=True)
            bench = lease.benchmark
            url = bench.score_url if phase == "score" else bench.ingest_url
            expected = bench.score_sha256 if phase == "score" else bench.ingest_sha256
            what = f"benchmark {phase} bundle ({lease.tag})"

            def attempt() -> Path:
                staging = cache_dir / f".{key}.{uuid.uuid4().hex[:12]}"
                with self._stream(what, url, lease) as response:
                    etag = response.headers.get("ETag", "").strip('"').removeprefix("W/").strip('"')
                    if etag and etag != key:
                        raise ProtocolError(f"{what}: ETag {etag!r} is not {key!r}")
                    reader = _ResponseReader(response)
                    try:
                        extract_tar_stream(cast(BinaryIO, reader), staging, BUNDLE_LIMITS)
                        reader.drain()  # the hash covers the whole body, trailer included
                        if expected is not None and reader.digest.hexdigest() != expected:
                            raise BundleIntegrityError(
                                f"{what}: sha256 {reader.digest.hexdigest()}, the lease says "
                                f"{expected}; not used")
                    except BaseException:
                        shutil.rmtree(staging, ignore_errors=True)
                        raise
                try:
                    staging.chmod(0o755)  # the sandbox user (65534 in a container) reads it
                    os.rename(staging, final)  # atomic; fails if another process won the race
                except OSError:
                    shutil.rmtree(staging, ignore_errors=True)
                    if not final.is_dir():
                        raise
                return final

            return self._call(what, attempt, budget_s=budget_s, abort=abort)

    def _bundle_lock(self, key: str) -> threading.Lock:
        with self._locks_guard:
            return self._bundle_locks.setdefault(key, threading.Lock())


class _ResponseReader:
    """A read()-able view of a streamed response, for ``extract_tar_stream``."""

    def __init__(self, response: httpx.Response) -> None:
        self._chunks = response.iter_bytes(_CHUNK)
        self._buffer = b""
        self.digest = hashlib.sha256()  # of every byte received

    def read(self, size: int = -1, /) -> bytes:
        while size < 0 or len(self._buffer) < size:
            try:
                with _as_retry():
                    chunk = next(self._chunks)
            except StopIteration:
                break
            self.digest.update(chunk)
            self._buffer += chunk
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def drain(self) -> None:
        """Receive (and hash) what the reader's consumer left unread."""
        while self.read(_CHUNK):
            pass


@contextlib.contextmanager
def _as_retry() -> Iterator[None]:
    try:
        yield
    except httpx.TimeoutException as exc:
        raise _Retry(f"timed out mid-download ({type(exc).__name__})") from exc
    except (httpx.TransportError, httpx.DecodingError) as exc:
        raise _Retry(f"connection failed mid-download ({type(exc).__name__}: {exc})") from exc


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _problem_detail(response: httpx.Response) -> str:
    """The problem+json ``detail`` (or ``title``), else the start of the body."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(data, dict):
        return str(data.get("detail") or data.get("title") or data)[:500]
    return str(data)[:200]

