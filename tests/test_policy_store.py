"""Policy resolution against real PostgreSQL: hierarchy merge, set/delete, batch query counts and the
cache (its invalidation across processes: test_policy_invalidation.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import URL

from models.callbacks import CallbackSettings, Priority
from models.policies import PolicyConfigError, PolicySubject
from models.tables import PolicyConfiguration
from store.db import transaction
from store.hierarchy import UnknownTarget
from store.policies import PolicyCache, PolicyResolver, delete_policy, set_policy
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


# --- hierarchy -----------------------------------------------------------------------------------


async def test_key_level_merge_across_all_four_levels_with_sources(
    sessions: Sessions, resolver: PolicyResolver
) -> None:
    tenant = await make_tenant(sessions, staff=1)
    await put(
        sessions, tenant, "company", tenant.company_id, {"hours_before": 48, "max_cancellations_per_month": 3}
    )
    await put(sessions, tenant, "branch", tenant.branch_ids[0], {"hours_before": 24})
    await put(sessions, tenant, "service", tenant.service_ids[0], {"fee_percentage": 20})
    await put(sessions, tenant, "staff", tenant.staff_ids[0], {"max_cancellations_per_month": 1})

    merged = await resolver.resolve(subject(tenant), "cancellation")
    assert merged.config == {"hours_before": 24.0, "max_cancellations_per_month": 1, "fee_percentage": 20.0}
    sources = {key: (s.level, s.entity_id) for key, s in merged.sources.items()}
    assert sources == {
        "hours_before": ("branch", str(tenant.branch_ids[0])),
        "max_cancellations_per_month": ("staff", str(tenant.staff_ids[0])),
        "fee_percentage": ("service", str(tenant.service_ids[0])),
    }
    # The other branch, without service and staff, sees only the company's policy.
    other = await resolver.resolve(subject(tenant, branch=1, service=None, staff=None), "cancellation")
    assert other.config == {"hours_before": 48.0, "max_cancellations_per_month": 3}
    assert {s.level for s in other.sources.values()} == {"company"}
    # Another policy type is resolved separately.
    assert (await resolver.resolve(subject(tenant), "reschedule")).is_empty


async def test_a_staff_policy_setting_one_key_inherits_the_others(
    sessions: Sessions, resolver: PolicyResolver
) -> None:
    tenant = await make_tenant(sessions, staff=2)
    await put(sessions, tenant, "company", tenant.company_id, {"hours_before": 24, "fee": 10})
    await put(sessions, tenant, "staff", tenant.staff_ids[0], {"fee": 0})
    with_override = await resolver.resolve(subject(tenant, staff=0), "cancellation")
    without = await resolver.resolve(subject(tenant, staff=1), "cancellation")
    assert with_override.config == {"hours_before": 24.0, "fee": 0.0}
    assert with_override.sources["hours_before"].level == "company"
    assert with_override.sources["fee"].level == "staff"
    assert without.config == {"hours_before": 24.0, "fee": 10.0}


async def test_a_soft_deleted_policy_no_longer_applies(sessions: Sessions, resolver: PolicyResolver) -> None:
    tenant = await make_tenant(sessions, staff=1)
    await put(sessions, tenant, "company", tenant.company_id, {"hours_before": 48})
    await put(sessions, tenant, "branch", tenant.branch_ids[0], {"hours_before": 12})
    assert (await resolver.resolve(subject(tenant), "cancellation")).config["hours_before"] == 12

    async with transaction(sessions) as session:
        deleted = await delete_policy(
            session,
            company_id=tenant.company_id,
            level="branch",
            entity_id=tenant.branch_ids[0],
            policy_type="cancellation",
        )
        assert deleted
        again = await delete_policy(
            session,
            company_id=tenant.company_id,
            level="branch",
            entity_id=tenant.branch_ids[0],
            policy_type="cancellation",
        )
        assert not again

    uncached = PolicyResolver(sessions)  # no listener: straight from the database
    merged = await uncached.resolve(subject(tenant), "cancellation")
    assert merged.config == {"hours_before": 48.0}
    assert merged.sources["hours_before"].level == "company"
    async with sessions() as session:
        rows = await session.scalar(
            select(func.count())
            .select_from(PolicyConfiguration)
            .where(PolicyConfiguration.deleted_at.is_not(None))
        )
    assert rows == 1  # kept, soft-deleted
    # A new policy for the same entity can be set after the delete.
    await put(sessions, tenant, "branch", tenant.branch_ids[0], {"hours_before": 6})
    assert (await uncached.resolve(subject(tenant), "cancellation")).config["hours_before"] == 6


async def test_set_replaces_the_active_policy_in_place(sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    async with transaction(sessions) as session:
        first = await set_policy(
            session,
            company_id=tenant.company_id,
            level="company",
            entity_id=tenant.company_id,
            policy_type="reschedule",
            config={"max_reschedules_per_appointment": 2},
        )
    async with transaction(sessions) as session:
        second = await set_policy(
            session,
            company_id=tenant.company_id,
            level="company",
            entity_id=str(tenant.company_id),
            policy_type="reschedule",
            config={"max_reschedules_per_appointment": 1, "fee": 5},
        )
    assert second.id == first.id
    assert second.config == {"max_reschedules_per_appointment": 1, "fee": 5.0}
    async with sessions() as session:
        stored = await session.scalars(select(PolicyConfiguration.config))
        assert list(stored) == [{"max_reschedules_per_appointment": 1, "fee": 5.0}]


async def test_invalid_policies_and_targets_change_nothing(sessions: Sessions) -> None:
    tenant = await make_tenant(sessions, staff=1)
    other = await make_tenant(sessions, name="Other")
    cases: list[tuple[str, object, dict[str, Any], type[Exception], str]] = [
        ("branch", tenant.branch_ids[0], {"hours_before": -2}, PolicyConfigError, "hours_before"),
        ("branch", tenant.branch_ids[0], {"surprise": 1}, PolicyConfigError, "surprise: unknown key"),
        (
            "branch",
            other.branch_ids[0],
            {"hours_before": 2},
            UnknownTarget,
            "does not exist in company",
        ),
        ("staff", "not-a-uuid", {"hours_before": 2}, UnknownTarget, "is not a UUID"),
        ("company", other.company_id, {"hours_before": 2}, UnknownTarget, "is not company"),
        ("region", 1, {"hours_before": 2}, UnknownTarget, "unknown level"),
    ]
    for level, entity, config, error, message in cases:
        with pytest.raises(error, match=message):
            async with transaction(sessions) as session:
                await set_policy(
                    session,
                    company_id=tenant.company_id,
                    level=level,
                    entity_id=entity,
                    policy_type="cancellation",
                    config=config,
                )
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(PolicyConfiguration)) == 0


# --- batch resolution ----------------------------------------------------------------------------


@pytest.mark.parametrize("listening", [False, True])
async def test_batch_resolution_costs_one_query_for_any_number_of_entities(
    sessions: Sessions, database_url: URL, listening: bool
) -> None:
    tenants = [await make_tenant(sessions, name=f"Company {i}", staff=3) for i in range(3)]
    for tenant in tenants:
        await put(sessions, tenant, "company", tenant.company_id, {"hours_before": 24})
        await put(sessions, tenant, "staff", tenant.staff_ids[1], {"hours_before": 2})
    resolver = PolicyResolver(sessions)  # without a listener: uncached, every call reads
    if listening:
        await resolver.listen(database_url)  # cold cache: one query loads the missing companies
    small = [subject(t, staff=i) for t in tenants[:1] for i in range(3)]
    large = [
        subject(t, branch=b, service=s, staff=i)
        for t in tenants
        for b in (0, 1)
        for s in (0, 1)
        for i in range(3)
    ]
    large = large * 10  # 360 entity sets
    for batch in (small, large):
        resolver.cache.clear()
        with count_queries(engine_of(sessions)) as statements:
            results = await resolver.resolve_many(batch, "cancellation")
        assert len(statements) == 1, statements
        assert len(results) == len(batch)
        for entity_set, merged in zip(batch, results, strict=True):
            tenant = next(t for t in tenants if t.company_id == entity_set.company_id)
            expected = 2 if entity_set.staff_id == tenant.staff_ids[1] else 24
            assert merged.config["hours_before"] == expected
    await resolver.close()


async def test_cached_resolution_costs_no_query_and_counts_hits_and_misses(
    sessions: Sessions, resolver: PolicyResolver
) -> None:
    tenant = await make_tenant(sessions, staff=2)
    await put(sessions, tenant, "company", tenant.company_id, {"hours_before": 24})
    entity_sets = [subject(tenant, staff=0), subject(tenant, staff=1), subject(tenant, branch=1, staff=None)]
    await resolver.sync()  # the notification of the write above has arrived
    before = resolver.stats()
    first = await resolver.resolve_many(entity_sets, "cancellation")
    with count_queries(engine_of(sessions)) as statements:
        again = await resolver.resolve_many(entity_sets, "cancellation")
        single = await resolver.resolve(entity_sets[0], "cancellation")
    assert statements == []
    assert again == first
    assert single is first[0]  # the merge itself is cached too
    stats = resolver.stats()
    assert (stats.misses - before.misses, stats.hits - before.hits) == (3, 4)
    assert stats.listening


async def test_entries_expire_after_the_ttl(sessions: Sessions, database_url: URL) -> None:
    clock = FakeClock()
    resolver = PolicyResolver(sessions, PolicyCache(ttl_seconds=300, clock=clock))
    await resolver.listen(database_url)
    try:
        tenant = await make_tenant(sessions)
        entity_set = PolicySubject(company_id=tenant.company_id)
        await resolver.resolve(entity_set, "cancellation")
        clock.now += 299
        await resolver.resolve(entity_set, "cancellation")
        assert (resolver.stats().hits, resolver.stats().misses) == (1, 1)
        clock.now += 1
        await resolver.resolve(entity_set, "cancellation")
        assert (resolver.stats().hits, resolver.stats().misses) == (1, 2)
    finally:
        await resolver.close()


async def test_warm_cache_preloads_a_company(sessions: Sessions, resolver: PolicyResolver) -> None:
    tenant = await make_tenant(sessions, staff=1)
    await put(sessions, tenant, "company", tenant.company_id, {"hours_before": 24})
    await put(sessions, tenant, "staff", tenant.staff_ids[0], {"fee": 3})
    await resolver.sync()
    assert await resolver.warm_cache(tenant.company_id) == 2
    with count_queries(engine_of(sessions)) as statements:
        for policy_type in ("cancellation", "reschedule", "callback"):
            await resolver.resolve(subject(tenant), policy_type)
    assert statements == []
    assert resolver.stats().misses == 0


async def test_callback_settings_resolve_through_the_hierarchy(
    sessions: Sessions, resolver: PolicyResolver
) -> None:
    tenant = await make_tenant(sessions, staff=1)
    async with transaction(sessions) as session:
        for level, entity, config in [
            ("company", tenant.company_id, {"sla_hours": {"normal": 12, "high": 3}, "max_escalations": 5}),
            ("service", tenant.service_ids[0], {"sla_hours": {"normal": 8}, "auto_assign": False}),
        ]:
            await set_policy(
                session,
                company_id=tenant.company_id,
                level=level,
                entity_id=entity,
                policy_type="callback",
                config=config,
            )
    defaults = CallbackSettings(
        sla_hours={Priority.URGENT: 2, Priority.HIGH: 4, Priority.NORMAL: 24},
        escalation_cooldown_hours=4,
        max_contact_attempts=3,
        max_escalations=3,
    )
    settings = await resolver.callback_settings(subject(tenant), defaults)
    # sla_hours is one key: the service's value replaces the company's whole map, defaults fill the rest.
    assert settings.sla_hours == {Priority.URGENT: 2, Priority.HIGH: 4, Priority.NORMAL: 8}
    assert settings.auto_assign is False
    assert settings.max_escalations == 5
    assert settings.max_contact_attempts == 3
