"""The policy cache's invalidation across processes through LISTEN/NOTIFY, against real PostgreSQL: a
change made anywhere (another engine, another OS process, plain SQL) reaches every cache without waiting
for the TTL, and a cache whose listener is down serves nothing."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from models.policies import PolicySubject
from store.db import create_engine, session_factory, transaction
from store.policies import PolicyCache, PolicyResolver, set_policy
from store.settings_cache import _asyncpg_dsn
from tests.factories import make_tenant
from tests.policy_fixtures import (
    FakeClock,
    Sessions,
    count_queries,
    engine_of,
    listening_resolver,
    put,
    subject,
)


@pytest.fixture
async def resolver(sessions: Sessions, database_url: URL) -> AsyncIterator[PolicyResolver]:
    async with listening_resolver(sessions, database_url) as resolver:
        yield resolver


async def test_a_change_in_one_process_invalidates_the_other_without_waiting_for_the_ttl(
    sessions: Sessions, database_url: URL
) -> None:
    """Two engines, two listeners, no shared Python state but the database."""
    tenant = await make_tenant(sessions, staff=1)
    await put(sessions, tenant, "company", tenant.company_id, {"hours_before": 24})
    engines = [create_engine(database_url, pool_size=2) for _ in range(2)]
    clocks = [FakeClock(), FakeClock()]  # frozen: the TTL never runs out in this test
    writer, reader = (
        PolicyResolver(session_factory(e), PolicyCache(clock=c)) for e, c in zip(engines, clocks, strict=True)
    )
    try:
        for each in (writer, reader):
            await each.listen(database_url)
        entity_set = subject(tenant)
        assert (await reader.resolve(entity_set, "cancellation")).config["hours_before"] == 24
        assert (await reader.resolve(entity_set, "cancellation")).config["hours_before"] == 24
        assert reader.stats().hits == 1  # cached in the reader

        seen = reader.cache.invalidations
        async with transaction(writer.sessions) as session:
            await set_policy(
                session,
                company_id=tenant.company_id,
                level="branch",
                entity_id=tenant.branch_ids[0],
                policy_type="cancellation",
                config={"hours_before": 6},
            )
        await reader.cache.wait_for_invalidations(seen + 1)
        with count_queries(engines[1]) as statements:
            merged = await reader.resolve(entity_set, "cancellation")
        assert merged.config["hours_before"] == 6
        assert merged.sources["hours_before"].level == "branch"
        assert len(statements) == 1  # re-read, not served from the stale entry

        # A change made behind the engine's back (plain SQL, e.g. psql) is announced too.
        seen = reader.cache.invalidations
        conn = await asyncpg.connect(**_asyncpg_dsn(database_url))
        try:
            await conn.execute(
                "UPDATE policy_configurations SET deleted_at = now() WHERE configurable_type = 'branch'"
            )
        finally:
            await conn.close()
        await reader.cache.wait_for_invalidations(seen + 1)
        assert (await reader.resolve(entity_set, "cancellation")).config["hours_before"] == 24
        # Other companies' entries survive a company's change.
    finally:
        for each in (writer, reader):
            await each.close()
        for engine in engines:
            await engine.dispose()


async def test_a_change_in_another_os_process_invalidates_this_one(
    sessions: Sessions, database_url: URL, resolver: PolicyResolver
) -> None:
    tenant = await make_tenant(sessions)
    entity_set = PolicySubject(company_id=tenant.company_id)
    assert (await resolver.resolve(entity_set, "reschedule")).is_empty
    seen = resolver.cache.invalidations
    script = (
        "import asyncio, sys\n"
        "from store.db import create_engine, session_factory, transaction\n"
        "from store.policies import set_policy\n"
        "async def main():\n"
        "    engine = create_engine(sys.argv[1], pool_size=1)\n"
        "    async with transaction(session_factory(engine)) as session:\n"
        "        await set_policy(session, company_id=int(sys.argv[2]), level='company',\n"
        "            entity_id=sys.argv[2], policy_type='reschedule', config={'fee': 7})\n"
        "    await engine.dispose()\n"
        "asyncio.run(main())\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        database_url.render_as_string(hide_password=False),
        str(tenant.company_id),
    )
    assert await process.wait() == 0
    await resolver.cache.wait_for_invalidations(seen + 1)
    assert (await resolver.resolve(entity_set, "reschedule")).config == {"fee": 7.0}


async def test_other_companies_stay_cached_when_one_changes(
    sessions: Sessions, resolver: PolicyResolver
) -> None:
    changed, untouched = await make_tenant(sessions), await make_tenant(sessions, name="Untouched")
    for tenant in (changed, untouched):
        await resolver.resolve(PolicySubject(company_id=tenant.company_id), "cancellation")
    seen = resolver.cache.invalidations
    await put(sessions, changed, "company", changed.company_id, {"fee": 1})
    await resolver.cache.wait_for_invalidations(seen + 1)
    with count_queries(engine_of(sessions)) as statements:
        await resolver.resolve(PolicySubject(company_id=untouched.company_id), "cancellation")
    assert statements == []
    assert (await resolver.resolve(PolicySubject(company_id=changed.company_id), "cancellation")).config == {
        "fee": 1.0
    }


async def test_a_load_that_raced_with_a_change_is_not_cached(sessions: Sessions, database_url: URL) -> None:
    cache = PolicyCache(clock=FakeClock())
    resolver = PolicyResolver(sessions, cache)
    await resolver.listen(database_url)
    try:
        tenant = await make_tenant(sessions)
        token = cache.token(tenant.company_id)  # a load starts ...
        cache.invalidate(tenant.company_id)  # ... a change is announced meanwhile ...
        cache.put(tenant.company_id, "cancellation", {}, token)  # ... the (old) result must not stick
        assert cache.get(tenant.company_id, "cancellation") is None
        cache.put(tenant.company_id, "cancellation", {}, cache.token(tenant.company_id))
        assert cache.get(tenant.company_id, "cancellation") is not None
    finally:
        await resolver.close()


async def test_the_cache_is_off_while_the_listener_is_down_and_back_after_reconnecting(
    sessions: Sessions, resolver: PolicyResolver
) -> None:
    tenant = await make_tenant(sessions)
    entity_set = PolicySubject(company_id=tenant.company_id)
    await resolver.resolve(entity_set, "cancellation")
    assert resolver.listener is not None
    assert resolver.listener.connects == 1
    async with sessions() as session:
        await session.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
            )
        )
    await resolver.listener.wait_for_connects(2)  # the supervisor reconnects
    assert resolver.cache.enabled
    assert resolver.cache.get(tenant.company_id, "cancellation") is None  # cleared on reconnect
    seen = resolver.cache.invalidations
    await put(sessions, tenant, "company", tenant.company_id, {"fee": 2})
    await resolver.cache.wait_for_invalidations(seen + 1)
    assert (await resolver.resolve(entity_set, "cancellation")).config == {"fee": 2.0}


async def test_without_a_listener_nothing_is_cached(sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    resolver = PolicyResolver(sessions)
    entity_set = PolicySubject(company_id=tenant.company_id)
    await resolver.resolve(entity_set, "cancellation")
    await put(sessions, tenant, "company", tenant.company_id, {"fee": 4})
    assert (await resolver.resolve(entity_set, "cancellation")).config == {"fee": 4.0}
    assert resolver.stats().hits == 0
