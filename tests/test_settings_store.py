"""The one hierarchical-settings store on real PostgreSQL: notification settings get the policies' cache
and cross-process invalidation, one listener keeps both tables current, and the same merge with sources
serves both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, cast

import asyncpg
import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from activities.notifications import NotificationActivities, NotificationConfig
from config import Settings
from models.notifications import Channel, NotifyEvent
from models.policies import PolicySubject
from rules.notifications import RetryDefaults
from store.db import create_engine, session_factory, transaction
from store.notification_settings import (
    NotificationSettings,
    NotificationSettingsCache,
    effective_notification_settings,
    set_notification_setting,
)
from store.policies import PolicyCache, PolicyResolver, set_policy
from store.settings_cache import SettingsListener, _asyncpg_dsn
from telemetry.metrics import REGISTRY
from tests.factories import Tenant, make_tenant
from tests.notify_fixtures import callback_state, escalation, notify_tenant
from tests.policy_fixtures import FakeClock, count_queries, engine_of
from wiring import api_deps, open_services

Sessions = async_sessionmaker[AsyncSession]
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ASSIGNED = "callback.assigned"


async def put_setting(sessions: Sessions, tenant: Tenant, level: str, entity: object, **values: Any) -> None:
    async with transaction(sessions) as session:
        await set_notification_setting(
            session,
            company_id=tenant.company_id,
            level=level,
            entity_id=entity,
            event_type=values.pop("event_type", ASSIGNED),
            channel=values.pop("channel", "email"),
            **values,
        )


@pytest.fixture
async def notification_settings(sessions: Sessions, database_url: URL) -> AsyncIterator[NotificationSettings]:
    resolver = NotificationSettings(sessions, NotificationSettingsCache(clock=FakeClock()))
    await resolver.listen(database_url)
    try:
        yield resolver
    finally:
        await resolver.close()


def lookups(result: str) -> float:
    value = REGISTRY.get_sample_value(
        "callbacks_notification_settings_cache_lookups_total", {"result": result}
    )
    return value or 0.0


# --- the cache -----------------------------------------------------------------------------------


async def test_notification_lookups_count_hits_and_misses_and_a_hit_costs_no_query(
    sessions: Sessions, notification_settings: NotificationSettings
) -> None:
    tenant = await make_tenant(sessions)
    await put_setting(sessions, tenant, "company", tenant.company_id, retry_count=7)
    await notification_settings.sync()  # the notification of the write above has arrived
    topics = [ASSIGNED, "callback.escalated"]
    before, hits, misses = notification_settings.stats(), lookups("hit"), lookups("miss")

    with count_queries(engine_of(sessions)) as cold:
        first = await notification_settings.channel_configs(tenant.company_id, topics)
    with count_queries(engine_of(sessions)) as warm:
        again = await notification_settings.channel_configs(tenant.company_id, topics)

    assert len(cold) == 1  # both event types in one query
    assert warm == []
    assert again == first
    assert first[ASSIGNED][Channel.EMAIL][("company", str(tenant.company_id))]["retry_count"] == 7
    assert first["callback.escalated"] == {}  # nothing set is cached as nothing set
    stats = notification_settings.stats()
    assert (stats.misses - before.misses, stats.hits - before.hits) == (2, 2)
    assert stats.listening
    assert stats.hit_ratio > 0
    assert (lookups("miss") - misses, lookups("hit") - hits) == (2, 2)


async def test_effective_settings_of_every_event_cost_one_settings_query_and_none_when_cached(
    sessions: Sessions, notification_settings: NotificationSettings
) -> None:
    tenant = await make_tenant(sessions)
    await put_setting(sessions, tenant, "branch", tenant.branch_ids[0], is_enabled=False)
    await notification_settings.sync()

    async def effective() -> tuple[int, list[Any]]:
        async with sessions() as session:
            with count_queries(engine_of(sessions)) as statements:
                found = await effective_notification_settings(
                    session,
                    company_id=tenant.company_id,
                    defaults=RetryDefaults(),
                    branch_id=tenant.branch_ids[0],
                    settings=notification_settings,
                )
        return len(statements), found

    cold_queries, cold = await effective()
    warm_queries, warm = await effective()
    assert (cold_queries, warm_queries) == (2, 1)  # the catalogue, plus the settings once
    assert warm == cold
    email = next(e.setting for e in cold if e.event_type == ASSIGNED and e.setting.channel is Channel.EMAIL)
    assert (email.enabled, email.sources["is_enabled"]) == (False, f"branch:{tenant.branch_ids[0]}")


async def test_without_a_listener_notification_settings_are_never_cached(sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    resolver = NotificationSettings(sessions)
    assert (await resolver.channel_configs(tenant.company_id, [ASSIGNED]))[ASSIGNED] == {}
    await put_setting(sessions, tenant, "company", tenant.company_id, retry_count=2)
    configs = await resolver.channel_configs(tenant.company_id, [ASSIGNED])
    assert configs[ASSIGNED][Channel.EMAIL][("company", str(tenant.company_id))]["retry_count"] == 2
    assert resolver.stats().hits == 0


# --- invalidation across processes ---------------------------------------------------------------


async def test_a_notification_setting_change_in_one_process_is_not_served_stale_by_another(
    sessions: Sessions, database_url: URL
) -> None:
    """Two engines, two resolvers with a listener each, no shared Python state but the database."""
    tenant = await make_tenant(sessions)
    await put_setting(sessions, tenant, "company", tenant.company_id, retry_count=3)
    engines = [create_engine(database_url, pool_size=2) for _ in range(2)]
    writer, reader = (
        NotificationSettings(session_factory(engine), NotificationSettingsCache(clock=FakeClock()))
        for engine in engines
    )
    company = ("company", str(tenant.company_id))

    async def retry_count() -> int:
        configs = await reader.channel_configs(tenant.company_id, [ASSIGNED])
        return int(configs[ASSIGNED][Channel.EMAIL][company]["retry_count"])

    try:
        for each in (writer, reader):
            await each.listen(database_url)
        assert await retry_count() == 3
        assert await retry_count() == 3
        assert reader.stats().hits == 1  # cached in the reader

        await put_setting(writer.sessions, tenant, "company", tenant.company_id, retry_count=9)
        await reader.sync()  # the barrier: every change committed before it has reached the cache
        with count_queries(engines[1]) as statements:
            assert await retry_count() == 9
        assert len(statements) == 1  # re-read, not served from the stale snapshot

        # A change behind the engine's back (plain SQL, e.g. psql) is announced too, and so is a truncate.
        conn = await asyncpg.connect(**_asyncpg_dsn(database_url))
        try:
            await conn.execute("UPDATE notification_configurations SET retry_count = 4")
            await reader.sync()
            assert await retry_count() == 4
            seen = reader.cache.invalidations
            await conn.execute("TRUNCATE notification_configurations")
            await reader.cache.wait_for_invalidations(seen + 1)
        finally:
            await conn.close()
        assert (await reader.channel_configs(tenant.company_id, [ASSIGNED]))[ASSIGNED] == {}
    finally:
        for each in (writer, reader):
            await each.close()
        for engine in engines:
            await engine.dispose()


async def test_the_notification_activity_plans_with_cached_settings_and_sees_another_process_change(
    sessions: Sessions, database_url: URL
) -> None:
    people = await notify_tenant(sessions)
    engine = create_engine(database_url, pool_size=2)
    worker_sessions = session_factory(engine)
    resolver = NotificationSettings(worker_sessions, NotificationSettingsCache(clock=FakeClock()))
    activities = NotificationActivities(
        worker_sessions, NotificationConfig.from_settings(Settings()), resolver
    )
    event = NotifyEvent.for_callback(escalation(people, NOW), callback_state(people, at=NOW))
    await resolver.listen(database_url)
    try:
        first = await activities.resolve_notifications(event)
        assert {(p.recipient.name, p.channel) for p in first} == {
            ("Alice", Channel.EMAIL),
            ("Bob", Channel.EMAIL),
            ("Mia", Channel.EMAIL),
        }
        assert await activities.resolve_notifications(event) == first
        assert (resolver.stats().misses, resolver.stats().hits) == (1, 1)

        # An admin switches the escalation mails off through the API process (another engine).
        await put_setting(
            sessions,
            people.tenant,
            "company",
            people.tenant.company_id,
            event_type="callback.escalated",
            is_enabled=False,
        )
        await resolver.sync()
        assert await activities.resolve_notifications(event) == []
    finally:
        await resolver.close()
        await engine.dispose()


async def test_one_listener_keeps_both_caches_current_and_a_change_drops_only_its_own_table(
    sessions: Sessions, database_url: URL
) -> None:
    tenant = await make_tenant(sessions)
    policy_cache, notification_cache = (
        PolicyCache(clock=FakeClock()),
        NotificationSettingsCache(clock=FakeClock()),
    )
    async with SettingsListener(database_url, [policy_cache, notification_cache]) as listener:
        policies = PolicyResolver(sessions, policy_cache, listener)
        notifications = NotificationSettings(sessions, notification_cache, listener)
        subject = PolicySubject(company_id=tenant.company_id)
        await policies.resolve(subject, "cancellation")
        await notifications.channel_configs(tenant.company_id, [ASSIGNED])
        assert policy_cache.get(tenant.company_id, "cancellation") is not None
        assert notification_cache.get(tenant.company_id, ASSIGNED) is not None

        seen = (policy_cache.invalidations, notification_cache.invalidations)
        await put_setting(sessions, tenant, "company", tenant.company_id)
        await notifications.sync()
        assert (policy_cache.invalidations, notification_cache.invalidations) == (seen[0], seen[1] + 1)
        assert notification_cache.get(tenant.company_id, ASSIGNED) is None
        assert policy_cache.get(tenant.company_id, "cancellation") is not None

        async with transaction(sessions) as session:
            await set_policy(
                session,
                company_id=tenant.company_id,
                level="company",
                entity_id=tenant.company_id,
                policy_type="cancellation",
                config={"fee": 3},
            )
        await policies.sync()
        assert policy_cache.invalidations == seen[0] + 1
        assert (await policies.resolve(subject, "cancellation")).config == {"fee": 3.0}
        await policies.close()  # not its listener: closing the resolver leaves it running
        assert listener.connected
        assert notification_cache.enabled
    assert not policy_cache.enabled
    assert not notification_cache.enabled


def test_a_cache_must_be_kept_current_by_the_listener_it_is_handed_with(sessions: Sessions) -> None:
    listener = SettingsListener("postgresql://localhost/none", [NotificationSettingsCache()])
    with pytest.raises(ValueError, match="does not keep this cache"):
        PolicyResolver(sessions, PolicyCache(), listener)
    with pytest.raises(ValueError, match="same channel"):
        SettingsListener("postgresql://localhost/none", [PolicyCache(), PolicyCache()])


# --- the composition root ------------------------------------------------------------------------


async def test_the_composition_root_shares_one_listener_and_the_same_merge_serves_both_with_sources(
    sessions: Sessions, database_url: URL
) -> None:
    tenant = await make_tenant(sessions)
    branch = tenant.branch_ids[0]
    async with transaction(sessions) as session:
        for level, entity, config in (
            ("company", tenant.company_id, {"hours_before": 48, "fee": 10}),
            ("branch", branch, {"fee": 5}),
        ):
            await set_policy(
                session,
                company_id=tenant.company_id,
                level=level,
                entity_id=entity,
                policy_type="cancellation",
                config=config,
            )
    await put_setting(sessions, tenant, "company", tenant.company_id, retry_count=7, fallback_channel="sms")
    await put_setting(sessions, tenant, "branch", branch, is_enabled=False)
    await put_setting(sessions, tenant, "company", tenant.company_id, channel="sms", retry_count=1)

    url = database_url.render_as_string(hide_password=False)
    not_used = cast(Client, object())  # nothing here talks to Temporal
    async with open_services(
        Settings(), database_url=url, temporal=not_used, export_sdk_metrics=False
    ) as services:
        listener = services.settings_listener
        assert services.policies.listener is listener
        assert services.notification_settings.listener is listener
        assert {type(cache) for cache in listener.caches} == {PolicyCache, NotificationSettingsCache}
        assert services.policies.stats().listening
        assert services.notification_settings.stats().listening
        deps = api_deps(services)
        assert deps.policies is services.policies
        assert deps.notification_settings is services.notification_settings

        entities = PolicySubject(company_id=tenant.company_id, branch_id=branch).entities()
        policy = await services.policies.resolve(
            PolicySubject(company_id=tenant.company_id, branch_id=branch), "cancellation"
        )
        [notification] = (
            await services.notification_settings.snapshots(tenant.company_id, [ASSIGNED])
        ).values()

    # The same merge, with the same answer to "which level supplied this key", for both tables.
    assert policy.config == {"hours_before": 48.0, "fee": 5.0}
    assert {key: source.level for key, source in policy.sources.items()} == {
        "hours_before": "company",
        "fee": "branch",
    }
    email = notification.resolve(entities, Channel.EMAIL)
    assert email.config["is_enabled"] is False
    assert {key: (s.level, s.entity_id) for key, s in email.sources.items()} == {
        "is_enabled": ("branch", str(branch)),
        "retry_count": ("branch", str(branch)),  # a row sets every non-null column
        "retry_delay_minutes": ("branch", str(branch)),
        "fallback_channel": ("company", str(tenant.company_id)),  # left empty below: inherited
    }
    sms = notification.resolve(entities, Channel.SMS)
    assert sms.config["retry_count"] == 1
    assert sms.sources["retry_count"].level == "company"
    assert notification.resolve(entities, Channel.EMAIL) is email  # merges are cached with the snapshot
