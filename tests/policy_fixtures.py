"""What the hierarchical settings store tests (policies, notification settings) share: a frozen clock for
the caches' TTL, a query counter, a policy writer and the entity sets of a test tenant."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from models.policies import PolicySubject
from store.db import transaction
from store.policies import PolicyCache, PolicyResolver, set_policy
from tests.factories import Tenant

Sessions = async_sessionmaker[AsyncSession]


class FakeClock:
    """A cache's clock that moves only when a test moves it (`now`): no entry runs out of its TTL
    unless the test says so, so only an invalidation can drop it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextmanager
def count_queries(engine: AsyncEngine) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


def engine_of(sessions: Sessions) -> AsyncEngine:
    bind = sessions.kw["bind"]
    assert isinstance(bind, AsyncEngine)
    return bind


async def put(sessions: Sessions, tenant: Tenant, level: str, entity: object, config: dict[str, Any]) -> None:
    async with transaction(sessions) as session:
        await set_policy(
            session,
            company_id=tenant.company_id,
            level=level,
            entity_id=entity,
            policy_type="cancellation",
            config=config,
        )


def subject(tenant: Tenant, branch: int = 0, service: int | None = 0, staff: int | None = 0) -> PolicySubject:
    return PolicySubject(
        company_id=tenant.company_id,
        branch_id=tenant.branch_ids[branch],
        service_id=tenant.service_ids[service] if service is not None else None,
        staff_id=tenant.staff_ids[staff] if staff is not None else None,
    )


@asynccontextmanager
async def listening_resolver(sessions: Sessions, database_url: URL) -> AsyncIterator[PolicyResolver]:
    """A resolver with a cache on a frozen clock, invalidated through LISTEN/NOTIFY."""
    resolver = PolicyResolver(sessions, PolicyCache(clock=FakeClock()))
    await resolver.listen(database_url)
    try:
        yield resolver
    finally:
        await resolver.close()
