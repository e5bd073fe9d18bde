"""Cancel/reschedule decisions on stored appointments: quota sources, stats refresh and idempotent records
(the stats refresh workflow, its Temporal Schedule and the check activity: test_policy_stats_jobs.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.engine import URL

from models.policies import PolicySubject
from models.tables import AppointmentModification, AppointmentModificationStat
from store import appointment_policies as store
from store.db import transaction
from store.policies import PolicyResolver
from tests.appointment_records import (
    CANCEL,
    RESCHEDULE,
    Sessions,
    add_appointment,
    add_customer,
    check,
    company_policy,
    db_now,
    record,
    stats_rows,
)
from tests.factories import make_tenant


@pytest.fixture
async def resolver(sessions: Sessions, database_url: URL) -> AsyncIterator[PolicyResolver]:
    resolver = PolicyResolver(sessions)
    await resolver.listen(database_url)
    try:
        yield resolver
    finally:
        await resolver.close()


# --- decisions on stored appointments -----------------------------------------------------------


async def test_no_policy_allows_with_zero_fee(sessions: Sessions, resolver: PolicyResolver) -> None:
    tenant = await make_tenant(sessions, staff=1)
    now = await db_now(sessions)
    appointment = await add_appointment(sessions, tenant, now + timedelta(hours=1))
    result = await check(resolver, sessions, appointment, CANCEL, now)
    assert result.allowed
    assert result.fee == Decimal("0.00")
    assert result.currency == "EUR"


async def test_allowed_cancel_gets_the_tier_fee_in_the_company_currency(
    sessions: Sessions, resolver: PolicyResolver
) -> None:
    tenant = await make_tenant(sessions, staff=1)
    await company_policy(sessions, tenant, "cancellation", {"hours_before": 12})  # no fee rule: default tiers
    now = await db_now(sessions)
    appointment = await add_appointment(sessions, tenant, now + timedelta(hours=30))
    result = await check(resolver, sessions, appointment, CANCEL, now)
    assert result.allowed
    assert result.fee == Decimal("10.00")
    assert result.hours_notice == pytest.approx(30)
    assert result.sources["hours_before"].level == "company"
    late = await check(resolver, sessions, appointment, CANCEL, now + timedelta(hours=20))
    assert not late.allowed
    assert "deadline was" in late.reason


async def test_the_quota_is_per_customer_and_company(sessions: Sessions, resolver: PolicyResolver) -> None:
    tenant = await make_tenant(sessions, staff=1)
    other = await make_tenant(sessions, name="Other", staff=1)
    second_customer = await add_customer(sessions, tenant, "Max Mustermann")
    await company_policy(sessions, tenant, "cancellation", {"max_cancellations_per_month": 2, "fee": 0})
    now = await db_now(sessions)
    appointment = await add_appointment(sessions, tenant, now + timedelta(days=3))
    foreign = await add_appointment(sessions, other, now + timedelta(days=3))

    await record(sessions, tenant, appointment)  # 1 of 2
    # Another customer of the same company, and another company's modifications, never count ...
    await record(sessions, tenant, appointment, customer=1)
    await record(sessions, tenant, appointment, customer=1)
    for _ in range(3):
        await record(sessions, other, foreign)
    # ... not even a row of another company that names this customer id.
    await record(sessions, tenant, foreign, company_id=other.company_id)

    async with sessions() as session:
        count = await store.customer_count(
            session, company_id=tenant.company_id, customer_id=tenant.customer_ids[0], change=CANCEL, now=now
        )
    assert count == store.QuotaCount(1, "live")
    allowed = await check(resolver, sessions, appointment, CANCEL, now)
    assert allowed.allowed
    assert allowed.remaining_quota == 1

    await record(sessions, tenant, appointment)  # 2 of 2
    refused = await check(resolver, sessions, appointment, CANCEL, now)
    assert not refused.allowed
    assert "2 of 2 in the last 30 days" in refused.reason
    assert tenant.customer_ids[1] == second_customer


async def test_the_quota_window_rolls_over_thirty_days(sessions: Sessions, resolver: PolicyResolver) -> None:
    tenant = await make_tenant(sessions, staff=1)
    await company_policy(sessions, tenant, "cancellation", {"max_cancellations_per_month": 1, "fee": 0})
    now = await db_now(sessions)
    appointment = await add_appointment(sessions, tenant, now + timedelta(days=3))
    await record(sessions, tenant, appointment, created_at=now - timedelta(days=30, seconds=1))
    assert (await check(resolver, sessions, appointment, CANCEL, now)).allowed
    await record(sessions, tenant, appointment, created_at=now - timedelta(days=29, hours=23))
    assert not (await check(resolver, sessions, appointment, CANCEL, now)).allowed
    # A soft-deleted modification does not count.
    async with transaction(sessions) as session:
        await session.execute(update(AppointmentModification).values(deleted_at=func.now()))
    assert (await check(resolver, sessions, appointment, CANCEL, now)).allowed


async def test_null_quota_is_unlimited(sessions: Sessions, resolver: PolicyResolver) -> None:
    tenant = await make_tenant(sessions, staff=1)
    await company_policy(sessions, tenant, "cancellation", {"max_cancellations_per_month": None, "fee": 0})
    now = await db_now(sessions)
    appointment = await add_appointment(sessions, tenant, now + timedelta(days=3))
    for _ in range(5):
        await record(sessions, tenant, appointment)
    result = await check(resolver, sessions, appointment, CANCEL, now)
    assert result.allowed
    assert result.remaining_quota is None


async def test_reschedule_over_the_per_appointment_limit_is_refused(
    sessions: Sessions, resolver: PolicyResolver
) -> None:
    tenant = await make_tenant(sessions, staff=1)
    await company_policy(sessions, tenant, "reschedule", {"max_reschedules_per_appointment": 1, "fee": 0})
    now = await db_now(sessions)
    moved = await add_appointment(sessions, tenant, now + timedelta(days=3))
    fresh = await add_appointment(sessions, tenant, now + timedelta(days=4))
    await record(sessions, tenant, moved, RESCHEDULE)
    refused = await check(resolver, sessions, moved, RESCHEDULE, now)
    assert not refused.allowed
    assert "1 of 1 for this appointment" in refused.reason
    # The limit is per appointment: the same customer's other appointment may still move.
    assert (await check(resolver, sessions, fresh, RESCHEDULE, now)).allowed
    async with sessions() as session:
        left = await store.remaining_modifications(
            resolver,
            session,
            subject=PolicySubject(company_id=tenant.company_id),
            customer_id=tenant.customer_ids[0],
            change=RESCHEDULE,
            now=now,
            appointment_id=fresh,
        )
    assert left.remaining_quota == 1


async def test_another_companys_appointment_is_not_found(
    sessions: Sessions, resolver: PolicyResolver
) -> None:
    tenant = await make_tenant(sessions, staff=1)
    other = await make_tenant(sessions, name="Other", staff=1)
    now = await db_now(sessions)
    appointment = await add_appointment(sessions, other, now + timedelta(days=1))
    async with sessions() as session:
        with pytest.raises(store.AppointmentNotFound):
            await store.check_change(
                resolver,
                session,
                appointment_id=appointment,
                change=CANCEL,
                now=now,
                company_id=tenant.company_id,
            )


# --- stats as the quota source -------------------------------------------------------------------


async def test_refresh_counts_the_rolling_window_per_customer_and_company(sessions: Sessions) -> None:
    tenant = await make_tenant(sessions, staff=1)
    other = await make_tenant(sessions, name="Other", staff=1)
    now = await db_now(sessions)
    mine = await add_appointment(sessions, tenant, now + timedelta(days=3))
    theirs = await add_appointment(sessions, other, now + timedelta(days=3))
    await record(sessions, tenant, mine)
    await record(sessions, tenant, mine)
    await record(sessions, tenant, mine, RESCHEDULE)
    await record(sessions, tenant, mine, created_at=now - timedelta(days=31))  # outside the window
    await record(sessions, other, theirs)

    async with transaction(sessions) as session:
        refreshed = await store.refresh_stats(session)
    assert refreshed.rows == 3
    me, them = tenant.customer_ids[0], other.customer_ids[0]
    assert await stats_rows(sessions) == [
        (tenant.company_id, me, "cancel_30d", 2),
        (tenant.company_id, me, "reschedule_30d", 1),
        (other.company_id, them, "cancel_30d", 1),
    ]
    # A new modification bumps the fresh row in the same transaction ...
    await record(sessions, tenant, mine)
    assert (await stats_rows(sessions))[0][3] == 3
    # ... and a retried request neither records nor bumps twice.
    first = await record(sessions, tenant, mine, request_id="req-1")
    again = await record(sessions, tenant, mine, request_id="req-1")
    assert first.created
    assert not again.created
    assert again.id == first.id
    assert (await stats_rows(sessions))[0][3] == 4
    # Refreshing again replaces the rows rather than adding to them.
    async with transaction(sessions) as session:
        await store.refresh_stats(session)
    rows = await stats_rows(sessions)
    assert len(rows) == 3
    assert rows[0][3] == 4
    async with sessions() as session:
        modifications = await session.scalar(select(func.count()).select_from(AppointmentModification))
    assert modifications == 7


async def test_fresh_stats_are_used_and_stale_or_missing_stats_fall_back_to_the_live_count(
    sessions: Sessions, resolver: PolicyResolver
) -> None:
    tenant = await make_tenant(sessions, staff=1)
    await company_policy(sessions, tenant, "cancellation", {"max_cancellations_per_month": 3, "fee": 0})
    now = await db_now(sessions)
    appointment = await add_appointment(sessions, tenant, now + timedelta(days=3))
    await record(sessions, tenant, appointment)
    customer = tenant.customer_ids[0]

    async def counted(at: datetime) -> store.QuotaCount:
        async with sessions() as session:
            return await store.customer_count(
                session,
                company_id=tenant.company_id,
                customer_id=customer,
                change=CANCEL,
                now=at,
                max_stats_age=timedelta(minutes=15),
            )

    assert await counted(now) == store.QuotaCount(1, "live")  # missing
    async with transaction(sessions) as session:
        refreshed = await store.refresh_stats(session)
    assert await counted(refreshed.calculated_at) == store.QuotaCount(1, "stats")  # fresh
    # Make the fresh row disagree with the truth, to see which one the decision uses.
    async with transaction(sessions) as session:
        await session.execute(update(AppointmentModificationStat).values(count=3))
    decided = await check(resolver, sessions, appointment, CANCEL, refreshed.calculated_at)
    assert not decided.allowed  # from the stats: 3 of 3
    later = refreshed.calculated_at + timedelta(minutes=15)  # as old as the refresh interval: stale
    assert await counted(later) == store.QuotaCount(1, "live")
    assert (await check(resolver, sessions, appointment, CANCEL, later)).allowed
