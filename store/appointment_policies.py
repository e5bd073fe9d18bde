"""Cancel/reschedule decisions against the database: the appointment's facts, the quota counts, the
modification stats and their refresh, and the idempotent record of a modification.

Quota source: a customer's cancellations over the rolling 30 days come from
`appointment_modification_stats` when its row was calculated less than `max_stats_age` ago, and from a live
count over `appointment_modifications` otherwise (row stale or missing). Recording a modification bumps
the customer's stats row in the same transaction, so a fresh row never misses a modification made after
its refresh. A fresh row may still count a modification that left the 30-day window since the refresh
(at most `max_stats_age` ago): it errs on the strict side, never the lenient one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, delete, func, literal, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.policies import ModificationType, PolicyResult, PolicySubject, QuotaSource
from models.tables import (
    Appointment,
    AppointmentModification,
    AppointmentModificationStat,
    Branch,
    Company,
)
from rules import policy as rules
from store.policies import PolicyResolver

WINDOW = timedelta(days=30)
DEFAULT_MAX_STATS_AGE = timedelta(minutes=15)


def stat_type(change: ModificationType) -> str:
    return f"{change.value}_30d"


@dataclass(frozen=True)
class AppointmentContext:
    appointment_id: int
    company_id: int
    customer_id: int
    subject: PolicySubject
    facts: rules.AppointmentFacts


async def load_appointment(
    session: AsyncSession, appointment_id: int, *, company_id: int | None = None
) -> AppointmentContext | None:
    """The appointment with its branch's time zone and its company's currency, in one query.
    With `company_id`, another company's appointment is not found."""
    query = (
        select(Appointment, Branch.time_zone, Company.currency)
        .join(Branch, Branch.id == Appointment.branch_id)
        .join(Company, Company.id == Appointment.company_id)
        .where(Appointment.id == appointment_id)
    )
    if company_id is not None:
        query = query.where(Appointment.company_id == company_id)
    row = (await session.execute(query)).first()
    if row is None:
        return None
    appointment, time_zone, currency = row
    return AppointmentContext(
        appointment_id=appointment.id,
        company_id=appointment.company_id,
        customer_id=appointment.customer_id,
        subject=PolicySubject(
            company_id=appointment.company_id,
            branch_id=appointment.branch_id,
            service_id=appointment.service_id,
            staff_id=appointment.staff_id,
        ),
        facts=rules.AppointmentFacts(
            starts_at=appointment.starts_at,
            price=appointment.price,
            currency=currency,
            time_zone=time_zone,
            status=appointment.status,
        ),
    )


@dataclass(frozen=True)
class QuotaCount:
    count: int
    source: QuotaSource


async def live_count(
    session: AsyncSession, *, company_id: int, customer_id: int, change: ModificationType, now: datetime
) -> int:
    """The customer's modifications of this kind in this company since 30 days before `now`."""
    count = await session.scalar(
        select(func.count())
        .select_from(AppointmentModification)
        .where(
            AppointmentModification.company_id == company_id,
            AppointmentModification.customer_id == customer_id,
            AppointmentModification.modification_type == change.value,
            # No upper bound: a modification recorded a moment after `now` still counts (strict side).
            AppointmentModification.created_at > now - WINDOW,
            AppointmentModification.deleted_at.is_(None),
        )
    )
    return int(count or 0)


async def customer_count(
    session: AsyncSession,
    *,
    company_id: int,
    customer_id: int,
    change: ModificationType,
    now: datetime,
    max_stats_age: timedelta = DEFAULT_MAX_STATS_AGE,
) -> QuotaCount:
    """Rolling-30-day count: from the stats row when it is fresh, live otherwise."""
    fresh = await session.scalar(
        select(AppointmentModificationStat.count)
        .where(
            AppointmentModificationStat.company_id == company_id,
            AppointmentModificationStat.customer_id == customer_id,
            AppointmentModificationStat.stat_type == stat_type(change),
            AppointmentModificationStat.calculated_at > now - max_stats_age,
        )
        .order_by(AppointmentModificationStat.period_end.desc())
        .limit(1)
    )
    if fresh is not None:
        return QuotaCount(int(fresh), "stats")
    return QuotaCount(
        await live_count(session, company_id=company_id, customer_id=customer_id, change=change, now=now),
        "live",
    )


async def appointment_count(
    session: AsyncSession, *, company_id: int, appointment_id: int, change: ModificationType
) -> int:
    """How often this appointment was modified this way (the per-appointment reschedule limit)."""
    count = await session.scalar(
        select(func.count())
        .select_from(AppointmentModification)
        .where(
            AppointmentModification.company_id == company_id,
            AppointmentModification.appointment_id == appointment_id,
            AppointmentModification.modification_type == change.value,
            AppointmentModification.deleted_at.is_(None),
        )
    )
    return int(count or 0)


async def used_quota(
    session: AsyncSession,
    context: AppointmentContext,
    change: ModificationType,
    now: datetime,
    max_stats_age: timedelta = DEFAULT_MAX_STATS_AGE,
) -> int:
    if change is ModificationType.CANCEL:
        counted = await customer_count(
            session,
            company_id=context.company_id,
            customer_id=context.customer_id,
            change=change,
            now=now,
            max_stats_age=max_stats_age,
        )
        return counted.count
    return await appointment_count(
        session, company_id=context.company_id, appointment_id=context.appointment_id, change=change
    )


class AppointmentNotFound(LookupError):
    pass


async def check_change(
    resolver: PolicyResolver,
    session: AsyncSession,
    *,
    appointment_id: int,
    change: ModificationType,
    now: datetime,
    company_id: int | None = None,
    max_stats_age: timedelta = DEFAULT_MAX_STATS_AGE,
    pending: int = 0,
) -> PolicyResult:
    """can_cancel / can_reschedule for a stored appointment: its facts, its policy (cached), its quota.
    `pending`: changes decided but not recorded yet, counted as used (store/appointment_changes.py)."""
    context = await load_appointment(session, appointment_id, company_id=company_id)
    if context is None:
        raise AppointmentNotFound(f"appointment {appointment_id} does not exist")
    policy = await resolver.resolve(context.subject, change.policy_type.value, session=session)
    used = await used_quota(session, context, change, now, max_stats_age) + pending
    return rules.decide(policy, change, context.facts, now, used)


async def remaining_modifications(
    resolver: PolicyResolver,
    session: AsyncSession,
    *,
    subject: PolicySubject,
    customer_id: int,
    change: ModificationType,
    now: datetime,
    appointment_id: int | None = None,
    max_stats_age: timedelta = DEFAULT_MAX_STATS_AGE,
) -> PolicyResult:
    """Changes left: cancellations of the customer in 30 days under `subject`'s policy, or reschedules of
    `appointment_id` (required for reschedules, whose limit is per appointment)."""
    policy = await resolver.resolve(subject, change.policy_type.value, session=session)
    currency = await session.scalar(select(Company.currency).where(Company.id == subject.company_id))
    if change is ModificationType.CANCEL:
        counted = await customer_count(
            session,
            company_id=subject.company_id,
            customer_id=customer_id,
            change=change,
            now=now,
            max_stats_age=max_stats_age,
        )
        used = counted.count
    else:
        if appointment_id is None:
            raise ValueError("the reschedule limit is per appointment: pass appointment_id")
        used = await appointment_count(
            session, company_id=subject.company_id, appointment_id=appointment_id, change=change
        )
    return rules.remaining_modifications(policy, change, used, currency or "EUR")


# --- recording and stats -------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedModification:
    id: int
    created: bool  # False: the request id had been recorded before (a retry)


async def bump_stats(
    session: AsyncSession, *, company_id: int, customer_id: int, change: ModificationType
) -> None:
    """Count one more modification in the customer's current stats row (if there is one)."""
    await session.execute(
        update(AppointmentModificationStat)
        .where(
            AppointmentModificationStat.company_id == company_id,
            AppointmentModificationStat.customer_id == customer_id,
            AppointmentModificationStat.stat_type == stat_type(change),
        )
        .values(count=AppointmentModificationStat.count + 1, updated_at=func.now())
    )


async def record_modification(
    session: AsyncSession,
    *,
    company_id: int,
    appointment_id: int,
    customer_id: int,
    change: ModificationType,
    within_policy: bool,
    fee_charged: Decimal,
    request_id: str | uuid.UUID,
    reason: str | None = None,
    modified_by_type: str | None = None,
    modified_by_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    created_at: datetime | None = None,
) -> RecordedModification:
    """Write one `appointment_modifications` row and bump the stats, once per `request_id`."""
    values: dict[str, Any] = {
        "company_id": company_id,
        "appointment_id": appointment_id,
        "customer_id": customer_id,
        "modification_type": change.value,
        "within_policy": within_policy,
        "fee_charged": rules.to_cents(fee_charged),
        "reason": reason,
        "modified_by_type": modified_by_type,
        "modified_by_id": modified_by_id,
        "metadata_": metadata,
        "request_id": str(request_id),
    }
    if created_at is not None:
        values["created_at"] = created_at
    inserted = await session.scalar(
        insert(AppointmentModification)
        .values(values)
        .on_conflict_do_nothing(
            index_elements=["company_id", "request_id"], index_where=text("request_id IS NOT NULL")
        )
        .returning(AppointmentModification.id)
    )
    if inserted is not None:
        await bump_stats(session, company_id=company_id, customer_id=customer_id, change=change)
        return RecordedModification(int(inserted), True)
    existing = await session.scalar(
        select(AppointmentModification.id).where(
            AppointmentModification.company_id == company_id,
            AppointmentModification.request_id == str(request_id),
        )
    )
    assert existing is not None
    return RecordedModification(int(existing), False)


@dataclass(frozen=True)
class StatsRefresh:
    rows: int
    calculated_at: datetime


async def refresh_stats(session: AsyncSession) -> StatsRefresh:
    """Recount every customer's modifications over the last 30 days into `appointment_modification_stats`.

    Runs in the caller's transaction. New modifications wait while it runs (SHARE lock), so every
    modification is either in the recount or bumps the new row afterwards; none is lost in between.
    Rows of customers without modifications in the window are removed (their count is the live 0).
    """
    await session.execute(text("LOCK TABLE appointment_modifications IN SHARE MODE"))
    # After the lock: every modification committed so far has created_at <= this instant.
    as_of: datetime = (await session.execute(text("SELECT clock_timestamp()"))).scalar_one()
    start = as_of - WINDOW
    stats = AppointmentModificationStat
    moment = DateTime(timezone=True)
    counted = (
        select(
            AppointmentModification.company_id,
            AppointmentModification.customer_id,
            (AppointmentModification.modification_type + "_30d").label("stat_type"),
            func.count().label("count"),
        )
        .where(
            AppointmentModification.deleted_at.is_(None),
            AppointmentModification.created_at > start,
            AppointmentModification.created_at <= as_of,
        )
        .group_by(
            AppointmentModification.company_id,
            AppointmentModification.customer_id,
            AppointmentModification.modification_type,
        )
        .subquery()
    )
    source = select(
        counted.c.company_id,
        counted.c.customer_id,
        counted.c.stat_type,
        literal(start, moment).label("period_start"),
        literal(as_of, moment).label("period_end"),
        counted.c.count,
        literal(as_of, moment).label("calculated_at"),
    )
    statement = insert(stats).from_select(
        ["company_id", "customer_id", "stat_type", "period_start", "period_end", "count", "calculated_at"],
        source,
    )
    upsert = statement.on_conflict_do_update(
        constraint="unique_customer_stat_period",
        set_={
            "count": statement.excluded.count,
            "period_end": statement.excluded.period_end,
            "calculated_at": statement.excluded.calculated_at,
            "updated_at": func.now(),
        },
    ).returning(stats.id)
    rows = len((await session.execute(upsert)).all())
    await session.execute(delete(stats).where(stats.calculated_at < as_of))
    return StatsRefresh(rows, as_of)
