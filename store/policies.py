"""Policies in PostgreSQL: reads for the hierarchy merge, set/delete, and the cached resolver.

Resolution reads all active configurations of a policy type for the companies involved in **one query**
(however many entity sets are resolved), merges them in memory (rules/policy_merge.py) and caches them per
company (store/policy_cache.py). Writes validate the config (models/policies.py) and are announced to
every process by the NOTIFY trigger of migration 0002, in the writing transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.callbacks import CallbackSettings
from models.policies import Level, PolicySubject, PolicyType, validate_config
from models.tables import Branch, PolicyConfiguration, Service, Staff
from rules.callback_settings import apply_callback_policy
from rules.policy_merge import MergedPolicy, PolicyLayer
from store.policy_cache import CacheStats, Configs, PolicyCache, PolicyListener


async def load_layers(
    session: AsyncSession, company_id: int, policy_type: str, entities: Mapping[str, object | None]
) -> list[PolicyLayer]:
    """The active configurations of `policy_type` for the given {level: id} entities, in one query."""
    wanted = [(level, str(entity_id)) for level, entity_id in entities.items() if entity_id is not None]
    if not wanted:
        return []
    rows = await session.execute(
        select(
            PolicyConfiguration.configurable_type,
            PolicyConfiguration.configurable_id,
            PolicyConfiguration.config,
        ).where(
            PolicyConfiguration.company_id == company_id,
            PolicyConfiguration.policy_type == policy_type,
            PolicyConfiguration.deleted_at.is_(None),
            or_(
                *(
                    and_(
                        PolicyConfiguration.configurable_type == level,
                        PolicyConfiguration.configurable_id == entity_id,
                    )
                    for level, entity_id in wanted
                )
            ),
        )
    )
    return [PolicyLayer(level, entity_id, config) for level, entity_id, config in rows.all()]


async def load_configs(
    session: AsyncSession, policy_type: str, company_ids: Iterable[int]
) -> dict[int, Configs]:
    """Every active configuration of `policy_type` of the given companies, in one query:
    {company_id: {(level, configurable_id): config}} (a company without any maps to {})."""
    ids = sorted(set(company_ids))
    found: dict[int, Configs] = {company_id: {} for company_id in ids}
    if not ids:
        return found
    rows = await session.execute(
        select(
            PolicyConfiguration.company_id,
            PolicyConfiguration.configurable_type,
            PolicyConfiguration.configurable_id,
            PolicyConfiguration.config,
        ).where(
            PolicyConfiguration.company_id.in_(ids),
            PolicyConfiguration.policy_type == policy_type,
            PolicyConfiguration.deleted_at.is_(None),
        )
    )
    for company_id, level, entity_id, config in rows.all():
        found[company_id][(level, entity_id)] = config
    return found


# --- set and delete ------------------------------------------------------------------------------


class UnknownPolicyTarget(LookupError):
    """The company, branch, service or staff member a policy is meant for does not exist in the company."""


@dataclass(frozen=True)
class StoredPolicy:
    id: int
    company_id: int
    level: str
    entity_id: str
    policy_type: str
    config: dict[str, Any]


def _entity_id(level: Level, entity_id: object) -> int | uuid.UUID:
    try:
        if level is Level.STAFF:
            return entity_id if isinstance(entity_id, uuid.UUID) else uuid.UUID(str(entity_id))
        return int(str(entity_id))
    except ValueError:
        kind = "a UUID" if level is Level.STAFF else "an integer"
        raise UnknownPolicyTarget(f"{level.value} id {entity_id!r} is not {kind}") from None


async def _check_target(session: AsyncSession, company_id: int, level: Level, entity_id: object) -> str:
    """The configurable_id as stored, after checking the entity belongs to the company."""
    parsed = _entity_id(level, entity_id)
    if level is Level.COMPANY:
        if parsed != company_id:
            raise UnknownPolicyTarget(f"company {parsed} is not company {company_id}")
        return str(parsed)
    if level is Level.BRANCH:
        condition = and_(Branch.id == parsed, Branch.company_id == company_id)
    elif level is Level.SERVICE:
        condition = and_(Service.id == parsed, Service.company_id == company_id)
    else:
        condition = and_(Staff.id == parsed, Staff.company_id == company_id)
    exists = await session.scalar(select(func.count()).where(condition))
    if not exists:
        raise UnknownPolicyTarget(f"{level.value} {parsed} does not exist in company {company_id}")
    return str(parsed)


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
    (PolicyConfigError lists every problem); nothing is written when it or the target is invalid."""
    stored_config = validate_config(policy_type, dict(config))
    try:
        target_level = Level(level)
    except ValueError:
        raise UnknownPolicyTarget(
            f"unknown level {level!r} (allowed: {', '.join(item.value for item in Level)})"
        ) from None
    configurable_id = await _check_target(session, company_id, target_level, entity_id)
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
    try:
        target_level = Level(level)
    except ValueError:
        raise UnknownPolicyTarget(f"unknown level {level!r}") from None
    result = await session.execute(
        update(PolicyConfiguration)
        .where(
            PolicyConfiguration.company_id == company_id,
            PolicyConfiguration.configurable_type == target_level.value,
            PolicyConfiguration.configurable_id == str(_entity_id(target_level, entity_id)),
            PolicyConfiguration.policy_type == policy_type,
            PolicyConfiguration.deleted_at.is_(None),
        )
        .values(deleted_at=func.now(), updated_at=func.now())
        .returning(PolicyConfiguration.id)
    )
    return result.first() is not None


# --- resolution ----------------------------------------------------------------------------------


class PolicyResolver:
    """Resolves merged policies for entity sets, with the process-wide cache.

    Without a running listener (`listen()`), the cache stays off and every resolution reads the database:
    correct, never stale, just slower. A process should create one resolver, `await listen(url)` at start
    and `await close()` at the end (or use it as an async context manager).
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], cache: PolicyCache | None = None) -> None:
        self.sessions = sessions
        self.cache = cache if cache is not None else PolicyCache()
        self.listener: PolicyListener | None = None

    async def listen(self, database_url: str | URL) -> None:
        if self.listener is None:
            self.listener = PolicyListener(database_url, self.cache)
            await self.listener.start()

    async def close(self) -> None:
        if self.listener is not None:
            await self.listener.stop()
            self.listener = None

    def stats(self) -> CacheStats:
        return self.cache.stats()

    async def sync(self) -> None:
        """Apply every policy change committed before this call (a read-your-writes barrier)."""
        if self.listener is not None:
            await self.listener.sync()

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
        self.cache.count(hits=len(subjects) - sum(map(len, missing.values())))
        if missing:
            self.cache.count(misses=sum(map(len, missing.values())))
            await self._load(policy_type, missing, subjects, results, session)
        return [result for result in results if result is not None]

    async def _load(
        self,
        policy_type: str,
        missing: dict[int, list[int]],
        subjects: Sequence[PolicySubject],
        results: list[MergedPolicy | None],
        session: AsyncSession | None,
    ) -> None:
        tokens = {company_id: self.cache.token(company_id) for company_id in missing}
        if session is None:
            async with self.sessions() as own:
                configs = await load_configs(own, policy_type, missing)
        else:
            configs = await load_configs(session, policy_type, missing)
        for company_id, indexes in missing.items():
            snapshot = self.cache.put(company_id, policy_type, configs[company_id], tokens[company_id])
            for index in indexes:
                results[index] = snapshot.resolve(subjects[index].entities())

    async def warm_cache(self, company_id: int, policy_types: Iterable[str] = tuple(PolicyType)) -> int:
        """Preload a company's policies of the given types; returns how many configurations were loaded."""
        loaded = 0
        async with self.sessions() as session:
            for policy_type in policy_types:
                token = self.cache.token(company_id)
                configs = (await load_configs(session, policy_type, [company_id]))[company_id]
                self.cache.put(company_id, policy_type, configs, token)
                loaded += len(configs)
        return loaded

    async def callback_settings(
        self, subject: PolicySubject, defaults: CallbackSettings, *, session: AsyncSession | None = None
    ) -> CallbackSettings:
        """The callback rules of one callback: settings defaults overlaid by its merged `callback` policy."""
        merged = await self.resolve(subject, PolicyType.CALLBACK.value, session=session)
        return apply_callback_policy(defaults, merged.config)
