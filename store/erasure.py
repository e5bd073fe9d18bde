"""Erasure of a customer's personal data (GDPR Art. 17) from every table, in one transaction.

The customer row stays (appointments, modifications and callbacks point at it; the quota history stays
countable) with its personal fields blanked and `erased_at` set. The customer's callbacks are those linked
to the row and those carrying the same phone number or email in the same company (a callback taken on
the phone before the customer had a row). Their open workflows are erased first, through the workflow
(api/customers_erase.py), so no later write of theirs brings the data back; this module then blanks the
rows of all of them, open or closed, their audit trail and the notification log.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.callbacks import ERASED, TERMINAL_STATUSES, stored_callback_workflow_id
from models.notifications import PlannedDelivery, RecipientType
from models.tables import (
    Appointment,
    AppointmentModification,
    CallbackEscalation,
    CallbackEventRow,
    CallbackRequest,
    Customer,
    NotificationDelivery,
)
from rules.personal_data import scrub_event_payload

TERMINAL = [status.value for status in TERMINAL_STATUSES]


async def _changed(session: AsyncSession, statement: Any) -> int:
    """Rows an UPDATE changed."""
    return cast(CursorResult[Any], await session.execute(statement)).rowcount


@dataclass(frozen=True)
class ErasureTarget:
    customer_id: int
    company_id: int
    already_erased: bool
    callbacks: list[uuid.UUID]
    open_callbacks: list[str]  # the workflow ids of the open ones


@dataclass
class ErasureCounts:
    callbacks: int = 0
    events: int = 0
    escalations: int = 0
    deliveries: int = 0
    modifications: int = 0
    erased_at: datetime | None = None  # the first erasure's time (a repeated erasure keeps it)


async def find_target(
    session: AsyncSession, customer_id: int, company_id: int | None
) -> ErasureTarget | None:
    """The customer (None when missing or another company's) and every callback that is theirs."""
    query = select(Customer).where(Customer.id == customer_id)
    if company_id is not None:
        query = query.where(Customer.company_id == company_id)
    customer = await session.scalar(query)
    if customer is None:
        return None
    theirs = [CallbackRequest.customer_id == customer.id]
    if customer.phone_number:
        theirs.append(CallbackRequest.phone_number == customer.phone_number)
    if customer.email:
        theirs.append(CallbackRequest.email == customer.email)
    rows = (
        await session.execute(
            select(CallbackRequest.id, CallbackRequest.status, CallbackRequest.workflow_id)
            .where(CallbackRequest.company_id == customer.company_id, or_(*theirs))
            .order_by(CallbackRequest.created_at, CallbackRequest.id)
        )
    ).all()
    return ErasureTarget(
        customer_id=customer.id,
        company_id=customer.company_id,
        already_erased=customer.erased_at is not None,
        callbacks=[row.id for row in rows],
        open_callbacks=[
            stored_callback_workflow_id(row.id, row.workflow_id) for row in rows if row.status not in TERMINAL
        ],
    )


async def erase(session: AsyncSession, target: ErasureTarget, now: datetime) -> ErasureCounts:
    """Blank the personal data of the customer and of the target's callbacks. Idempotent."""
    counts = ErasureCounts()
    customer = await session.get(Customer, target.customer_id, with_for_update=True)
    assert customer is not None, "the target was found in this company"
    customer.name = ERASED
    customer.phone_number = None
    customer.email = None
    customer.time_zone = None
    customer.external_id = None
    customer.erased_at = customer.erased_at or now
    counts.erased_at = customer.erased_at

    ids = target.callbacks
    if ids:
        counts.callbacks = await _changed(
            session,
            update(CallbackRequest)
            .where(CallbackRequest.id.in_(ids))
            .values(
                customer_name=ERASED,
                phone_number=ERASED,
                email=None,
                notes=None,
                metadata_=None,
                completion_notes=None,
                cancel_reason=None,
                updated_at=now,
            ),
        )
        counts.escalations = await _changed(
            session,
            update(CallbackEscalation)
            .where(CallbackEscalation.callback_request_id.in_(ids), CallbackEscalation.metadata_.is_not(None))
            .values(metadata_=None),
        )
        events = await session.scalars(
            select(CallbackEventRow).where(CallbackEventRow.callback_request_id.in_(ids)).with_for_update()
        )
        for event in events:
            scrubbed = scrub_event_payload(event.type, event.payload)
            if scrubbed is not None:
                event.payload = scrubbed
                counts.events += 1

    appointments = [
        str(appointment_id)
        for appointment_id in await session.scalars(
            select(Appointment.id).where(Appointment.customer_id == target.customer_id)
        )
    ]
    about_them = [NotificationDelivery.recipient == f"customer:{target.customer_id}"]
    if ids:
        about_them.append(
            and_(
                NotificationDelivery.subject_type == "callback",
                NotificationDelivery.subject_id.in_([str(callback_id) for callback_id in ids]),
            )
        )
    if appointments:
        about_them.append(
            and_(
                NotificationDelivery.subject_type == "appointment",
                NotificationDelivery.subject_id.in_(appointments),
            )
        )
    counts.deliveries = await _changed(
        session,
        update(NotificationDelivery)
        .where(
            NotificationDelivery.company_id == target.company_id,
            NotificationDelivery.recipient_type == "customer",
            or_(*about_them),
            or_(NotificationDelivery.address != ERASED, NotificationDelivery.last_error.is_not(None)),
        )
        .values(address=ERASED, last_error=None),
    )
    counts.modifications = await _changed(
        session,
        update(AppointmentModification)
        .where(
            AppointmentModification.customer_id == target.customer_id,
            AppointmentModification.reason.is_not(None),
        )
        .values(reason=None),
    )
    await session.flush()
    return counts


async def recipient_erased(session: AsyncSession, planned: PlannedDelivery) -> bool:
    """Whether a message planned for a customer lost its addressee to an erasure since it was planned
    (it was queued with the address, e.g. waiting out quiet hours or a retry): then it is not sent."""
    if planned.recipient.type is not RecipientType.CUSTOMER:
        return False
    subject = planned.event.subject
    customer_id = subject.customer_id
    if customer_id is None and subject.type == "appointment" and subject.id.isdigit():
        customer_id = await session.scalar(
            select(Appointment.customer_id).where(Appointment.id == int(subject.id))
        )
    if customer_id is not None:
        erased_at = await session.scalar(select(Customer.erased_at).where(Customer.id == customer_id))
        if erased_at is not None:
            return True
    if subject.type == "callback":
        try:
            callback_id = uuid.UUID(subject.id)
        except ValueError:
            return False
        name = await session.scalar(
            select(CallbackRequest.customer_name).where(CallbackRequest.id == callback_id)
        )
        return name == ERASED
    return False
