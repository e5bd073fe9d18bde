"""Cal.com bookings into appointments: the one upsert the webhook endpoint and the reconciliation job share.

`apply_booking_event` runs in the caller's transaction, under a per-company advisory lock (two deliveries
of one booking, or a delivery and the reconciliation, never interleave). It finds the appointment by any
uid the booking had (`calcom_booking_uids`), lets rules/calcom_bookings.py decide, and writes: the
appointment (with the customer matched by email or phone in the company, created when new; the service
by event type; the branch from the service; the staff member by the organizer's email), the uids it is
known by, and the customer's modification when they cancelled or rescheduled in Cal.com. `receive_webhook`
adds the delivery log in front, which turns a redelivery into a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.calcom_bookings import BookingChange, BookingEvent, BookingPerson
from models.tables import (
    Appointment,
    AppointmentChangeRequestRow,
    Branch,
    CalcomBookingUid,
    CalcomWebhookDelivery,
    Company,
    Customer,
    Service,
    Staff,
)
from rules import calcom_bookings as rules
from rules.calcom_bookings import BookingPlan, Outcome, StoredAppointment
from store.appointment_policies import check_change, record_modification
from store.policies import PolicyResolver


@dataclass(frozen=True)
class Applied:
    outcome: Outcome
    detail: str
    appointment_id: int | None = None
    modification_id: int | None = None


async def calcom_webhook_secret(session: AsyncSession, company_id: int) -> str | None:
    return await session.scalar(select(Company.calcom_webhook_secret).where(Company.id == company_id))


async def companies_with_calcom(session: AsyncSession) -> list[int]:
    """Companies with at least one service booked through Cal.com (an event type id)."""
    found = await session.scalars(
        select(Service.company_id).where(Service.calcom_event_type_id.is_not(None)).distinct()
    )
    return sorted(found)


async def event_types_of(session: AsyncSession, company_id: int) -> list[int]:
    found = await session.scalars(
        select(Service.calcom_event_type_id)
        .where(Service.company_id == company_id, Service.calcom_event_type_id.is_not(None))
        .distinct()
    )
    return sorted(event_type for event_type in found if event_type is not None)


async def _lock(session: AsyncSession, company_id: int) -> None:
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"calcom-bookings:{company_id}"},
    )


async def find_appointment(session: AsyncSession, company_id: int, uids: list[str]) -> Appointment | None:
    """The appointment known by the first of `uids` that names one (a uid it had, or has)."""
    for uid in uids:
        linked = select(CalcomBookingUid.appointment_id).where(
            CalcomBookingUid.company_id == company_id, CalcomBookingUid.uid == uid
        )
        found = await session.scalar(
            select(Appointment)
            .where(
                Appointment.company_id == company_id,
                or_(Appointment.id.in_(linked), Appointment.calcom_booking_uid == uid),
            )
            .order_by(Appointment.id)
            .limit(1)
            .with_for_update()
        )
        if found is not None:
            return found
    return None


async def link_uids(session: AsyncSession, company_id: int, appointment_id: int, uids: list[str]) -> None:
    """Remember every uid the appointment is known by (its reschedules keep finding it)."""
    rows = [
        {"company_id": company_id, "uid": uid, "appointment_id": appointment_id}
        for uid in dict.fromkeys(uids)
    ]
    if rows:
        await session.execute(insert(CalcomBookingUid).values(rows).on_conflict_do_nothing())


def _zone(name: str | None) -> str | None:
    if not name:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


async def match_customer(session: AsyncSession, company_id: int, person: BookingPerson) -> int | None:
    """The company's (not erased) customer with the attendee's email, else phone number."""
    for condition in (
        func.lower(Customer.email) == person.email.lower() if person.email else None,
        Customer.phone_number == person.phone if person.phone else None,
    ):
        if condition is None:
            continue
        found = await session.scalar(
            select(Customer.id)
            .where(Customer.company_id == company_id, Customer.erased_at.is_(None), condition)
            .order_by(Customer.id)
            .limit(1)
        )
        if found is not None:
            return int(found)
    return None


async def customer_for(session: AsyncSession, company_id: int, person: BookingPerson | None) -> int | None:
    """The attendee's customer, created when new; None without an email or a phone number to match by."""
    if person is None or not (person.email or person.phone):
        return None
    found = await match_customer(session, company_id, person)
    if found is not None:
        return found
    customer = Customer(
        company_id=company_id,
        name=person.name or (person.email or "").split("@")[0] or "Cal.com attendee",
        email=person.email,
        phone_number=person.phone,
        locale=(person.locale or "de")[:8],
        time_zone=_zone(person.time_zone),
    )
    session.add(customer)
    await session.flush()
    return customer.id


async def _placement(
    session: AsyncSession, company_id: int, event: BookingEvent
) -> tuple[int, int, object] | None:
    """(service id, branch id, price) of the company's service with the event type; the branch of a
    service without one is the company's first branch."""
    if event.event_type_id is None:
        return None
    service = await session.scalar(
        select(Service)
        .where(Service.company_id == company_id, Service.calcom_event_type_id == event.event_type_id)
        .order_by(Service.is_active.desc(), Service.id)
        .limit(1)
    )
    if service is None:
        return None
    branch_id = service.branch_id or await session.scalar(
        select(Branch.id).where(Branch.company_id == company_id).order_by(Branch.id).limit(1)
    )
    return (service.id, branch_id, service.price) if branch_id is not None else None


async def _staff_for(session: AsyncSession, company_id: int, email: str | None) -> object:
    if not email:
        return None
    return await session.scalar(
        select(Staff.id)
        .where(Staff.company_id == company_id, func.lower(Staff.email) == email.lower())
        .order_by(Staff.id)
        .limit(1)
    )


async def apply_booking_event(
    session: AsyncSession, company_id: int, event: BookingEvent, *, resolver: PolicyResolver
) -> Applied:
    """Apply one booking change to the company's appointments (idempotent; see the module docstring)."""
    await _lock(session, company_id)
    uids = [event.uid, *([event.previous_uid] if event.previous_uid else [])]
    appointment = await find_appointment(session, company_id, uids)
    stored = (
        StoredAppointment(
            id=appointment.id,
            status=appointment.status,
            starts_at=appointment.starts_at,
            ends_at=appointment.ends_at,
            booking_uid=appointment.calcom_booking_uid,
            changed_at=appointment.calcom_changed_at,
        )
        if appointment is not None
        else None
    )
    decided = rules.plan(stored, event)
    if appointment is None:
        if decided.outcome is not Outcome.CREATED:
            return Applied(decided.outcome, decided.detail)
        return await _create(session, company_id, event, decided, uids)
    await link_uids(session, company_id, appointment.id, uids)
    if not decided.writes:
        return Applied(decided.outcome, decided.detail, appointment.id)
    if event.by_host and await _requested_here(session, company_id, appointment.id, event):
        return Applied(
            Outcome.IGNORED,
            f"this {event.change.value} was requested here and is being applied by the appointment's "
            "workflow, which records it once Cal.com has answered",
            appointment.id,
        )
    modification_id = None
    if decided.modification is not None:
        modification_id = await _record(session, company_id, appointment, event, decided, resolver)
    assert decided.status is not None
    assert decided.starts_at is not None
    assert decided.ends_at is not None
    appointment.status = decided.status
    appointment.starts_at = decided.starts_at
    appointment.ends_at = decided.ends_at
    appointment.calcom_booking_uid = decided.booking_uid
    appointment.calcom_changed_at = event.occurred_at
    await session.flush()
    return Applied(decided.outcome, decided.detail, appointment.id, modification_id)


REQUESTED_KINDS = {BookingChange.CANCELLED: "cancel", BookingChange.RESCHEDULED: "reschedule"}


async def _requested_here(
    session: AsyncSession, company_id: int, appointment_id: int, event: BookingEvent
) -> bool:
    """Whether the change is the echo of one the engine is making (store/appointment_changes.py): a
    request of that kind is pending for the appointment. Applied here first, a cancel would close the
    appointment under the request, which would then be refused and charge no fee although Cal.com
    cancelled for it; the request's own record applies it instead."""
    kind = REQUESTED_KINDS.get(event.change)
    if kind is None:
        return False
    found = await session.scalar(
        select(AppointmentChangeRequestRow.id)
        .where(
            AppointmentChangeRequestRow.company_id == company_id,
            AppointmentChangeRequestRow.appointment_id == appointment_id,
            AppointmentChangeRequestRow.modification_type == kind,
            AppointmentChangeRequestRow.outcome.is_(None),
        )
        .limit(1)
    )
    return found is not None


async def _create(
    session: AsyncSession, company_id: int, event: BookingEvent, decided: BookingPlan, uids: list[str]
) -> Applied:
    placement = await _placement(session, company_id, event)
    if placement is None:
        return Applied(
            Outcome.IGNORED, f"no service of this company has Cal.com event type {event.event_type_id}"
        )
    customer_id = await customer_for(session, company_id, event.attendee)
    if customer_id is None:
        return Applied(Outcome.IGNORED, "the booking names no attendee email or phone number")
    service_id, branch_id, price = placement
    assert decided.status is not None
    assert decided.starts_at is not None
    assert decided.ends_at is not None
    appointment = Appointment(
        company_id=company_id,
        branch_id=branch_id,
        service_id=service_id,
        staff_id=await _staff_for(session, company_id, event.organizer_email),
        customer_id=customer_id,
        starts_at=decided.starts_at,
        ends_at=decided.ends_at,
        price=price,
        status=decided.status,
        calcom_booking_uid=decided.booking_uid,
        calcom_changed_at=event.occurred_at,
    )
    session.add(appointment)
    await session.flush()
    await link_uids(session, company_id, appointment.id, uids)
    modification_id = None
    if decided.modification is not None:
        modification_id = await _record(session, company_id, appointment, event, decided, None)
    return Applied(Outcome.CREATED, decided.detail, appointment.id, modification_id)


async def _record(
    session: AsyncSession,
    company_id: int,
    appointment: Appointment,
    event: BookingEvent,
    decided: BookingPlan,
    resolver: PolicyResolver | None,
) -> int:
    """The customer's change as a modification (counted by the quota), judged by the policy as of the
    change: `within_policy` and the fee it would have cost (Cal.com made the change, so none is charged
    here). An appointment first seen with its change has no earlier state to judge: within policy."""
    change = decided.modification
    assert change is not None
    audit: dict[str, object] = {
        "source": f"calcom {event.source}",
        "trigger": event.trigger,
        "booking_uid": event.uid,
    }
    within_policy = True
    if resolver is not None:
        audit["previous"] = {
            "starts_at": appointment.starts_at.isoformat(),
            "ends_at": appointment.ends_at.isoformat(),
            "status": appointment.status,
            "calcom_booking_uid": appointment.calcom_booking_uid,
        }
        policy = await check_change(
            resolver,
            session,
            appointment_id=appointment.id,
            company_id=company_id,
            change=change,
            now=event.occurred_at,
        )
        within_policy = policy.allowed
        audit.update(fee_due=str(policy.fee), currency=policy.currency, policy=policy.reason)
    recorded = await record_modification(
        session,
        company_id=company_id,
        appointment_id=appointment.id,
        customer_id=appointment.customer_id,
        change=change,
        within_policy=within_policy,
        fee_charged=Decimal("0"),
        request_id=rules.modification_request_id(change, event.uid),
        reason=event.reason,
        modified_by_type=rules.CALCOM_ACTOR,
        modified_by_id="host" if event.by_host else "attendee",
        metadata=audit,
        created_at=event.occurred_at,
    )
    return recorded.id


async def receive_webhook(
    session: AsyncSession,
    company_id: int,
    event: BookingEvent,
    event_at: datetime | None,
    *,
    resolver: PolicyResolver,
) -> Applied:
    """Log the delivery, then apply it; a delivery logged before (same trigger, uid and `createdAt`)
    answers `duplicate` and changes nothing."""
    logged = await session.scalar(
        insert(CalcomWebhookDelivery)
        .values(
            company_id=company_id,
            trigger_event=event.trigger,
            booking_uid=event.uid,
            event_at=event_at,
            outcome="pending",
        )
        .on_conflict_do_nothing()
        .returning(CalcomWebhookDelivery.id)
    )
    if logged is None:
        earlier = await session.scalar(
            select(CalcomWebhookDelivery.appointment_id).where(
                CalcomWebhookDelivery.company_id == company_id,
                CalcomWebhookDelivery.trigger_event == event.trigger,
                CalcomWebhookDelivery.booking_uid == event.uid,
                CalcomWebhookDelivery.event_at == event_at,
            )
        )
        return Applied(Outcome.DUPLICATE, "this delivery was received before", earlier)
    applied = await apply_booking_event(session, company_id, event, resolver=resolver)
    await session.execute(
        update(CalcomWebhookDelivery)
        .where(CalcomWebhookDelivery.id == logged)
        .values(
            outcome=applied.outcome.value, detail=applied.detail[:500], appointment_id=applied.appointment_id
        )
    )
    return applied
