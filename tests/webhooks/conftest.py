"""Webhook tests: settings that allow loopback targets and retry fast, and a loopback receiver.

No test sends anything anywhere but to the receiver it starts on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydantic import Field

from app.core.config import Settings
from app.webhooks.config import WebhookSettings

FAST = WebhookSettings(
    allow_private_targets=True,
    retry_base_s=0.05,
    retry_max_s=0.2,
    poll_interval_s=0.05,
    timeout_s=5,
    max_attempts=3,
)


class WebhookTestSettings(Settings):
    """Settings with the ``webhooks`` group the lead adds to the real class."""

    webhooks: WebhookSettings = Field(default_factory=lambda: FAST)


@pytest.fixture
def settings(database_url: str, tmp_path: Path, benchmarks_dir: Path) -> Settings:
    return WebhookTestSettings(
        environment="test",
        database_url=database_url,
        data_dir=tmp_path / "var",
        benchmarks_dir=benchmarks_dir,
        allow_unsandboxed=True,
        log_level="WARNING",
    )


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A minimal HTTP/1.1 server on 127.0.0.1 that records requests and answers ``statuses``
    in turn (then 200)."""

    statuses: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hook"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in lines[1:] if line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append(Received(method, path, headers, body))
            status = self.statuses.pop(0) if self.statuses else 200
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".encode()
            )
            await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    r.server = await asyncio.start_server(r._handle, "127.0.0.1", 0)
    try:
        yield r
    finally:
        r.server.close()
        await r.server.wait_closed()
