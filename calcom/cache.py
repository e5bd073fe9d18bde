"""A small TTL cache with single-flight: concurrent lookups of one key share one load.

Slot answers are cached for 45 s under (event type, window, zone). Failures are not cached;
every caller that joined the failed load gets the error. A booking made through this process drops the
event type's entries (`invalidate`), so our own bookings never show up as free slots.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from telemetry import metrics

V = TypeVar("V")


@dataclass
class CacheStats:
    hits: int = 0  # answered from a stored entry
    joined: int = 0  # answered by a load already in flight (single-flight)
    misses: int = 0  # had to load
    evictions: int = 0

    @property
    def lookups(self) -> int:
        return self.hits + self.joined + self.misses


@dataclass
class _Entry(Generic[V]):
    expires_at: float
    value: V


class TTLCache(Generic[V]):
    def __init__(
        self,
        ttl_seconds: float = 45.0,
        *,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[Hashable, _Entry[V]] = OrderedDict()
        self._inflight: dict[Hashable, asyncio.Future[V]] = {}
        self._generation = 0
        self.stats = CacheStats()

    def __len__(self) -> int:
        return len(self._entries)

    async def get_or_load(self, key: Hashable, load: Callable[[], Awaitable[V]]) -> V:
        entry = self._entries.get(key)
        if entry is not None:
            if entry.expires_at > self._clock():
                self._entries.move_to_end(key)
                self.stats.hits += 1
                metrics.CALCOM_CACHE_LOOKUPS.labels("hit").inc()
                return entry.value
            del self._entries[key]
        pending = self._inflight.get(key)
        if pending is not None:
            self.stats.joined += 1
            metrics.CALCOM_CACHE_LOOKUPS.labels("joined").inc()
            return await asyncio.shield(pending)
        self.stats.misses += 1
        metrics.CALCOM_CACHE_LOOKUPS.labels("miss").inc()
        task = asyncio.ensure_future(self._load(key, load))
        task.add_done_callback(_retrieve)
        self._inflight[key] = task
        # shield: a cancelled caller must not cancel the load the other callers are waiting for.
        return await asyncio.shield(task)

    async def _load(self, key: Hashable, load: Callable[[], Awaitable[V]]) -> V:
        generation = self._generation
        started = self._clock()
        try:
            value = await load()
        finally:
            self._inflight.pop(key, None)
        if generation == self._generation:  # nothing was invalidated while we were loading
            self._entries[key] = _Entry(started + self.ttl_seconds, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
                self.stats.evictions += 1
        return value

    def invalidate(self, predicate: Callable[[Hashable], bool] | None = None) -> int:
        """Drop the entries whose key matches (all without a predicate); loads in flight are not stored."""
        self._generation += 1
        doomed = [key for key in self._entries if predicate is None or predicate(key)]
        for key in doomed:
            del self._entries[key]
        return len(doomed)


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Mark the exception as seen even when every waiter was cancelled (no 'never retrieved' noise)."""
    if not task.cancelled():
        task.exception()
