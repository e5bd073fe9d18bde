"""Notification storage on real PostgreSQL: the migrated schema, the catalogue, settings, the log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.notifications import (
    Audience,
    Channel,
    DeliveryStatus,
    NotificationSubject,
    NotifyEvent,
    PlannedDelivery,
    Recipient,
    RecipientType,
)
from models.tables import Base, NotificationDelivery
from rules.notifications import RetryDefaults
from store import notification_log as delivery_log
from store import notification_settings as store
from store.db import transaction
from store.hierarchy import UnknownTarget
from tests.factories import add_staff, make_tenant

Sessions = async_sessionmaker[AsyncSession]
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
REQUIRED_EVENTS = (
    "callback.created",
    "callback.assigned",
    "callback.sla_warning",
    "callback.escalated",
    "callback.contacted",
    "callback.attempt_failed",
    "callback.completed",
    "callback.cancelled",
    "callback.expired",
    "appointment.cancelled",
    "appointment.rescheduled",
)


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_the_migrated_schema_matches_the_models(sessions: Sessions) -> None:
    async with sessions() as session:
        connection = await session.connection()
        assert await connection.run_sync(_diff) == []


async def test_the_catalogue_is_seeded_with_categories_channels_and_audiences(sessions: Sessions) -> None:
    async with sessions() as session:
        catalogue = {entry.event_type: entry for entry in await store.load_catalogue(session)}
    assert set(REQUIRED_EVENTS) <= set(catalogue)
    escalated = catalogue["callback.escalated"]
    assert escalated.category == "sla"
    assert escalated.is_system_event
    assert escalated.default_channels == [Channel.EMAIL, Channel.WEBHOOK]
    assert Audience.ASSIGNEE in escalated.audience
    assert catalogue["appointment.cancelled"].category == "appointment"
    assert all(entry.label and entry.default_channels for entry in catalogue.values())


async def test_settings_are_set_replaced_listed_and_deleted(sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant)
    key = {"company_id": tenant.company_id, "event_type": "callback.assigned", "channel": "email"}
    async with transaction(sessions) as session:
        await store.set_notification_setting(session, level="company", entity_id=tenant.company_id, **key)
        await store.set_notification_setting(
            session, level="staff", entity_id=staff, is_enabled=False, fallback_channel="sms", **key
        )
        replaced = await store.set_notification_setting(
            session, level="staff", entity_id=staff, is_enabled=False, fallback_channel=None, **key
        )
    assert replaced.fallback_channel is None
    async with sessions() as session:
        listed = await store.list_notification_settings(session, company_id=tenant.company_id)
        only_staff = await store.list_notification_settings(
            session, company_id=tenant.company_id, level="staff", entity_id=staff
        )
    assert [(s.level, s.is_enabled) for s in listed] == [("company", True), ("staff", False)]
    assert [s.id for s in only_staff] == [replaced.id]
    async with transaction(sessions) as session:
        assert await store.delete_notification_setting(session, level="staff", entity_id=staff, **key)
        assert not await store.delete_notification_setting(session, level="staff", entity_id=staff, **key)
    async with sessions() as session:
        assert len(await store.list_notification_settings(session, company_id=tenant.company_id)) == 1


async def test_invalid_settings_are_refused_and_write_nothing(sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    other = await make_tenant(sessions, name="Other")
    with pytest.raises(store.InvalidNotificationSetting) as refused:
        async with transaction(sessions) as session:
            await store.set_notification_setting(
                session,
                company_id=tenant.company_id,
                level="company",
                entity_id=tenant.company_id,
                event_type="callback.exploded",
                channel="pigeon",
                fallback_channel="pigeon",
                retry_count=-1,
            )
    assert len(refused.value.errors) == 5
    with pytest.raises(UnknownTarget):
        async with transaction(sessions) as session:
            await store.set_notification_setting(
                session,
                company_id=tenant.company_id,
                level="branch",
                entity_id=other.branch_ids[0],
                event_type="callback.assigned",
                channel="email",
            )
    async with sessions() as session:
        assert await store.list_notification_settings(session, company_id=tenant.company_id) == []


async def test_effective_settings_say_which_level_supplied_each_key(sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant)
    key = {"company_id": tenant.company_id, "event_type": "callback.assigned", "channel": "email"}
    async with transaction(sessions) as session:
        await store.set_notification_setting(
            session, level="company", entity_id=tenant.company_id, retry_count=7, **key
        )
        await store.set_notification_setting(
            session, level="staff", entity_id=staff, is_enabled=False, fallback_channel="sms", **key
        )
    async with sessions() as session:
        effective = await store.effective_notification_settings(
            session,
            company_id=tenant.company_id,
            defaults=RetryDefaults(),
            branch_id=tenant.branch_ids[0],
            staff_id=staff,
            event_type="callback.assigned",
        )
        company_only = await store.effective_notification_settings(
            session, company_id=tenant.company_id, defaults=RetryDefaults(), event_type="callback.assigned"
        )
    email = next(e.setting for e in effective if e.setting.channel is Channel.EMAIL)
    assert not email.enabled
    assert email.fallback_channel is Channel.SMS
    assert email.sources["is_enabled"] == f"staff:{staff}"
    sms = next(e.setting for e in effective if e.setting.channel is Channel.SMS)
    assert (sms.enabled, sms.sources["is_enabled"]) == (False, "default")
    company_email = next(e.setting for e in company_only if e.setting.channel is Channel.EMAIL)
    assert company_email.enabled
    assert company_email.retry_count == 7
    assert company_email.sources["retry_count"] == f"company:{tenant.company_id}"


def _planned(tenant_company: int, seq: int, channel: Channel, address: str) -> PlannedDelivery:
    return PlannedDelivery(
        event=NotifyEvent(
            event_id=f"callback:c1:{seq}",
            type="callback.assigned" if seq % 2 else "callback.escalated",
            occurred_at=NOW,
            subject=NotificationSubject(type="callback", id="c1", company_id=tenant_company),
        ),
        recipient=Recipient(type=RecipientType.STAFF, id="s1", email=address, phone=address),
        channel=channel,
        address=address,
        retry_count=3,
        retry_delay_minutes=5,
    )


async def test_a_delivery_is_claimed_once_and_a_sent_one_is_never_claimed_again(sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    planned = _planned(tenant.company_id, 1, Channel.EMAIL, "a@b.example")
    async with transaction(sessions) as session:
        first = await delivery_log.claim_delivery(session, planned)
        await delivery_log.mark_failed(session, planned, "SMTP 451", final=False)
    async with transaction(sessions) as session:
        second = await delivery_log.claim_delivery(session, planned)
        await delivery_log.mark_sent(session, planned)
    async with transaction(sessions) as session:
        third = await delivery_log.claim_delivery(session, planned)
        await delivery_log.mark_failed(session, planned, "late failure must not undo sent", final=True)
    assert (first.already_sent, first.attempts) == (False, 1)
    assert (second.already_sent, second.attempts) == (False, 2)
    assert (third.already_sent, third.attempts) == (True, 2)
    async with sessions() as session:
        [record] = await delivery_log.list_deliveries(session, company_id=tenant.company_id)
    assert (record.status, record.attempts, record.last_error) == (DeliveryStatus.SENT, 2, None)
    assert record.message_id == planned.message_id


async def test_the_delivery_log_filters_and_pages_newest_first(sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    other = await make_tenant(sessions, name="Other")
    async with transaction(sessions) as session:
        for seq in range(1, 6):
            planned = _planned(tenant.company_id, seq, Channel.EMAIL if seq < 4 else Channel.SMS, f"x{seq}")
            await delivery_log.claim_delivery(session, planned)
            if seq % 2:
                await delivery_log.mark_sent(session, planned)
        await delivery_log.claim_delivery(session, _planned(other.company_id, 9, Channel.EMAIL, "other"))
    async with sessions() as session:

        async def log(**filters: Any) -> list[str]:
            found = await delivery_log.list_deliveries(session, company_id=tenant.company_id, **filters)
            return [record.event_id for record in found]

        assert await log() == [f"callback:c1:{seq}" for seq in (5, 4, 3, 2, 1)]
        assert await log(channel="sms") == ["callback:c1:5", "callback:c1:4"]
        assert await log(status="sent") == ["callback:c1:5", "callback:c1:3", "callback:c1:1"]
        assert await log(event_type="callback.escalated") == ["callback:c1:4", "callback:c1:2"]
        assert await log(subject_type="callback", subject_id="c1", limit=2) == [
            "callback:c1:5",
            "callback:c1:4",
        ]
        newest = await delivery_log.list_deliveries(session, company_id=tenant.company_id, limit=2)
        assert await log(before_id=newest[-1].id) == ["callback:c1:3", "callback:c1:2", "callback:c1:1"]
        assert await log(recipient="staff:s1", since=NOW - timedelta(days=3650)) != []


async def _row(sessions: Sessions, planned: PlannedDelivery) -> NotificationDelivery:
    async with sessions() as session:
        found = await session.scalar(
            select(NotificationDelivery).where(NotificationDelivery.message_id == planned.message_id)
        )
        assert found is not None
        return found


async def test_a_live_lease_keeps_other_attempts_out_until_it_runs_out(sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    planned = _planned(tenant.company_id, 1, Channel.EMAIL, "a@b.example")
    lease = timedelta(minutes=3)
    async with transaction(sessions) as session:
        first = await delivery_log.claim_delivery(session, planned, owner="run/1#1", lease=lease)
    async with transaction(sessions) as session:
        second = await delivery_log.claim_delivery(session, planned, owner="run/1#2", lease=lease)
    assert (first.busy, first.attempts) == (False, 1)
    assert (second.busy, second.attempts) == (True, 1)  # nothing counted, nothing to send
    assert second.lease_until is not None
    # The lease runs out (the first attempt died without a word): the next attempt takes the row over.
    async with transaction(sessions) as session:
        await session.execute(
            update(NotificationDelivery)
            .where(NotificationDelivery.message_id == planned.message_id)
            .values(lease_until=func.now() - timedelta(seconds=1))
        )
        third = await delivery_log.claim_delivery(session, planned, owner="run/1#3", lease=lease)
    assert (third.busy, third.attempts) == (False, 2)
    async with transaction(sessions) as session:
        # The first attempt wakes up and fails late: not its row any more, nothing is written.
        assert (
            await delivery_log.mark_failed(session, planned, "late", retry_count=3, owner="run/1#1") is None
        )
        await delivery_log.mark_sent(session, planned)
    row = await _row(sessions, planned)
    assert (row.status, row.attempts, row.failures, row.lease_owner, row.last_error) == (
        "sent",
        2,
        0,
        None,
        None,
    )


async def test_only_channel_failures_count_against_the_retries_and_every_row_ends_failed_or_sent(
    sessions: Sessions,
) -> None:
    tenant = await make_tenant(sessions)
    planned = _planned(tenant.company_id, 1, Channel.SMS, "+4930111")
    states = []
    for attempt in (1, 2, 3):
        owner = f"run/1#{attempt}"
        async with transaction(sessions) as session:
            await delivery_log.claim_delivery(session, planned, owner=owner, lease=timedelta(minutes=1))
            if attempt == 2:  # an error of our own: the row is given back, nothing counted
                await delivery_log.release(session, planned, owner)
                states.append(None)
            else:
                states.append(
                    await delivery_log.mark_failed(
                        session, planned, "gateway 503", retry_count=1, owner=owner
                    )
                )
    assert states == [False, None, True]  # pending after the first failure, failed after the second
    row = await _row(sessions, planned)
    assert (row.status, row.attempts, row.failures, row.last_error) == ("failed", 3, 2, "gateway 503")

    # A delivery given up before any attempt claimed it is recorded, failed, with the reason.
    never = _planned(tenant.company_id, 2, Channel.EMAIL, "c@d.example")
    sent = _planned(tenant.company_id, 3, Channel.EMAIL, "e@f.example")
    async with transaction(sessions) as session:
        await delivery_log.claim_delivery(session, sent)
        await delivery_log.mark_sent(session, sent)
    async with transaction(sessions) as session:
        await delivery_log.abandon(session, never, "given up: the database was gone")
        await delivery_log.abandon(session, sent, "given up too late")
    given_up, kept = await _row(sessions, never), await _row(sessions, sent)
    assert (given_up.status, given_up.attempts, given_up.last_error) == (
        "failed",
        0,
        "given up: the database was gone",
    )
    assert (kept.status, kept.last_error) == ("sent", None)
