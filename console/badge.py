"""The pending count in the navigation, cached per company.

The seed had to switch its navigation badge off because every page view counted the whole table; here a
count is one index-only query at most every `ttl` seconds per company, however many tabs ask.
"""

from __future__ import annotations

import asyncio
import time

from api.deps import Deps
from store import callback_queries as queries


class PendingBadge:
    def __init__(self, ttl: float) -> None:
        self._ttl = ttl
        self._values: dict[int | None, tuple[float, int]] = {}
        self._locks: dict[int | None, asyncio.Lock] = {}

    async def get(self, deps: Deps, company_id: int | None) -> int:
        cached = self._values.get(company_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        lock = self._locks.setdefault(company_id, asyncio.Lock())
        async with lock:
            # Another request may have filled it while this one waited for the lock.
            cached = self._values.get(company_id)
            if cached is not None and cached[0] > time.monotonic():
                return cached[1]
            async with deps.sessions() as session:
                value = await queries.pending_count(session, company_id)
            self._values[company_id] = (time.monotonic() + self._ttl, value)
            return value
