"""Policies in PostgreSQL: set/delete, and the cached resolver of merged policies.

Policies are one table of hierarchical settings (store/hierarchy.py): resolution reads all active
configurations of a policy type for the companies involved in **one query** (however many entity sets are
resolved), merges them in memory (rules/policy_merge.py) and caches them per company
(store/settings_cache.py). Writes validate the config (models/policies.py) and are announced to every
process by the NOTIFY trigger of migration 0002, in the writing transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.callbacks import CallbackSettings
from models.policies import PolicySubject, PolicyType, validate_config
from models.tables import PolicyConfiguration
from rules.callback_settings import apply_callback_policy
from rules.policy_merge import MergedPolicy
from store.hierarchy import (
    HierarchyResolver,
    SettingsTable,
    check_target,
    parse_entity_id,
    parse_level,
)
from store.settings_cache import DEFAULT_TTL_SECONDS, ChangeFeed, SettingsCache, SettingsListener
from telemetry import metrics


def _config(row: RowMapping) -> dict[str, Any]:
    config: dict[str, Any] = row["config"]
    return config


POLICY_TABLE = SettingsTable(
    model=PolicyConfiguration, topic="policy_type", facet=None, values=("config",), keys=_config
)
# Channel and payload of the trigger of migration 0002.
POLICY_FEED = ChangeFeed(
    table="policy_configurations",
    channel="policy_changed",
    topic_key="policy_type",
    lookups=metrics.POLICY_CACHE_LOOKUPS,
)


class PolicyCache(SettingsCache):
    """The settings cache of `policy_configurations` (a type of its own so it cannot be handed to the
    resolver of another table by mistake)."""

    def __init__(self, ttl_seconds: float = DEFAULT_TTL_SECONDS, clock: Callable[[], float] = time.monotonic):
        super().__init__(POLICY_FEED, ttl_seconds, clock)


# --- set and delete ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredPolicy:
    id: int
    company_id: int
    level: str
    entity_id: str
    policy_type: str
    config: dict[str, Any]


async def set_policy(
    session: AsyncSession,
    *,
    company_id: int,
    level: str,
    entity_id: object,
    policy_type: str,
    config: Mapping[str, Any],
) -> StoredPolicy:
    """Create or replace the active `policy_type` policy of one entity. The config is validated first
    (PolicyConfigError lists every problem); nothing is written when it or the target is invalid
    (UnknownTarget)."""
    stored_config = validate_config(policy_type, dict(config))
    target_level = parse_level(level)
    configurable_id = await check_target(session, company_id, target_level, entity_id)
    statement = (
        insert(PolicyConfiguration)
        .values(
            company_id=company_id,
            configurable_type=target_level.value,
            configurable_id=configurable_id,
            policy_type=policy_type,
            config=stored_config,
        )
        .on_conflict_do_update(
            index_elements=["company_id", "configurable_type", "configurable_id", "policy_type"],
            index_where=PolicyConfiguration.deleted_at.is_(None),
            set_={"config": stored_config, "updated_at": func.now()},
        )
        .returning(PolicyConfiguration.id)
    )
    policy_id = (await session.execute(statement)).scalar_one()
    return StoredPolicy(
        policy_id, company_id, target_level.value, configurable_id, policy_type, stored_config
    )


async def delete_policy(
    session: AsyncSession, *, company_id: int, level: str, entity_id: object, policy_type: str
) -> bool:
    """Soft-delete the active policy; False when there was none."""
    target_level = parse_level(level)
    result = await session.execute(
        update(PolicyConfiguration)
        .where(
            PolicyConfiguration.company_id == company_id,
            PolicyConfiguration.configurable_type == target_level.value,
            PolicyConfiguration.configurable_id == str(parse_entity_id(target_level, entity_id)),
            PolicyConfiguration.policy_type == policy_type,
            PolicyConfiguration.deleted_at.is_(None),
        )
        .values(deleted_at=func.now(), updated_at=func.now())
        .returning(PolicyConfiguration.id)
    )
    return result.first() is not None


# --- resolution ----------------------------------------------------------------------------------


class PolicyResolver(HierarchyResolver[PolicyCache]):
    """Resolves merged policies for entity sets, with the process-wide cache.

    A process builds one (store/hierarchy.py says how the cache and its listener are shared); a resolver
    built without a cache gets its own, which stays off until `listen()`.
    """

    table = POLICY_TABLE

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cache: PolicyCache | None = None,
        listener: SettingsListener | None = None,
    ) -> None:
        super().__init__(sessions, cache if cache is not None else PolicyCache(), listener)

    async def resolve(
        self, subject: PolicySubject, policy_type: str, *, session: AsyncSession | None = None
    ) -> MergedPolicy:
        snapshot = self.cache.get(subject.company_id, policy_type)
        if snapshot is not None:
            self.cache.count(hits=1)
            return snapshot.resolve(subject.entities())
        return (await self.resolve_many([subject], policy_type, session=session))[0]

    async def resolve_many(
        self, subjects: Sequence[PolicySubject], policy_type: str, *, session: AsyncSession | None = None
    ) -> list[MergedPolicy]:
        """One merged policy per subject, in order; at most one query for all cache misses together."""
        results: list[MergedPolicy | None] = [None] * len(subjects)
        missing: dict[int, list[int]] = {}
        for index, subject in enumerate(subjects):
            snapshot = self.cache.get(subject.company_id, policy_type)
            if snapshot is not None:
                results[index] = snapshot.resolve(subject.entities())
            else:
                missing.setdefault(subject.company_id, []).append(index)
        misses = sum(map(len, missing.values()))
        self.cache.count(hits=len(subjects) - misses, misses=misses)
        if missing:
            loaded = await self.load({company_id: [policy_type] for company_id in missing}, session=session)
            for company_id, indexes in missing.items():
                snapshot = loaded[(company_id, policy_type)]
                for index in indexes:
                    results[index] = snapshot.resolve(subjects[index].entities())
        return [result for result in results if result is not None]

    async def warm_cache(self, company_id: int, policy_types: Iterable[str] = tuple(PolicyType)) -> int:
        """Preload a company's policies of the given types; returns how many configurations were loaded."""
        loaded = await self.load({company_id: list(policy_types)})
        return sum(len(snapshot.configs()) for snapshot in loaded.values())

    async def callback_settings(
        self, subject: PolicySubject, defaults: CallbackSettings, *, session: AsyncSession | None = None
    ) -> CallbackSettings:
        """The callback rules of one callback: settings defaults overlaid by its merged `callback` policy."""
        merged = await self.resolve(subject, PolicyType.CALLBACK.value, session=session)
        return apply_callback_policy(defaults, merged.config)


async def get_policy(
    session: AsyncSession, company_id: int, level: str, entity_id: str, policy_type: str
) -> PolicyConfiguration | None:
    """The live (not soft-deleted) policy of one entity and type, as stored."""
    found: PolicyConfiguration | None = await session.scalar(
        select(PolicyConfiguration).where(
            PolicyConfiguration.company_id == company_id,
            PolicyConfiguration.configurable_type == level,
            PolicyConfiguration.configurable_id == entity_id,
            PolicyConfiguration.policy_type == policy_type,
            PolicyConfiguration.deleted_at.is_(None),
        )
    )
    return found
