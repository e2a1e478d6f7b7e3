"""A file cache of rendered charts under ``<data_dir>/cache/plots``.

Keys name what a chart is a pure function of — a verdict id and its scoring version for a seed
plot (a verdict row is never changed in place: re-scoring writes a new row), a board's
generation for a board chart — so a cached file never needs invalidating. A chart is rendered
once, in a worker thread, while concurrent requests for the same key wait for that one render;
files are written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import anyio
from fastapi import Request

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def file_key(*parts: object) -> str:
    """A file-name-safe key; free text (metric names) is hashed, never used as a path."""
    raw = "|".join(str(p) for p in parts)
    readable = _SAFE.sub("_", "-".join(str(p) for p in parts))[:80].strip("._") or "plot"
    return f"{readable}-{hashlib.sha256(raw.encode()).hexdigest()[:16]}"


class PlotCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._locks: dict[str, asyncio.Lock] = {}
        self.renders = 0

    def path(self, group: str, key: str) -> Path:
        return self.root / _SAFE.sub("_", group) / f"{key}.svg"

    async def get(self, group: str, key: str, render: Callable[[], bytes]) -> bytes:
        """The cached chart, rendering it (off the event loop) the first time it is asked for."""
        path = self.path(group, key)
        data = _read(path)
        if data is not None:
            return data
        lock = self._locks.setdefault(f"{group}/{key}", asyncio.Lock())
        async with lock:
            data = _read(path)
            if data is None:
                data = await anyio.to_thread.run_sync(render)
                await anyio.to_thread.run_sync(_write, path, data)
                self.renders += 1
        self._locks.pop(f"{group}/{key}", None)
        return data

    def prune(self, group: str, keep: str, prefix: str) -> None:
        """Remove older charts of one board (files of ``group`` starting ``prefix``)."""
        folder = self.root / _SAFE.sub("_", group)
        for old in folder.glob(f"{prefix}*.svg"):
            if old.stem != keep:
                old.unlink(missing_ok=True)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".svg")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def get_plot_cache(request: Request) -> PlotCache:
    """The app's plot cache, made on first use under the data directory."""
    state = request.app.state
    cache: PlotCache | None = getattr(state, "plot_cache", None)
    if cache is None:
        cache = PlotCache(state.settings.data_dir / "cache" / "plots")
        state.plot_cache = cache
    return cache
