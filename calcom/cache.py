"""The one TTL cache with single-flight of the engine: concurrent lookups of one key share one load.

Storage and expiry are `cachetools.TTLCache` (least recently used entries go first when it is full); what
is added here is the single-flight (one load per key in flight, joined by every other caller), not caching
failures, and invalidation that also keeps loads in flight from storing what they read before it.

Two caches use it: Cal.com's slot answers (45 s under (event type, window, zone); a booking made through
this process drops the event type's entries, so our own bookings never show up as free slots,
`calcom/finder.py`) and the console's pending badge (per company, `console/badge.py`). The settings
caches need no single-flight and use `cachetools.TTLCache` directly (`store/settings_cache.py`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import cachetools

V = TypeVar("V")


class LookupCounter(Protocol):
    """Where lookups are counted by result (a Prometheus counter labelled hit / joined / miss)."""

    def labels(self, result: str) -> Any: ...


@dataclass
class CacheStats:
    hits: int = 0  # answered from a stored entry
    joined: int = 0  # answered by a load already in flight (single-flight)
    misses: int = 0  # had to load

    @property
    def lookups(self) -> int:
        return self.hits + self.joined + self.misses


class TTLCache(Generic[V]):
    def __init__(
        self,
        ttl_seconds: float = 45.0,
        *,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        lookups: LookupCounter | None = None,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._entries: cachetools.TTLCache[Hashable, V] = cachetools.TTLCache(
            max_entries, ttl_seconds, timer=clock
        )
        self._inflight: dict[Hashable, asyncio.Future[V]] = {}
        self._generation = 0
        self._lookups = lookups
        self.stats = CacheStats()

    def __len__(self) -> int:
        return len(self._entries)

    def _count(self, result: str) -> None:
        """One lookup answered as `result`: hit, joined or miss."""
        if result == "hit":
            self.stats.hits += 1
        elif result == "joined":
            self.stats.joined += 1
        else:
            self.stats.misses += 1
        if self._lookups is not None:
            self._lookups.labels(result).inc()

    async def get_or_load(self, key: Hashable, load: Callable[[], Awaitable[V]]) -> V:
        missing = object()
        value = self._entries.get(key, missing)
        if value is not missing:
            self._count("hit")
            return value  # type: ignore[return-value]
        pending = self._inflight.get(key)
        if pending is not None:
            self._count("joined")
            return await asyncio.shield(pending)
        self._count("miss")
        task = asyncio.ensure_future(self._load(key, load))
        task.add_done_callback(_retrieve)
        self._inflight[key] = task
        # shield: a cancelled caller must not cancel the load the other callers are waiting for.
        return await asyncio.shield(task)

    async def _load(self, key: Hashable, load: Callable[[], Awaitable[V]]) -> V:
        generation = self._generation
        try:
            value = await load()
        finally:
            self._inflight.pop(key, None)
        if generation == self._generation:  # nothing was invalidated while we were loading
            self._entries[key] = value
        return value

    def invalidate(self, predicate: Callable[[Hashable], bool] | None = None) -> int:
        """Drop the entries whose key matches (all without a predicate); loads in flight are not stored."""
        self._generation += 1
        doomed = [key for key in list(self._entries) if predicate is None or predicate(key)]
        for key in doomed:
            self._entries.pop(key, None)
        return len(doomed)


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Mark the exception as seen even when every waiter was cancelled (no 'never retrieved' noise)."""
    if not task.cancelled():
        task.exception()
