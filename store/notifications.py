"""Notifications in PostgreSQL: the event catalogue, the hierarchical settings, who an event reaches,
and the delivery log that makes sending idempotent.

Resolving one event reads a constant number of queries whatever the number of recipients and levels:
the catalogue entry, every configuration of the event type in the company (one query, merged in memory
by rules/notifications.py like policies), the people involved, and the company/branch row.

The delivery log is the send guard: a row per (event, recipient, channel) is claimed before sending
(row lock, attempts + 1) and marked sent right after, so a retried activity finds "sent" and stops.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.notifications import (
    CatalogueEntry,
    Channel,
    DeliveryRecord,
    DeliveryStatus,
    EffectiveSetting,
    NotifyEvent,
    PlannedDelivery,
    Recipient,
    RecipientType,
    StoredNotificationSetting,
)
from models.policies import Level
from models.tables import (
    Branch,
    Company,
    Customer,
    NotificationConfiguration,
    NotificationDelivery,
    NotificationEventMapping,
    Staff,
)
from rules.notifications import (
    DELIVERABLE,
    ChannelConfigs,
    People,
    QuietHours,
    RetryDefaults,
    StaffMember,
    effective_settings,
    plan_deliveries,
)
from store.hierarchy import UnknownTarget, check_target

# --- the catalogue -------------------------------------------------------------------------------


def _entry(row: NotificationEventMapping) -> CatalogueEntry:
    metadata = row.metadata_ or {}
    return CatalogueEntry(
        event_type=row.event_type,
        label=row.event_label,
        category=row.event_category,
        default_channels=[Channel(channel) for channel in row.default_channels],
        is_system_event=row.is_system_event,
        is_active=row.is_active,
        audience=metadata.get("audience", []),
        description=row.description,
    )


async def load_catalogue(session: AsyncSession) -> list[CatalogueEntry]:
    rows = await session.scalars(
        select(NotificationEventMapping)
        .where(NotificationEventMapping.deleted_at.is_(None))
        .order_by(NotificationEventMapping.event_type)
    )
    return [_entry(row) for row in rows]


async def catalogue_entry(session: AsyncSession, event_type: str) -> CatalogueEntry | None:
    row = await session.scalar(
        select(NotificationEventMapping).where(
            NotificationEventMapping.event_type == event_type, NotificationEventMapping.deleted_at.is_(None)
        )
    )
    return _entry(row) if row is not None else None


# --- settings: read ------------------------------------------------------------------------------


def _layer_config(row: NotificationConfiguration) -> dict[str, Any]:
    """The keys a row sets: every column, except the nullable ones left empty."""
    config: dict[str, Any] = {
        "is_enabled": row.is_enabled,
        "retry_count": row.retry_count,
        "retry_delay_minutes": row.retry_delay_minutes,
    }
    if row.fallback_channel is not None:
        config["fallback_channel"] = row.fallback_channel
    if row.template_override is not None:
        config["template_override"] = row.template_override
    return config


async def load_channel_configs(
    session: AsyncSession, company_id: int, event_types: Sequence[str] | None = None
) -> dict[str, dict[Channel, dict[tuple[str, str], dict[str, Any]]]]:
    """Every active configuration of the company (of the given event types), in one query:
    {event_type: {channel: {(level, configurable_id): config}}}."""
    query = select(NotificationConfiguration).where(
        NotificationConfiguration.company_id == company_id, NotificationConfiguration.deleted_at.is_(None)
    )
    if event_types is not None:
        query = query.where(NotificationConfiguration.event_type.in_(list(event_types)))
    found: dict[str, dict[Channel, dict[tuple[str, str], dict[str, Any]]]] = {}
    for row in await session.scalars(query):
        by_channel = found.setdefault(row.event_type, {})
        by_channel.setdefault(Channel(row.channel), {})[(row.configurable_type, row.configurable_id)] = (
            _layer_config(row)
        )
    return found


def _stored(row: NotificationConfiguration) -> StoredNotificationSetting:
    return StoredNotificationSetting(
        id=row.id,
        company_id=row.company_id,
        level=row.configurable_type,
        entity_id=row.configurable_id,
        event_type=row.event_type,
        channel=Channel(row.channel),
        is_enabled=row.is_enabled,
        fallback_channel=Channel(row.fallback_channel) if row.fallback_channel else None,
        retry_count=row.retry_count,
        retry_delay_minutes=row.retry_delay_minutes,
        template_override=row.template_override,
    )


async def list_notification_settings(
    session: AsyncSession,
    *,
    company_id: int,
    level: str | None = None,
    entity_id: object | None = None,
    event_type: str | None = None,
    channel: str | None = None,
) -> list[StoredNotificationSetting]:
    """The stored (not merged) settings of a company, optionally of one entity, event or channel."""
    query = select(NotificationConfiguration).where(
        NotificationConfiguration.company_id == company_id, NotificationConfiguration.deleted_at.is_(None)
    )
    if level is not None:
        query = query.where(NotificationConfiguration.configurable_type == level)
    if entity_id is not None:
        query = query.where(NotificationConfiguration.configurable_id == str(entity_id))
    if event_type is not None:
        query = query.where(NotificationConfiguration.event_type == event_type)
    if channel is not None:
        query = query.where(NotificationConfiguration.channel == channel)
    rows = await session.scalars(
        query.order_by(
            NotificationConfiguration.event_type,
            NotificationConfiguration.channel,
            NotificationConfiguration.configurable_type,
            NotificationConfiguration.configurable_id,
        )
    )
    return [_stored(row) for row in rows]


async def effective_notification_settings(
    session: AsyncSession,
    *,
    company_id: int,
    defaults: RetryDefaults,
    branch_id: int | None = None,
    service_id: int | None = None,
    staff_id: uuid.UUID | None = None,
    event_type: str | None = None,
) -> list[EffectiveSetting]:
    """What applies to a message for the given branch/service/staff member, per event and channel,
    with the level that supplied each key (for `GET /v1/notification-settings/effective`)."""
    catalogue = [entry for entry in await load_catalogue(session) if event_type in (None, entry.event_type)]
    configs = await load_channel_configs(session, company_id, [entry.event_type for entry in catalogue])
    entities = {"company": str(company_id)}
    if branch_id is not None:
        entities["branch"] = str(branch_id)
    if service_id is not None:
        entities["service"] = str(service_id)
    if staff_id is not None:
        entities["staff"] = str(staff_id)
    channels = [Channel.EMAIL, Channel.SMS, Channel.WEBHOOK]
    found: list[EffectiveSetting] = []
    for entry in catalogue:
        merged = effective_settings(entry, configs.get(entry.event_type, {}), entities, defaults, channels)
        found.extend(EffectiveSetting(event_type=entry.event_type, setting=merged[c]) for c in channels)
    return found


# --- settings: write -----------------------------------------------------------------------------


class InvalidNotificationSetting(ValueError):
    """The event type, channel or fallback is not one the engine knows; `errors` lists every problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


async def set_notification_setting(
    session: AsyncSession,
    *,
    company_id: int,
    level: str,
    entity_id: object,
    event_type: str,
    channel: str,
    is_enabled: bool = True,
    fallback_channel: str | None = None,
    retry_count: int = 3,
    retry_delay_minutes: int = 5,
    template_override: str | None = None,
) -> StoredNotificationSetting:
    """Create or replace the setting of one entity for one event and channel. Nothing is written when
    the event, channel, fallback or target is invalid (InvalidNotificationSetting / UnknownTarget)."""
    errors = []
    if await catalogue_entry(session, event_type) is None:
        errors.append(f"unknown event type {event_type!r}")
    deliverable = sorted({c.value for channels in DELIVERABLE.values() for c in channels})
    if channel not in deliverable:
        errors.append(f"unknown channel {channel!r} (allowed: {', '.join(deliverable)})")
    if fallback_channel is not None and fallback_channel not in deliverable:
        errors.append(f"unknown fallback channel {fallback_channel!r}")
    if fallback_channel is not None and fallback_channel == channel:
        errors.append("the fallback channel must differ from the channel")
    if retry_count < 0 or retry_count > 20:
        errors.append("retry_count must be between 0 and 20")
    if retry_delay_minutes < 0 or retry_delay_minutes > 24 * 60:
        errors.append("retry_delay_minutes must be between 0 and 1440")
    if errors:
        raise InvalidNotificationSetting(errors)
    try:
        target_level = Level(level)
    except ValueError:
        raise UnknownTarget(
            f"unknown level {level!r} (allowed: {', '.join(item.value for item in Level)})"
        ) from None
    configurable_id = await check_target(session, company_id, target_level, entity_id)
    values = {
        "is_enabled": is_enabled,
        "fallback_channel": fallback_channel,
        "retry_count": retry_count,
        "retry_delay_minutes": retry_delay_minutes,
        "template_override": template_override,
    }
    statement = (
        insert(NotificationConfiguration)
        .values(
            company_id=company_id,
            configurable_type=target_level.value,
            configurable_id=configurable_id,
            event_type=event_type,
            channel=channel,
            **values,
        )
        .on_conflict_do_update(
            index_elements=["company_id", "configurable_type", "configurable_id", "event_type", "channel"],
            index_where=NotificationConfiguration.deleted_at.is_(None),
            set_={**values, "updated_at": func.now()},
        )
        .returning(NotificationConfiguration)
    )
    row = (await session.execute(statement)).scalar_one()
    return _stored(row)


async def delete_notification_setting(
    session: AsyncSession, *, company_id: int, level: str, entity_id: object, event_type: str, channel: str
) -> bool:
    """Soft-delete the setting; False when there was none."""
    result = await session.execute(
        update(NotificationConfiguration)
        .where(
            NotificationConfiguration.company_id == company_id,
            NotificationConfiguration.configurable_type == level,
            NotificationConfiguration.configurable_id == str(entity_id),
            NotificationConfiguration.event_type == event_type,
            NotificationConfiguration.channel == channel,
            NotificationConfiguration.deleted_at.is_(None),
        )
        .values(deleted_at=func.now(), updated_at=func.now())
        .returning(NotificationConfiguration.id)
    )
    return result.first() is not None


# --- resolution of one event ---------------------------------------------------------------------


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
) -> list[PlannedDelivery]:
    """Every message the event causes, each with its channel settings and the time it may go out."""
    entry = await catalogue_entry(session, event.type)
    if entry is None or not entry.is_active:
        return []
    subject = event.subject
    configs: ChannelConfigs = (await load_channel_configs(session, subject.company_id, [event.type])).get(
        event.type, {}
    )
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


# --- the delivery log ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """The state of a delivery after claiming it for one attempt."""

    already_sent: bool
    attempts: int


async def claim_delivery(session: AsyncSession, planned: PlannedDelivery) -> Claim:
    """Record the delivery (once) and count this attempt, unless it was already sent.

    The row lock serialises two racing attempts of the same delivery: the second one waits, then sees
    the first one's outcome.
    """
    event = planned.event
    await session.execute(
        insert(NotificationDelivery)
        .values(
            company_id=event.subject.company_id,
            event_id=event.event_id,
            event_type=event.type,
            subject_type=event.subject.type,
            subject_id=event.subject.id,
            recipient=planned.recipient.key,
            recipient_type=planned.recipient.type.value,
            address=planned.address,
            channel=planned.channel.value,
            message_id=planned.message_id,
            scheduled_for=planned.not_before,
        )
        .on_conflict_do_nothing(index_elements=["event_id", "recipient", "channel"])
    )
    row = (
        await session.execute(
            select(NotificationDelivery.id, NotificationDelivery.status, NotificationDelivery.attempts)
            .where(*_key(planned))
            .with_for_update()
        )
    ).one()
    if row.status == DeliveryStatus.SENT.value:
        return Claim(already_sent=True, attempts=row.attempts)
    await session.execute(
        update(NotificationDelivery)
        .where(NotificationDelivery.id == row.id)
        .values(
            status=DeliveryStatus.SENDING.value,
            attempts=NotificationDelivery.attempts + 1,
            updated_at=func.now(),
        )
    )
    return Claim(already_sent=False, attempts=row.attempts + 1)


def _key(planned: PlannedDelivery) -> list[Any]:
    return [
        NotificationDelivery.event_id == planned.event.event_id,
        NotificationDelivery.recipient == planned.recipient.key,
        NotificationDelivery.channel == planned.channel.value,
    ]


async def mark_sent(session: AsyncSession, planned: PlannedDelivery) -> None:
    await session.execute(
        update(NotificationDelivery)
        .where(*_key(planned))
        .values(status=DeliveryStatus.SENT.value, sent_at=func.now(), last_error=None, updated_at=func.now())
    )


async def mark_failed(session: AsyncSession, planned: PlannedDelivery, error: str, *, final: bool) -> None:
    """A failed attempt: `failed` when no retry follows, else back to `pending` for the next one."""
    status = DeliveryStatus.FAILED if final else DeliveryStatus.PENDING
    await session.execute(
        update(NotificationDelivery)
        .where(*_key(planned), NotificationDelivery.status != DeliveryStatus.SENT.value)
        .values(status=status.value, last_error=error[:2000], updated_at=func.now())
    )


def _record(row: NotificationDelivery) -> DeliveryRecord:
    return DeliveryRecord(
        id=row.id,
        company_id=row.company_id,
        event_id=row.event_id,
        event_type=row.event_type,
        subject_type=row.subject_type,
        subject_id=row.subject_id,
        recipient=row.recipient,
        recipient_type=RecipientType(row.recipient_type),
        address=row.address,
        channel=Channel(row.channel),
        message_id=row.message_id,
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        last_error=row.last_error,
        scheduled_for=row.scheduled_for,
        sent_at=row.sent_at,
        created_at=row.created_at,
    )


async def list_deliveries(
    session: AsyncSession,
    *,
    company_id: int,
    event_type: str | None = None,
    event_id: str | None = None,
    status: str | None = None,
    channel: str | None = None,
    recipient: str | None = None,
    subject_type: str | None = None,
    subject_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[DeliveryRecord]:
    """The delivery log of a company, newest first; `before_id` pages (pass the last id seen)."""
    filters: Mapping[Any, object | None] = {
        NotificationDelivery.event_type: event_type,
        NotificationDelivery.event_id: event_id,
        NotificationDelivery.status: status,
        NotificationDelivery.channel: channel,
        NotificationDelivery.recipient: recipient,
        NotificationDelivery.subject_type: subject_type,
        NotificationDelivery.subject_id: subject_id,
    }
    query = select(NotificationDelivery).where(NotificationDelivery.company_id == company_id)
    for column, value in filters.items():
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(NotificationDelivery.created_at >= since)
    if until is not None:
        query = query.where(NotificationDelivery.created_at < until)
    if before_id is not None:
        query = query.where(NotificationDelivery.id < before_id)
    rows = await session.scalars(
        query.order_by(NotificationDelivery.id.desc()).limit(max(1, min(limit, 500)))
    )
    return [_record(row) for row in rows]
