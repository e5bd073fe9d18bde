"""Who hears about one event: the people it may reach, the branch's quiet hours, and the plan of
deliveries.

Resolving one event reads a constant number of queries whatever the number of recipients and levels:
the catalogue entry, the event's settings in the company (store/notification_settings.py: one query on a
cache miss, none on a hit), the people involved, and the company/branch row. The delivery log that makes
sending idempotent is store/notification_log.py.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import time

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.notifications import NotifyEvent, PlannedDelivery, Recipient, RecipientType
from models.tables import Branch, Company, Customer, Staff
from rules.notifications import People, QuietHours, RetryDefaults, StaffMember, plan_deliveries
from store.notification_settings import NotificationSettings, catalogue_entry, channel_configs


@dataclass(frozen=True)
class QuietDefault:
    """The engine's quiet hours for branches that set none."""

    start: time
    end: time


async def load_people(session: AsyncSession, event: NotifyEvent) -> People:
    """The staff the event may reach (involved ones and the branch's managers), the customer and the
    company webhook. The webhook secret stays out: it must not end up in workflow histories."""
    subject = event.subject
    involved = {
        staff_id
        for staff_id in (
            subject.assigned_staff_id,
            *subject.previous_staff_ids,
            *(_uuid(event.payload.get(key)) for key in ("staff_id", "previous_staff_id")),
            *(_uuid(event.payload.get(key)) for key in ("escalated_to", "escalated_from")),
        )
        if staff_id is not None
    }
    conditions: list[ColumnElement[bool]] = [Staff.id.in_(involved)] if involved else []
    if subject.branch_id is not None:
        conditions.append(and_(Staff.branch_id == subject.branch_id, Staff.is_manager.is_(True)))
    staff: dict[uuid.UUID, StaffMember] = {}
    managers: list[uuid.UUID] = []
    if conditions:
        rows = await session.scalars(
            select(Staff).where(Staff.company_id == subject.company_id, or_(*conditions)).order_by(Staff.id)
        )
        for row in rows:
            staff[row.id] = StaffMember(
                id=row.id,
                name=row.name,
                active=row.is_active,
                email=row.email,
                phone=row.phone_number,
                locale=row.locale,
            )
            if row.is_manager and row.branch_id == subject.branch_id and row.is_active:
                managers.append(row.id)

    webhook_url = await session.scalar(select(Company.webhook_url).where(Company.id == subject.company_id))
    webhook = None
    if webhook_url:
        webhook = Recipient(type=RecipientType.WEBHOOK, id=str(subject.company_id), webhook_url=webhook_url)
    customer = await _customer(session, event)
    return People(staff=staff, managers=managers, customer=customer, webhook=webhook)


async def _customer(session: AsyncSession, event: NotifyEvent) -> Recipient | None:
    subject = event.subject
    locale = "de"
    name, email, phone = subject.customer_name, subject.customer_email, subject.customer_phone
    if subject.customer_id is not None:
        row = await session.get(Customer, subject.customer_id)
        if row is not None and row.company_id == subject.company_id:
            locale = row.locale
            name, email, phone = name or row.name, email or row.email, phone or row.phone_number
    if not (email or phone):
        return None
    customer_id = (
        str(subject.customer_id) if subject.customer_id is not None else f"{subject.type}-{subject.id}"
    )
    return Recipient(
        type=RecipientType.CUSTOMER, id=customer_id, name=name, locale=locale, email=email, phone=phone
    )


async def branch_quiet_hours(
    session: AsyncSession, company_id: int, branch_id: int | None, default: QuietDefault | None
) -> QuietHours | None:
    if branch_id is None:
        return None
    row = (
        await session.execute(
            select(Branch.quiet_hours_start, Branch.quiet_hours_end, Branch.time_zone).where(
                Branch.id == branch_id, Branch.company_id == company_id
            )
        )
    ).first()
    if row is None:
        return None
    if row.quiet_hours_start is not None and row.quiet_hours_end is not None:
        return QuietHours(row.quiet_hours_start, row.quiet_hours_end, row.time_zone)
    if default is None:
        return None
    return QuietHours(default.start, default.end, row.time_zone)


async def resolve_deliveries(
    session: AsyncSession,
    event: NotifyEvent,
    *,
    defaults: RetryDefaults,
    quiet_default: QuietDefault | None,
    settings: NotificationSettings | None = None,
) -> list[PlannedDelivery]:
    """Every message the event causes, each with its channel settings and the time it may go out.
    `settings`: the process's cached resolver; without one the settings are read uncached."""
    entry = await catalogue_entry(session, event.type)
    if entry is None or not entry.is_active:
        return []
    subject = event.subject
    configs = (await channel_configs(session, subject.company_id, [event.type], settings))[event.type]
    people = await load_people(session, event)
    quiet = await branch_quiet_hours(session, subject.company_id, subject.branch_id, quiet_default)
    return plan_deliveries(event, entry, people, configs, defaults=defaults, quiet=quiet)


def _uuid(value: object) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


async def webhook_secret(session: AsyncSession, company_id: int) -> str | None:
    return await session.scalar(select(Company.webhook_secret).where(Company.id == company_id))
