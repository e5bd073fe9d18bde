"""The database side of an appointment change: the plan the workflow decides on, and the one transaction
that records the modification and moves or cancels the appointment.

Recording and updating share a transaction and a row lock on the appointment, so the modification row and
the appointment never disagree, and two requests racing to cancel the same appointment charge one fee:
the second finds the appointment closed and records nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.appointments import AppointmentChangePlan, RecordAppointmentChange, RecordedChange
from models.policies import ModificationType
from models.tables import Appointment, AppointmentModification, Customer
from rules.policy import CLOSED_STATUSES
from store.appointment_policies import (
    DEFAULT_MAX_STATS_AGE,
    AppointmentNotFound,
    check_change,
    record_modification,
)
from store.calcom_bookings import link_uids
from store.policies import PolicyResolver


def _appointment(appointment_id: int, company_id: int) -> Select[Appointment]:
    return select(Appointment).where(Appointment.id == appointment_id, Appointment.company_id == company_id)


async def plan_change(
    resolver: PolicyResolver,
    session: AsyncSession,
    *,
    appointment_id: int,
    company_id: int,
    change: ModificationType,
    now: datetime,
    max_stats_age: timedelta = DEFAULT_MAX_STATS_AGE,
    pending: int = 0,
) -> AppointmentChangePlan:
    """The policy decision plus what the Cal.com call needs (the booking uid), read in one session.
    `pending`: requests decided but not recorded yet that count against the same limit."""
    appointment = await session.scalar(_appointment(appointment_id, company_id))
    if appointment is None:
        raise AppointmentNotFound(f"appointment {appointment_id} does not exist")
    policy = await check_change(
        resolver,
        session,
        appointment_id=appointment_id,
        company_id=company_id,
        change=change,
        now=now,
        max_stats_age=max_stats_age,
        pending=pending,
    )
    return AppointmentChangePlan(
        policy=policy,
        starts_at=appointment.starts_at,
        ends_at=appointment.ends_at,
        status=appointment.status,
        calcom_booking_uid=appointment.calcom_booking_uid,
        branch_id=appointment.branch_id,
        service_id=appointment.service_id,
        staff_id=appointment.staff_id,
        customer_id=appointment.customer_id,
        customer_name=await session.scalar(
            select(Customer.name).where(Customer.id == appointment.customer_id)
        ),
    )


def _state(
    appointment: Appointment, modification_id: int | None, *, created: bool, conflict: str | None = None
) -> RecordedChange:
    return RecordedChange(
        modification_id=modification_id,
        created=created,
        conflict=conflict,
        status=appointment.status,
        starts_at=appointment.starts_at,
        ends_at=appointment.ends_at,
        calcom_booking_uid=appointment.calcom_booking_uid,
    )


def _audit(command: RecordAppointmentChange, appointment: Appointment) -> dict[str, Any]:
    """What the decision was based on and what the appointment was before: the row explains itself."""
    policy = command.policy
    audit: dict[str, Any] = {
        "currency": policy.currency,
        "hours_notice": policy.hours_notice,
        "fee_rule": policy.reason,
        "remaining_quota": policy.remaining_quota,
        "sources": {key: f"{source.level} {source.entity_id}" for key, source in policy.sources.items()},
        "previous": {
            "starts_at": appointment.starts_at.isoformat(),
            "ends_at": appointment.ends_at.isoformat(),
            "status": appointment.status,
            "calcom_booking_uid": appointment.calcom_booking_uid,
        },
    }
    if command.workflow_id is not None:
        audit["workflow_id"] = command.workflow_id
    return audit


async def apply_change(session: AsyncSession, command: RecordAppointmentChange) -> RecordedChange:
    """Record the modification (bumping the stats) and update the appointment, once per request id.

    Runs in the caller's transaction. A retry of a recorded request returns the stored result unchanged.
    """
    appointment = await session.scalar(
        _appointment(command.appointment_id, command.company_id).with_for_update()
    )
    if appointment is None:
        raise AppointmentNotFound(f"appointment {command.appointment_id} does not exist")
    earlier = (
        await session.execute(
            select(
                AppointmentModification.id,
                AppointmentModification.appointment_id,
                AppointmentModification.modification_type,
            ).where(
                AppointmentModification.company_id == command.company_id,
                AppointmentModification.request_id == command.request_id,
            )
        )
    ).first()
    if earlier is not None:
        if (earlier.appointment_id, earlier.modification_type) != (command.appointment_id, command.change):
            return _state(
                appointment,
                None,
                created=False,
                conflict=f"request id {command.request_id!r} was already used for another change",
            )
        return _state(appointment, earlier.id, created=False)
    if appointment.status in CLOSED_STATUSES:
        return _state(appointment, None, created=False, conflict=f"the appointment is {appointment.status}")

    audit = _audit(command, appointment)
    recorded = await record_modification(
        session,
        company_id=command.company_id,
        appointment_id=command.appointment_id,
        customer_id=appointment.customer_id,
        change=command.change,
        within_policy=command.policy.allowed,
        fee_charged=command.policy.fee,
        request_id=command.request_id,
        reason=command.reason,
        modified_by_type=command.modified_by.type.value,
        modified_by_id=command.modified_by.id,
        metadata=audit,
    )
    if not recorded.created:  # the same request id committed meanwhile (for another appointment)
        return _state(appointment, None, created=False, conflict="the request id was recorded meanwhile")
    if appointment.calcom_booking_uid is not None:
        # Cal.com has just made this change: its webhook about it, and any older one, changes nothing.
        appointment.calcom_changed_at = datetime.now(UTC)
    if command.change is ModificationType.CANCEL:
        appointment.status = "cancelled"
    else:
        assert command.new_start is not None, "a reschedule carries its new start"
        length = appointment.ends_at - appointment.starts_at
        appointment.starts_at = command.new_start
        appointment.ends_at = command.new_end or command.new_start + length
        if command.new_booking_uid is not None:
            uids = [uid for uid in (appointment.calcom_booking_uid, command.new_booking_uid) if uid]
            await link_uids(session, command.company_id, appointment.id, uids)
            appointment.calcom_booking_uid = command.new_booking_uid
    await session.flush()
    return _state(appointment, recorded.id, created=recorded.created)


OPEN_APPOINTMENTS = ("scheduled", "confirmed")


async def upcoming_appointments(
    session: AsyncSession, company_id: int, customer_id: int, now: datetime, *, limit: int = 50
) -> list[Appointment]:
    """The customer's open appointments still ahead, soonest first."""
    found = await session.scalars(
        select(Appointment)
        .where(
            Appointment.company_id == company_id,
            Appointment.customer_id == customer_id,
            Appointment.status.in_(OPEN_APPOINTMENTS),
            Appointment.starts_at > now,
        )
        .order_by(Appointment.starts_at)
        .limit(limit)
    )
    return list(found)
