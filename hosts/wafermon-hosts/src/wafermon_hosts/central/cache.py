"""A short-lived answer cache keyed by (site, path + query), with single-flight fetching.

Invalidation is by age only: an entry is served for ``ttl`` seconds after its answer arrived,
then fetched again. Nothing else invalidates it, because central never writes to a gateway;
a client that must see the newest state sends ``Cache-Control: no-cache``, which skips the
lookup (and stores the fresh answer for others). Only complete 200 answers are stored, so a
failing site is asked again on the next request. The cache holds at most ``max_entries``
answers and drops the least recently used first.

Single flight: while one request for a key is on its way to the gateway, identical requests
wait for that answer instead of sending their own, so a dashboard refreshing many panels at
once costs each gateway one request per distinct query.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

Key = tuple[str, str]


class AnswerCache:
    def __init__(self, ttl: float, max_entries: int, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[Key, tuple[float, Any]] = OrderedDict()
        self._inflight: dict[Key, asyncio.Future[Any]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Key) -> tuple[bool, Any]:
        """(True, value) for a fresh entry, else (False, None); expired entries are dropped."""
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        stored_at, value = entry
        if self.clock() - stored_at >= self.ttl:
            del self._entries[key]
            return False, None
        self._entries.move_to_end(key)
        return True, value

    def put(self, key: Key, value: Any) -> None:
        if self.ttl <= 0:
            return
        self._entries[key] = (self.clock(), value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    async def fetch(
        self,
        key: Key,
        load: Callable[[], Awaitable[Any]],
        *,
        cacheable: Callable[[Any], bool],
        refresh: bool = False,
    ) -> tuple[Any, bool]:
        """(value, from_cache): a fresh cached value, or ``load()`` shared with identical
        requests in flight; stored when ``cacheable(value)``. ``refresh`` skips the lookup.

        The load runs as its own task, so a caller that goes away (a client disconnecting)
        does not cancel the answer others are waiting for."""
        if not refresh:
            hit, value = self.get(key)
            if hit:
                return value, True
        task = None if refresh else self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._load(key, load, cacheable))
            self._inflight[key] = task
        return await asyncio.shield(task), False

    async def _load(
        self, key: Key, load: Callable[[], Awaitable[Any]], cacheable: Callable[[Any], bool]
    ) -> Any:
        try:
            value = await load()
            if cacheable(value):
                self.put(key, value)
            return value
        finally:
            if self._inflight.get(key) is asyncio.current_task():
                del self._inflight[key]
