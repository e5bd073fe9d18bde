"""Hierarchical settings in PostgreSQL: what policies and notification settings share.

Both attach settings to a company, branch, service or staff member and resolve them by walking
Staff → Service → Branch → Company, key by key, with the level that supplied each key
(rules/policy_merge.py). This module holds the parts that must not differ between them: the check that a
target entity belongs to the company, the batch loader (one query for any number of companies and
topics), and the resolver base that puts the loads behind the cross-process cache (store/settings_cache.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import and_, func, select
from sqlalchemy.engine import URL, RowMapping
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.policies import Level
from models.tables import Branch, NotificationConfiguration, PolicyConfiguration, Service, Staff
from store.settings_cache import WHOLE, CacheStats, Sections, SettingsCache, SettingsListener, Snapshot

# --- targets -------------------------------------------------------------------------------------


class UnknownTarget(LookupError):
    """The company, branch, service or staff member a setting is meant for does not exist in the company."""


def parse_level(level: str) -> Level:
    try:
        return Level(level)
    except ValueError:
        raise UnknownTarget(
            f"unknown level {level!r} (allowed: {', '.join(item.value for item in Level)})"
        ) from None


def parse_entity_id(level: Level, entity_id: object) -> int | uuid.UUID:
    try:
        if level is Level.STAFF:
            return entity_id if isinstance(entity_id, uuid.UUID) else uuid.UUID(str(entity_id))
        return int(str(entity_id))
    except ValueError:
        kind = "a UUID" if level is Level.STAFF else "an integer"
        raise UnknownTarget(f"{level.value} id {entity_id!r} is not {kind}") from None


async def check_target(session: AsyncSession, company_id: int, level: Level, entity_id: object) -> str:
    """The configurable_id as stored, after checking the entity belongs to the company: a setting for
    another company's branch must be refused, not silently stored where it never applies."""
    parsed = parse_entity_id(level, entity_id)
    if level is Level.COMPANY:
        if parsed != company_id:
            raise UnknownTarget(f"company {parsed} is not company {company_id}")
        return str(parsed)
    if level is Level.BRANCH:
        condition = and_(Branch.id == parsed, Branch.company_id == company_id)
    elif level is Level.SERVICE:
        condition = and_(Service.id == parsed, Service.company_id == company_id)
    else:
        condition = and_(Staff.id == parsed, Staff.company_id == company_id)
    exists = await session.scalar(select(func.count()).where(condition))
    if not exists:
        raise UnknownTarget(f"{level.value} {parsed} does not exist in company {company_id}")
    return str(parsed)


# --- batch loading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SettingsTable:
    """What the shared loader needs to know about one table of hierarchical settings."""

    model: type[PolicyConfiguration] | type[NotificationConfiguration]
    topic: str  # the column a resolution asks for: policy_type, event_type
    facet: str | None  # a column splitting a topic further (channel); None: one setting per topic
    values: tuple[str, ...]  # the columns the keys are read from
    keys: Callable[[RowMapping], dict[str, Any]]  # the keys one row sets


Loaded = dict[tuple[int, str], Sections]


async def load_sections(
    session: AsyncSession, table: SettingsTable, company_ids: Iterable[int], topics: Iterable[str] | None
) -> Loaded:
    """Every active configuration of the given companies and topics (all topics: None), in one query:
    {(company_id, topic): {facet: {(level, configurable_id): keys}}}; a requested pair without any
    configuration maps to {} so that its absence can be cached too."""
    ids = sorted(set(company_ids))
    wanted = sorted(set(topics)) if topics is not None else None
    found: Loaded = {(c, t): {} for c in ids for t in wanted or ()}
    if not ids or wanted == []:
        return found
    model = table.model
    topic_column = getattr(model, table.topic)
    columns = [model.company_id, topic_column, model.configurable_type, model.configurable_id]
    if table.facet is not None:
        columns.append(getattr(model, table.facet))
    query = select(*columns, *(getattr(model, name) for name in table.values)).where(
        model.company_id.in_(ids), model.deleted_at.is_(None)
    )
    if wanted is not None:
        query = query.where(topic_column.in_(wanted))
    for row in (await session.execute(query)).mappings():
        facet = row[table.facet] if table.facet is not None else WHOLE
        sections = found.setdefault((row["company_id"], row[table.topic]), {})
        sections.setdefault(facet, {})[(row["configurable_type"], row["configurable_id"])] = table.keys(row)
    return found


# --- the resolver base ---------------------------------------------------------------------------

CacheT = TypeVar("CacheT", bound=SettingsCache)


class HierarchyResolver(Generic[CacheT]):
    """Snapshots of one table through its cache: hits from memory, all misses of a call in one query.

    Without a running listener the cache stays off and every resolution reads the database: correct,
    never stale, just slower. A process shares one `SettingsListener` between its resolvers (the
    composition root hands it in); a resolver on its own can `await listen(url)` and `await close()`.
    """

    table: SettingsTable

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cache: CacheT,
        listener: SettingsListener | None = None,
    ) -> None:
        if listener is not None and cache not in listener.caches:
            raise ValueError("the listener does not keep this cache up to date")
        self.sessions = sessions
        self.cache = cache
        self.listener = listener
        self._owns_listener = False

    async def listen(self, database_url: str | URL) -> None:
        if self.listener is None:
            self.listener = SettingsListener(database_url, [self.cache])
            self._owns_listener = True
            await self.listener.start()

    async def close(self) -> None:
        """Stop the listener this resolver started; a shared one belongs to whoever built it."""
        if self.listener is not None and self._owns_listener:
            await self.listener.stop()
            self.listener = None
            self._owns_listener = False

    def stats(self) -> CacheStats:
        return self.cache.stats()

    async def sync(self) -> None:
        """Apply every change committed before this call (a read-your-writes barrier)."""
        if self.listener is not None:
            await self.listener.sync()

    async def snapshots(
        self, company_id: int, topics: Iterable[str], *, session: AsyncSession | None = None
    ) -> dict[str, Snapshot]:
        """One company's snapshot of each topic, the missing ones loaded together; counts per topic."""
        found = await self.snapshots_of({company_id: topics}, session=session)
        return {topic: snapshot for (_, topic), snapshot in found.items()}

    async def snapshots_of(
        self, wanted: Mapping[int, Iterable[str]], *, session: AsyncSession | None = None
    ) -> dict[tuple[int, str], Snapshot]:
        """The snapshots of several companies' topics, all missing ones loaded in one query (a batch of
        events spans companies); counts per (company, topic)."""
        found: dict[tuple[int, str], Snapshot] = {}
        missing: dict[int, list[str]] = {}
        for company_id, topics in wanted.items():
            for topic in dict.fromkeys(topics):
                snapshot = self.cache.get(company_id, topic)
                if snapshot is not None:
                    found[(company_id, topic)] = snapshot
                else:
                    missing.setdefault(company_id, []).append(topic)
        misses = sum(map(len, missing.values()))
        self.cache.count(hits=len(found), misses=misses)
        if missing:
            loaded = await self.load(missing, session=session)
            found.update(
                {(c, topic): loaded[(c, topic)] for c, topics in missing.items() for topic in topics}
            )
        return found

    async def load(
        self, missing: Mapping[int, Iterable[str]], *, session: AsyncSession | None = None
    ) -> dict[tuple[int, str], Snapshot]:
        """Load the given topics of the given companies in one query and cache them (unless a change of
        the company was announced meanwhile). Does not count: callers count per entity set."""
        wanted = {company_id: sorted(set(topics)) for company_id, topics in missing.items()}
        topics = sorted({topic for each in wanted.values() for topic in each})
        tokens = {company_id: self.cache.token(company_id) for company_id in wanted}
        if session is None:
            async with self.sessions() as own:
                loaded = await load_sections(own, self.table, wanted, topics)
        else:
            loaded = await load_sections(session, self.table, wanted, topics)
        return {
            (company_id, topic): self.cache.put(
                company_id, topic, loaded.get((company_id, topic), {}), tokens[company_id]
            )
            for company_id, each in wanted.items()
            for topic in each
        }
