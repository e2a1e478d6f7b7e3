"""The delivery loop: drain due ``webhook_delivery`` rows, sign, POST, record, back off.

One loop per API process, started by the webhooks router's lifespan (FastAPI merges a router's
lifespan into the app's, inside it: the database is up before the loop starts and still up
when it stops). The table is the queue, so nothing is lost on a restart, and several processes
may drain it at once: a delivery is claimed by compare-and-set and locked for ``lease_s``; a
lock that lapses (a crashed process) makes it due again. A commit that queued deliveries wakes
the loop at once; retries wait for their time, checked every ``poll_interval_s``.

Retries: attempt n failing waits ``min(retry_max_s, retry_base_s × 2^(n−1))``; after
``max_attempts`` the delivery is ``failed``. Only a 2xx answer counts as delivered; redirects
are not followed; the answer's body is never read.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx

from app import __version__
from app.core.db import Database, utcnow
from app.webhooks import events, repository, ssrf
from app.webhooks.config import WebhookSettings
from app.webhooks.models import DeliveryStatus
from app.webhooks.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    canonical_body,
    signature_header,
)

logger = logging.getLogger(__name__)

MAX_ERROR_CHARS = 500


def backoff_s(attempt: int, config: WebhookSettings) -> float:
    """Delay after failed attempt ``attempt`` (1-based)."""
    return float(min(config.retry_max_s, config.retry_base_s * 2 ** max(0, attempt - 1)))


@dataclass(frozen=True)
class _Job:
    delivery_id: int
    attempt: int
    event: str
    event_id: str
    payload: dict[str, Any]
    url: str
    secret: str
    active: bool


@dataclass(frozen=True)
class _Outcome:
    ok: bool
    status_code: int | None
    error: str | None
    address: str | None
    duration_ms: float


class Deliverer:
    """Drains the delivery table in the background of one API process."""

    def __init__(
        self,
        db: Database,
        config: WebhookSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: ssrf.Resolver | None = None,
    ) -> None:
        self._db = db
        self.config = config
        self._transport = transport
        self._resolver = resolver
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._client = httpx.AsyncClient(
            transport=self._transport,
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment: we connect to the vetted address
            timeout=httpx.Timeout(self.config.timeout_s),
            # A connection per delivery: pooled ones are keyed by the pinned address, and a TLS
            # session set up for one host name must not carry another's request.
            limits=httpx.Limits(max_keepalive_connections=0),
            headers={"User-Agent": f"Reprise-Webhooks/{__version__}"},
        )
        events.register_waker(self.wake)
        self._task = asyncio.create_task(self._run(), name="webhook-delivery")

    async def stop(self) -> None:
        """Let the current pass finish (a transaction cut in half leaves a connection behind),
        then stop; cancel only if it overruns a delivery's timeout."""
        events.unregister_waker(self.wake)
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), self.config.timeout_s + 5)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                busy = await self.drain()
            except Exception:
                logger.exception("webhook delivery pass failed")
                busy = 0
            if busy or self._stopping:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.config.poll_interval_s)

    async def drain(self) -> int:
        """Deliver what is due now, once each; the number attempted."""
        jobs = await self._claim()
        if not jobs:
            return 0
        limit = asyncio.Semaphore(self.config.concurrency)

        async def one(job: _Job) -> None:
            async with limit:
                outcome = await self._send(job)
                await self._record(job, outcome)

        await asyncio.gather(*(one(j) for j in jobs))
        return len(jobs)

    async def _claim(self) -> list[_Job]:
        now = utcnow()
        locked_until = now + dt.timedelta(seconds=self.config.lease_s)
        async with self._db.session() as session:  # a read first: idle polls take no write lock
            ids = await repository.due_delivery_ids(session, now, self.config.batch)
        if not ids:
            return []
        async with self._db.session(write=True) as session:
            mine = [i for i in ids if await repository.claim(session, i, now, locked_until)]
            rows = await repository.deliveries_with_webhooks(session, mine)
            return [
                _Job(
                    delivery_id=d.id,
                    attempt=d.attempts,
                    event=d.event,
                    event_id=d.event_id,
                    payload=dict(d.payload),
                    url=w.url,
                    secret=w.secret,
                    active=w.active,
                )
                for d, w in rows
            ]

    async def _send(self, job: _Job) -> _Outcome:
        started = time.perf_counter()
        address: str | None = None

        def done(ok: bool, code: int | None, error: str | None) -> _Outcome:
            elapsed = round((time.perf_counter() - started) * 1000, 1)
            return _Outcome(ok, code, error and error[:MAX_ERROR_CHARS], address, elapsed)

        if not job.active:
            return done(False, None, "the webhook is paused")
        assert self._client is not None
        try:
            target = await ssrf.vet(
                job.url,
                allow_private=self.config.allow_private_targets,
                resolver=self._resolver,
            )
            address = target.address
            body = canonical_body(job.payload)
            headers = {
                "Content-Type": "application/json",
                "Host": target.url.netloc.decode("ascii"),
                EVENT_HEADER: job.event,
                DELIVERY_HEADER: job.event_id,
                SIGNATURE_HEADER: signature_header(job.secret, body),
            }
            extensions = {"sni_hostname": target.host} if target.url.scheme == "https" else {}
            async with asyncio.timeout(self.config.timeout_s):
                async with self._client.stream(
                    "POST", target.pinned_url, content=body, headers=headers, extensions=extensions
                ) as response:
                    code = response.status_code
        except ssrf.TargetRefused as exc:
            return done(False, None, f"refused: {exc}")
        except TimeoutError:
            return done(False, None, f"no answer within {self.config.timeout_s:g} s")
        except httpx.HTTPError as exc:
            return done(False, None, f"{type(exc).__name__}: {exc}")
        if 200 <= code < 300:
            return done(True, code, None)
        return done(False, code, f"the receiver answered HTTP {code}")

    async def _record(self, job: _Job, outcome: _Outcome) -> None:
        now = utcnow()
        async with self._db.session(write=True) as session:
            delivery = await repository.get_delivery(session, job.delivery_id)
            if delivery is None:  # the webhook was deleted meanwhile
                return
            delivery.log = [
                *delivery.log,
                {
                    "attempt": job.attempt,
                    "at": now.isoformat(),
                    "status_code": outcome.status_code,
                    "error": outcome.error,
                    "address": outcome.address,
                    "duration_ms": outcome.duration_ms,
                },
            ]
            delivery.last_status_code = outcome.status_code
            delivery.last_error = outcome.error
            delivery.locked_until = None
            if outcome.ok:
                delivery.status = DeliveryStatus.succeeded.value
                delivery.delivered_at = now
            elif job.attempt >= self.config.max_attempts:
                delivery.status = DeliveryStatus.failed.value
            else:
                delivery.status = DeliveryStatus.pending.value
                delivery.next_attempt_at = now + dt.timedelta(
                    seconds=backoff_s(job.attempt, self.config)
                )
        if not outcome.ok:
            logger.info(
                "webhook delivery %s attempt %s failed: %s",
                job.delivery_id,
                job.attempt,
                outcome.error,
            )
