"""A unix socket proxy in front of the Docker daemon whose connections can be cut.

``drop()`` aborts every connection it carries at that moment (requests in flight, ``wait``
long-polls, attach streams). To a worker this is exactly what a daemon restart or a broken
socket looks like -- ``requests.ConnectionError`` from the SDK mid-call -- while the engine and
its containers keep running (as with dockerd's ``live-restore``), so the backend's
reconnect-and-find-by-name path is what gets exercised. It needs no fault flag in production
code, and it does not restart the shared ``dockerd`` that other people's containers run on.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path

DOCKER_SOCKET = "/var/run/docker.sock"


class DockerProxy:
    """A byte-for-byte unix socket proxy to the Docker daemon whose connections can be cut."""

    def __init__(self, path: Path, upstream: str = DOCKER_SOCKET) -> None:
        self.path = path
        self.upstream = upstream
        self.dropped = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._active: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="docker-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the Docker proxy did not start")

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._server = loop.run_until_complete(
            asyncio.start_unix_server(self._handle, path=str(self.path))
        )
        self.path.chmod(0o600)
        self._ready.set()
        loop.run_forever()
        self._server.close()
        loop.run_until_complete(self._server.wait_closed())
        loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(self.upstream)
        except OSError:
            writer.close()
            return
        pair = (writer, up_writer)
        self._active.add(pair)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(1 << 16):
                    dst.write(data)
                    await dst.drain()
                if dst.can_write_eof():
                    dst.write_eof()
            except (ConnectionError, OSError, RuntimeError):
                dst.transport.abort()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            self._active.discard(pair)
            for w in pair:
                w.transport.abort()

    def drop(self) -> int:
        """Abort every connection open right now; returns how many were cut."""
        assert self._loop is not None
        done = threading.Event()
        count = [0]

        def cut() -> None:
            count[0] = len(self._active)
            for pair in list(self._active):
                for w in pair:
                    w.transport.abort()
            done.set()

        self._loop.call_soon_threadsafe(cut)
        done.wait(5)
        self.dropped += count[0]
        return count[0]

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        with contextlib.suppress(OSError):
            self.path.unlink()
