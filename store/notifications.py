"""Who hears about one event: the people it may reach, the branch's quiet hours, and the plan of
deliveries.

Resolving one event reads a constant number of queries whatever the number of recipients and levels:
the catalogue entry (cached per process), the event's settings in the company
(store/notification_settings.py: one query on a cache miss, none on a hit), the people involved, and the
company with its branch. The delivery log that makes sending idempotent is store/notification_log.py.
"""

from __future__ import annotations

import time as clock
import uuid
from dataclasses import dataclass
from datetime import time

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.notifications import CatalogueEntry, NotifyEvent, PlannedDelivery, Recipient, RecipientType
from models.tables import Branch, Company, Customer, Staff
from rules.notifications import People, QuietHours, RetryDefaults, StaffMember, plan_deliveries
from store.notification_settings import NotificationSettings, catalogue_entry, channel_configs


@dataclass(frozen=True)
class QuietDefault:
    """The engine's quiet hours for branches that set none."""

    start: time
    end: time


async def load_people(session: AsyncSession, event: NotifyEvent, webhook_url: str | None) -> People:
    """The staff the event may reach (involved ones and the branch's managers), the customer and the
    company webhook (its URL read with the branch, `company_and_branch`). The webhook secret stays out:
    it must not end up in workflow histories."""
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
        rows = await session.execute(
            select(
                Staff.id,
                Staff.name,
                Staff.is_active,
                Staff.email,
                Staff.phone_number,
                Staff.locale,
                Staff.is_manager,
                Staff.branch_id,
            )
            .where(Staff.company_id == subject.company_id, or_(*conditions))
            .order_by(Staff.id)
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
        row = (
            await session.execute(
                select(Customer.locale, Customer.name, Customer.email, Customer.phone_number).where(
                    Customer.id == subject.customer_id, Customer.company_id == subject.company_id
                )
            )
        ).first()
        if row is not None:
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


@dataclass(frozen=True)
class CompanyAndBranch:
    webhook_url: str | None
    quiet: QuietHours | None


async def company_and_branch(
    session: AsyncSession, company_id: int, branch_id: int | None, default: QuietDefault | None
) -> CompanyAndBranch:
    """The company's webhook URL and the branch's quiet hours (its own, else the engine's in its time
    zone), in one query."""
    row = (
        await session.execute(
            select(Company.webhook_url, Branch.quiet_hours_start, Branch.quiet_hours_end, Branch.time_zone)
            .select_from(Company)
            .outerjoin(Branch, and_(Branch.id == branch_id, Branch.company_id == Company.id))
            .where(Company.id == company_id)
        )
    ).first()
    if row is None:
        return CompanyAndBranch(None, None)
    quiet = None
    if branch_id is not None and row.time_zone is not None:
        if row.quiet_hours_start is not None and row.quiet_hours_end is not None:
            quiet = QuietHours(row.quiet_hours_start, row.quiet_hours_end, row.time_zone)
        elif default is not None:
            quiet = QuietHours(default.start, default.end, row.time_zone)
    return CompanyAndBranch(row.webhook_url, quiet)


# The catalogue is data the migrations write: read once per process and event type, again after this.
CATALOGUE_TTL_SECONDS = 300.0
_catalogue: dict[str, tuple[float, CatalogueEntry | None]] = {}


async def cached_catalogue_entry(session: AsyncSession, event_type: str) -> CatalogueEntry | None:
    now = clock.monotonic()
    cached = _catalogue.get(event_type)
    if cached is not None and cached[0] > now:
        return cached[1]
    entry = await catalogue_entry(session, event_type)
    _catalogue[event_type] = (now + CATALOGUE_TTL_SECONDS, entry)
    return entry


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
    entry = await cached_catalogue_entry(session, event.type)
    if entry is None or not entry.is_active:
        return []
    subject = event.subject
    configs = (await channel_configs(session, subject.company_id, [event.type], settings))[event.type]
    place = await company_and_branch(session, subject.company_id, subject.branch_id, quiet_default)
    people = await load_people(session, event, place.webhook_url)
    return plan_deliveries(event, entry, people, configs, defaults=defaults, quiet=place.quiet)


def _uuid(value: object) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


async def webhook_secret(session: AsyncSession, company_id: int) -> str | None:
    return await session.scalar(select(Company.webhook_secret).where(Company.id == company_id))
