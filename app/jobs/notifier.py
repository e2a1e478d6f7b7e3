"""Wake long-polling lease requests when jobs are enqueued, without busy polling.

In-process: a broadcast event replaced on every notification. Across API replicas on
PostgreSQL: ``LISTEN reprise_jobs`` on one dedicated connection; enqueues ``NOTIFY`` inside their
transaction, so the notification is delivered exactly when the jobs become visible.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import anyio

logger = logging.getLogger(__name__)

CHANNEL = "reprise_jobs"


class JobNotifier:
    """A broadcast: every waiter wakes on the next ``notify()``."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._listener: Any = None
        self._task: asyncio.Task[None] | None = None

    def notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, seconds: float) -> bool:
        """Wait for the next notification; False after ``seconds``."""
        event = self._event
        with anyio.move_on_after(seconds):
            await event.wait()
            return True
        return False

    async def start_postgres_listener(self, dsn: str) -> None:
        """Listen for enqueues made by any replica (best effort: long-polls also re-check)."""
        self._task = asyncio.create_task(self._listen_forever(dsn))

    async def _listen_forever(self, dsn: str) -> None:
        import asyncpg

        delay = 0.5
        while True:
            try:
                conn = await asyncpg.connect(dsn)
                self._listener = conn
                closed = asyncio.Event()
                conn.add_termination_listener(lambda *_a, ev=closed: ev.set())
                await conn.add_listener(CHANNEL, lambda *_a: self.notify())
                delay = 0.5
                await closed.wait()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("LISTEN %s failed; retrying in %.1fs", CHANNEL, delay, exc_info=True)
            finally:
                if self._listener is not None:
                    with contextlib.suppress(Exception):
                        await self._listener.close()
                    self._listener = None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
