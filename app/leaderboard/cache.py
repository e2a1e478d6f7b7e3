"""Per-process caches of what is costly to derive and changes only with a board's generation.

Rank indexes (every ranked key of a board, sorted), the default metric of command boards and
the reproduction-rate statistics are kept in memory under the generation they were computed
for; a request reads the generation (one primary-key lookup) and reuses the value while it is
unchanged. Several processes each keep their own copy; nothing here needs to be shared.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request

V = TypeVar("V")


class GenerationCache:
    """A small LRU of values, each valid for one generation of its key."""

    def __init__(self, capacity: int = 256) -> None:
        self.capacity = capacity
        self._items: OrderedDict[Hashable, tuple[Hashable, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        # How many submissions were withdrawn when this process last made sure that none of them
        # is left on a board (app.leaderboard.service.current_generation).
        self.withdrawals_seen = -1

    def get(self, key: Hashable, generation: Hashable) -> Any | None:
        with self._lock:
            item = self._items.get(key)
            if item is None or item[0] != generation:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[1]

    def put(self, key: Hashable, generation: Hashable, value: Any) -> None:
        with self._lock:
            self._items[key] = (generation, value)
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    async def get_or_load(
        self, key: Hashable, generation: Hashable, load: Callable[[], Awaitable[V]]
    ) -> V:
        """The cached value for ``generation``, loading (and keeping) it on a miss."""
        value = self.get(key, generation)
        if value is None:
            value = await load()
            self.put(key, generation, value)
        return value


async def get_cache(request: Request) -> GenerationCache:
    """The app's leaderboard cache, made on first use (the app factory knows nothing of it).
    ``async`` although it never awaits: FastAPI runs a plain ``def`` dependency in the
    threadpool, a hop on every board request (docs/performance.md)."""
    state = request.app.state
    cache: GenerationCache | None = getattr(state, "leaderboard_cache", None)
    if cache is None:
        cache = GenerationCache()
        state.leaderboard_cache = cache
    return cache


CacheDep = Annotated[GenerationCache, Depends(get_cache)]
