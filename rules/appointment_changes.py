"""The outcome of an appointment change request, as one pure function of what happened to it.

The database side (store/appointment_changes.py) and the workflow (workflows/appointment.py) both end
requests; building the answer here keeps the two from drifting apart. Every outcome is dated at the
request's `requested_at`: the instant the decision was made for (never the time it was written down).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from models.appointments import (
    AppointmentChangeOutcome,
    AppointmentChangePlan,
    AppointmentChangeRequest,
    ChangeStatus,
    RecordedChange,
)


def decided_at(request: AppointmentChangeRequest, fallback: datetime) -> datetime:
    """The instant the request is decided at: when it arrived, or `fallback` for requests without it."""
    return request.requested_at or fallback


def outcome(
    request: AppointmentChangeRequest,
    status: ChangeStatus,
    at: datetime,
    *,
    plan: AppointmentChangePlan | None = None,
    recorded: RecordedChange | None = None,
    reason: str | None = None,
    error_type: str | None = None,
) -> AppointmentChangeOutcome:
    """The answer to `request`. The times and the booking uid are the appointment's as `recorded` left it,
    else as `plan` found it; the policy is `plan`'s. An applied change carries its fee and modification."""
    fields: dict[str, Any] = {
        "request_id": request.request_id,
        "company_id": request.company_id,
        "appointment_id": request.appointment_id,
        "change": request.change,
        "status": status,
        "decided_at": at,
        "reason": reason,
        "error_type": error_type,
    }
    if plan is not None:
        fields.update(
            policy=plan.policy,
            starts_at=plan.starts_at,
            ends_at=plan.ends_at,
            calcom_booking_uid=plan.calcom_booking_uid,
        )
    if recorded is not None:
        fields.update(
            starts_at=recorded.starts_at,
            ends_at=recorded.ends_at,
            calcom_booking_uid=recorded.calcom_booking_uid,
        )
    if status is ChangeStatus.APPLIED:
        assert plan is not None, "an applied change has a plan"
        assert recorded is not None, "an applied change has a record"
        fields.update(
            reason=plan.policy.reason,
            fee_charged=plan.policy.fee,
            modification_id=recorded.modification_id,
        )
    return AppointmentChangeOutcome(**fields)


def recorded_outcome(
    request: AppointmentChangeRequest, plan: AppointmentChangePlan, recorded: RecordedChange, at: datetime
) -> AppointmentChangeOutcome:
    """Applied, or refused when another change closed the appointment before this one was recorded."""
    if recorded.conflict is not None:
        return outcome(
            request, ChangeStatus.REFUSED, at, plan=plan, recorded=recorded, reason=recorded.conflict
        )
    return outcome(request, ChangeStatus.APPLIED, at, plan=plan, recorded=recorded)


def bad_new_start(request: AppointmentChangeRequest, plan: AppointmentChangePlan, at: datetime) -> str | None:
    """Why a reschedule cannot apply as asked (None: it can): the new start must lie ahead of the
    instant of the request and differ from the current one."""
    new_start = request.new_start
    if new_start is None:
        return None
    if new_start <= at:
        return f"the new start {new_start.isoformat()} is not in the future"
    if new_start == plan.starts_at:
        return f"the appointment already starts at {new_start.isoformat()}"
    return None


def first_decision(
    request: AppointmentChangeRequest, plan: AppointmentChangePlan, at: datetime
) -> AppointmentChangeOutcome | None:
    """The answer of a request that ends before anything is done (policy says no, or the new time cannot
    be); None when the change goes ahead."""
    if not plan.policy.allowed:
        return outcome(request, ChangeStatus.DENIED, at, plan=plan, reason=plan.policy.reason)
    problem = bad_new_start(request, plan, at)
    if problem is not None:
        return outcome(request, ChangeStatus.REFUSED, at, plan=plan, reason=problem)
    return None
