"""The pending count in the navigation, cached per company.

The seed had to switch its navigation badge off because every page view counted the whole table; here a
count is one index-only query at most every `ttl` seconds per company, however many tabs ask (the shared
single-flight TTL cache of `calcom/cache.py`: concurrent page views wait for one count).
"""

from __future__ import annotations

from api.deps import Deps
from calcom.cache import TTLCache
from store import callback_queries as queries


class PendingBadge:
    def __init__(self, ttl: float) -> None:
        self._counts = TTLCache[int](ttl, max_entries=100_000)

    async def get(self, deps: Deps, company_id: int | None) -> int:
        async def count() -> int:
            async with deps.sessions() as session:
                return await queries.pending_count(session, company_id)

        return await self._counts.get_or_load(company_id, count)
