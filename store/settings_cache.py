"""The in-process cache of hierarchical settings and its cross-process invalidation (docs/design.md §3.5).

Policies and notification settings are cached the same way, one `SettingsCache` per table, so a new
table of hierarchical settings gets the same guarantees by declaring its `ChangeFeed`.

What is cached: per (company, topic) — a policy type, an event type — every active configuration of that
company (a *snapshot*), plus the merged setting of each entity set resolved from it. A hit is two
dictionary look-ups; a company's snapshot is one query, however many of its entities are resolved after.

Invalidation: a trigger on each table NOTIFYs its channel inside the changing transaction (migrations
0002 and 0004). Each process keeps one `SettingsListener` on its own asyncpg connection that LISTENs on
the channels of all its caches and drops a company's snapshots when a notification arrives. Safety rules:

- A cache serves and stores nothing while its listener is not connected (a notification could be
  missed), and it is cleared whenever the listener (re)connects.
- A snapshot is stored only if no invalidation of its company happened while it was being loaded
  (generation check), so a read that raced with a change never caches the old state.
- Entries expire after the TTL (300 s) in any case (`cachetools.TTLCache`, which also bounds the number of
  snapshots and drops the least recently used first).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg
import cachetools
from sqlalchemy.engine import URL

from rules.policy_merge import MergedPolicy, layers_for, merge_layers
from store.db import async_url

log = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS = 300.0
MAX_SNAPSHOTS = 100_000
# The facet of a topic that is not split any further (a policy type is one setting per entity).
WHOLE = ""

# (level, configurable_id) -> the keys that level sets
Configs = dict[tuple[str, str], dict[str, Any]]
# facet (a notification channel, or WHOLE) -> Configs
Sections = dict[str, Configs]


class LookupCounter(Protocol):
    """What a cache reports its hits and misses to (a Prometheus counter labelled by result)."""

    def labels(self, result: str) -> Any: ...


@dataclass(frozen=True)
class ChangeFeed:
    """How one table announces its changes: the NOTIFY channel and the payload key naming the topic."""

    table: str
    channel: str
    topic_key: str
    lookups: LookupCounter


@dataclass
class Snapshot:
    """All active configurations of one company and topic, and the merges made from them."""

    sections: Sections
    merged: dict[tuple[str, tuple[tuple[str, str], ...]], MergedPolicy] = field(default_factory=dict)

    def resolve(self, entities: Mapping[str, str], facet: str = WHOLE) -> MergedPolicy:
        key = (facet, tuple(entities.items()))
        found = self.merged.get(key)
        if found is None:
            found = merge_layers(layers_for(self.sections.get(facet, {}), entities))
            self.merged[key] = found
        return found

    def configs(self, facet: str = WHOLE) -> Configs:
        return self.sections.get(facet, {})


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int
    invalidations: int
    snapshots: int
    listening: bool

    @property
    def hit_ratio(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


def _asyncpg_dsn(url: URL) -> dict[str, Any]:
    """asyncpg's connect() arguments for a SQLAlchemy URL (a Unix socket comes as `?host=/path`)."""
    query = dict(url.query)
    return {
        "host": query.get("host", url.host),
        "port": url.port,
        "user": url.username,
        "password": url.password,
        "database": url.database,
    }


class SettingsCache:
    """Snapshots of one table keyed by (company_id, topic); usable only while `enabled` (listener up)."""

    def __init__(
        self,
        feed: ChangeFeed,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.feed = feed
        self.ttl = ttl_seconds
        self._snapshots: cachetools.TTLCache[tuple[int, str], Snapshot] = cachetools.TTLCache(
            MAX_SNAPSHOTS, ttl_seconds, timer=clock
        )
        self._generations: dict[int, int] = {}
        self._epoch = 0
        self.enabled = False
        self.hits = 0
        self.misses = 0
        self.invalidations = 0
        self._changed = asyncio.Condition()

    # --- reads ---------------------------------------------------------------------------------

    def get(self, company_id: int, topic: str) -> Snapshot | None:
        """The live snapshot, or None (counted as a miss by the caller through `count`)."""
        if not self.enabled:
            return None
        return self._snapshots.get((company_id, topic))

    def count(self, *, hits: int = 0, misses: int = 0) -> None:
        self.hits += hits
        self.misses += misses
        if hits:
            self.feed.lookups.labels("hit").inc(hits)
        if misses:
            self.feed.lookups.labels("miss").inc(misses)

    def token(self, company_id: int) -> tuple[int, int]:
        """Taken before a load; `put` stores the loaded snapshot only if the token is still current."""
        return (self._epoch, self._generations.get(company_id, 0))

    def put(self, company_id: int, topic: str, sections: Sections, token: tuple[int, int]) -> Snapshot:
        snapshot = Snapshot(sections)
        if self.enabled and token == self.token(company_id):
            self._snapshots[(company_id, topic)] = snapshot
        return snapshot

    def stats(self) -> CacheStats:
        return CacheStats(self.hits, self.misses, self.invalidations, len(self._snapshots), self.enabled)

    # --- invalidation --------------------------------------------------------------------------

    def invalidate(self, company_id: int, topic: str | None = None) -> None:
        self._generations[company_id] = self._generations.get(company_id, 0) + 1
        for key in [k for k in list(self._snapshots) if k[0] == company_id]:
            if topic is None or key[1] == topic:
                self._snapshots.pop(key, None)
        self._note_change()

    def clear(self) -> None:
        self._epoch += 1
        self._generations.clear()
        self._snapshots.clear()
        self._note_change()

    def _note_change(self) -> None:
        self.invalidations += 1
        with contextlib.suppress(RuntimeError):  # no running loop: nobody can be waiting
            asyncio.get_running_loop().create_task(self._notify_waiters())

    async def _notify_waiters(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for_invalidations(self, count: int) -> None:
        """Wait until `invalidations` reaches `count` (for tests and tools that must see a change applied)."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.invalidations >= count)

    def handle_notification(self, payload: str) -> None:
        try:
            message = json.loads(payload)
            if message.get("all"):
                self.clear()
            else:
                self.invalidate(int(message["company_id"]), message.get(self.feed.topic_key))
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable %s notification %r: clearing its cache", self.feed.table, payload)
            self.clear()


class SettingsListener:
    """LISTENs on the channels of `caches` over one connection and keeps them in step with the database.

    One per process serves every settings table: one connection, one reconnect loop, one `sync()` barrier.
    While it is not connected the caches are disabled (every resolution reads the database); it
    reconnects with backoff after the connection is lost and clears the caches when it is back.
    """

    def __init__(
        self,
        database_url: str | URL,
        caches: Sequence[SettingsCache],
        *,
        max_backoff_seconds: float = 5.0,
    ):
        self._dsn = _asyncpg_dsn(async_url(database_url))
        self._caches = {cache.feed.channel: cache for cache in caches}
        if len(self._caches) != len(caches):
            raise ValueError("two caches on the same channel: each table needs its own cache")
        self._max_backoff = max_backoff_seconds
        self._connection: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self._ready = asyncio.Event()
        self.connects = 0
        self._connected = asyncio.Condition()
        self._sync_lock = asyncio.Lock()

    @property
    def caches(self) -> list[SettingsCache]:
        return list(self._caches.values())

    async def start(self) -> None:
        """Connect and LISTEN; returns once the caches are live. Raises if the first connection fails."""
        await self._connect()
        self._task = asyncio.create_task(self._supervise(), name="settings-listener")

    async def stop(self) -> None:
        self._set_enabled(False)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close(timeout=5)
            self._connection = None

    async def __aenter__(self) -> SettingsListener:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def connected(self) -> bool:
        return self._connection is not None and not self._connection.is_closed()

    async def wait_connected(self) -> None:
        await self._ready.wait()

    async def sync(self) -> None:
        """Return once every change committed before this call has reached the caches.

        PostgreSQL signals listening sessions when a NOTIFYing transaction commits and sends pending
        notifications ahead of the next query's result, so one round trip on the listening connection
        flushes them; asyncpg then runs the callbacks before this coroutine resumes.
        """
        connection = self._connection
        if connection is None or connection.is_closed():
            return  # the caches are off while disconnected: nothing stale can be served
        async with self._sync_lock:
            await connection.execute("SELECT 1")
        await asyncio.sleep(0)

    async def wait_for_connects(self, count: int) -> None:
        """Wait until the listener has connected `count` times in all (reconnects included)."""
        async with self._connected:
            await self._connected.wait_for(lambda: self.connects >= count)

    def _set_enabled(self, enabled: bool) -> None:
        for cache in self._caches.values():
            cache.enabled = enabled

    async def _connect(self) -> None:
        connection = await asyncpg.connect(**self._dsn)
        for channel in self._caches:
            await connection.add_listener(channel, self._on_notification)
        connection.add_termination_listener(self._on_termination)
        self._connection = connection
        self._lost.clear()
        # Anything cached before this LISTEN took effect may have missed a change.
        for cache in self._caches.values():
            cache.clear()
        self._set_enabled(True)
        self.connects += 1
        self._ready.set()
        async with self._connected:
            self._connected.notify_all()

    def _on_notification(self, _connection: object, _pid: int, channel: str, payload: object) -> None:
        cache = self._caches.get(channel)
        if cache is not None:
            cache.handle_notification(str(payload))

    def _on_termination(self, _connection: object) -> None:
        self._set_enabled(False)
        for cache in self._caches.values():
            cache.clear()
        self._ready.clear()
        self._lost.set()

    async def _supervise(self) -> None:
        while True:
            await self._lost.wait()
            self._connection = None
            backoff = 0.1
            while True:
                try:
                    await self._connect()
                    log.info("settings listener reconnected")
                    break
                except (OSError, asyncpg.PostgresError) as exc:
                    log.warning("settings listener cannot connect (%s); retrying in %.1f s", exc, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self._max_backoff)
