"""The delivery log of notifications: the send guard that makes delivery idempotent, and the log the API
lists.

A row per (event, recipient, channel) is claimed before sending (row lock, attempts + 1, a lease for the
attempt) and marked sent right after, so a retried activity finds "sent" and stops, and one that starts
while another attempt may still be sending finds its lease and waits. Every row ends `sent` or `failed`
with its reason: a failure is counted against the tenant's retry_count (`failures`), an error of our own
gives the row back (`release`), and a delivery the workflow gives up on is recorded (`abandon`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.notifications import Channel, DeliveryRecord, DeliveryStatus, PlannedDelivery, RecipientType
from models.tables import NotificationDelivery


@dataclass(frozen=True)
class Claim:
    """The state of a delivery after claiming it for one attempt. `busy`: another attempt holds a live
    lease on it (until `lease_until`): this one must not send."""

    already_sent: bool
    attempts: int
    busy: bool = False
    lease_until: datetime | None = None


def _row_values(planned: PlannedDelivery) -> dict[str, Any]:
    event = planned.event
    return {
        "company_id": event.subject.company_id,
        "event_id": event.event_id,
        "event_type": event.type,
        "subject_type": event.subject.type,
        "subject_id": event.subject.id,
        "recipient": planned.recipient.key,
        "recipient_type": planned.recipient.type.value,
        "address": planned.address,
        "channel": planned.channel.value,
        "message_id": planned.message_id,
        "scheduled_for": planned.not_before,
    }


KEY = ["event_id", "recipient", "channel"]


async def claim_delivery(
    session: AsyncSession,
    planned: PlannedDelivery,
    *,
    owner: str | None = None,
    lease: timedelta | None = None,
) -> Claim:
    """Record the delivery (once) and count this attempt, unless it was already sent or another attempt
    holds a live lease on it.

    The row lock serialises two racing attempts of the same delivery: the second one waits, then sees
    the first one's outcome or lease. `owner` and `lease`: this attempt's name and how long the row is
    its own (database clock); a `sending` row without a lease (written before leases) can be taken.
    """
    await session.execute(
        insert(NotificationDelivery).values(**_row_values(planned)).on_conflict_do_nothing(index_elements=KEY)
    )
    row = (
        await session.execute(
            select(
                NotificationDelivery.id,
                NotificationDelivery.status,
                NotificationDelivery.attempts,
                NotificationDelivery.lease_owner,
                NotificationDelivery.lease_until,
                func.now().label("now"),
            )
            .where(*_key(planned))
            .with_for_update()
        )
    ).one()
    if row.status == DeliveryStatus.SENT.value:
        return Claim(already_sent=True, attempts=row.attempts)
    leased = row.lease_until is not None and row.lease_until > row.now and row.lease_owner != owner
    if row.status == DeliveryStatus.SENDING.value and leased:
        return Claim(already_sent=False, attempts=row.attempts, busy=True, lease_until=row.lease_until)
    await session.execute(
        update(NotificationDelivery)
        .where(NotificationDelivery.id == row.id)
        .values(
            status=DeliveryStatus.SENDING.value,
            attempts=NotificationDelivery.attempts + 1,
            lease_owner=owner,
            lease_until=func.now() + lease if lease is not None else None,
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


def _held_by(owner: str | None) -> list[Any]:
    """Only the lease holder records a failure or gives the row back: an attempt whose lease expired and
    was taken over must not overwrite the newer attempt's state."""
    return [] if owner is None else [NotificationDelivery.lease_owner == owner]


NO_LEASE = {"lease_owner": None, "lease_until": None}


async def mark_sent(session: AsyncSession, planned: PlannedDelivery) -> None:
    """Sent, whoever sent it: a fact no later failure undoes."""
    await session.execute(
        update(NotificationDelivery)
        .where(*_key(planned))
        .values(
            status=DeliveryStatus.SENT.value,
            sent_at=func.now(),
            last_error=None,
            updated_at=func.now(),
            **NO_LEASE,
        )
    )


async def mark_failed(
    session: AsyncSession,
    planned: PlannedDelivery,
    error: str,
    *,
    final: bool = False,
    retry_count: int | None = None,
    owner: str | None = None,
) -> bool | None:
    """A failure of the channel: counted, and `failed` when no retry follows (`final`, or more failures
    than `retry_count`), else back to `pending` for the next attempt. Returns whether it was final, or
    None when the row is not this attempt's any more (sent, or taken over by another attempt)."""
    failures = NotificationDelivery.failures + 1
    last = literal(final) if retry_count is None else or_(literal(final), failures > retry_count)
    status = case((last, DeliveryStatus.FAILED.value), else_=DeliveryStatus.PENDING.value)
    written = await session.scalar(
        update(NotificationDelivery)
        .where(*_key(planned), NotificationDelivery.status != DeliveryStatus.SENT.value, *_held_by(owner))
        .values(failures=failures, status=status, last_error=error[:2000], updated_at=func.now(), **NO_LEASE)
        .returning(NotificationDelivery.status)
    )
    return None if written is None else written == DeliveryStatus.FAILED.value


async def release(session: AsyncSession, planned: PlannedDelivery, owner: str) -> None:
    """Give the row back after an error of our own (nothing was counted against the channel): the next
    attempt may take it at once instead of waiting for the lease."""
    await session.execute(
        update(NotificationDelivery)
        .where(
            *_key(planned),
            NotificationDelivery.status == DeliveryStatus.SENDING.value,
            *_held_by(owner),
        )
        .values(status=DeliveryStatus.PENDING.value, updated_at=func.now(), **NO_LEASE)
    )


async def abandon(session: AsyncSession, planned: PlannedDelivery, reason: str) -> None:
    """The workflow gave up on the delivery (our own errors outlasted their retries): `failed` with the
    reason, created if no attempt got as far as claiming it, unless it was sent. A lease still held by a
    lost attempt is cleared, so that attempt can record nothing but a success."""
    values = {"status": DeliveryStatus.FAILED.value, "last_error": reason[:2000], **NO_LEASE}
    await session.execute(
        insert(NotificationDelivery)
        .values(**_row_values(planned), **values)
        .on_conflict_do_update(
            index_elements=KEY,
            set_={**values, "updated_at": func.now()},
            where=NotificationDelivery.status != DeliveryStatus.SENT.value,
        )
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
