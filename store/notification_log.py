"""The delivery log of notifications: the send guard that makes delivery idempotent, and the log the API
lists.

A row per (event, recipient, channel) is claimed before sending (row lock, attempts + 1) and marked sent
right after, so a retried activity finds "sent" and stops.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.notifications import Channel, DeliveryRecord, DeliveryStatus, PlannedDelivery, RecipientType
from models.tables import NotificationDelivery


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
