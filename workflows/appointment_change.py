"""AppointmentChangeWorkflow: one cancel or reschedule request, start to finish. Superseded by the
per-appointment `AppointmentWorkflow` (workflows/appointment.py), which takes every new request; this one
stays registered so that runs started before it finish and their histories replay. Its helpers (the
change event, the orphaned-booking cancel) serve both.

policy check (at `workflow.now()`) → Cal.com cancel/reschedule when the appointment is booked there →
one transaction that records the modification, bumps the stats and updates the appointment → the
notification of an applied change (a NotifyEventWorkflow of its own, started under a deterministic id).

Why a workflow: the Cal.com call and the database write must both happen or the request must say clearly
that nothing happened. Once Cal.com has acted, the record is retried until it lands (a database outage
delays it, never loses it). Before that, every "no" (policy, Cal.com 4xx, unknown appointment) ends the
run with an outcome that says why and leaves everything as it was. Cal.com outages that outlast the retry
budget fail the run; the client may then resubmit the same request id, which runs it again (the Cal.com
cancel is idempotent and the record is keyed by the request id).

Deterministic: activities are referenced by name; only models are imported.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities import names
    from models.appointments import (
        AppointmentChangeOutcome,
        AppointmentChangePlan,
        AppointmentChangeRequest,
        ChangeStatus,
        RecordAppointmentChange,
        RecordedChange,
    )
    from models.calcom import Booking, CancelBooking, RescheduleBooking
    from models.notifications import NotificationSubject, NotifyEvent
    from models.policies import CheckAppointmentChange, ModificationType
    from workflows import calcom
    from workflows.notifications import notify_event

CALCOM_UNAVAILABLE = "CalcomUnavailable"
DB_START_TO_CLOSE = timedelta(seconds=30)
# Before anything changed, a database outage may end the run (the request can be resubmitted) ...
PLAN_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30), maximum_attempts=10
)
# ... after Cal.com acted, the record must land: retried without limit.
RECORD_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=[names.APPOINTMENT_NOT_FOUND],
)
CALCOM_GIVE_UP_AFTER = timedelta(minutes=5)
NOTIFY_PATCH = "appointment-notify-v1"
EVENT_TYPES = {
    ModificationType.CANCEL: "appointment.cancelled",
    ModificationType.RESCHEDULE: "appointment.rescheduled",
}


def notify_change_workflow_id(company_id: int, request_id: str) -> str:
    """One notification run per change request: a resubmitted or replayed request cannot notify twice."""
    return f"notify-appointment-{company_id}-{request_id}"


def change_event(
    request: AppointmentChangeRequest,
    plan: AppointmentChangePlan,
    recorded: RecordedChange,
    now: datetime,
) -> NotifyEvent:
    """The event of an applied change, captured as it happened: the customer, the staff member and the
    company webhook learn the old and the new time and the fee from it."""
    policy = plan.policy
    payload: dict[str, Any] = {
        "appointment_id": request.appointment_id,
        "change": request.change.value,
        "request_id": request.request_id,
        "modification_id": recorded.modification_id,
        "reason": request.reason,
        "fee": str(policy.fee),
        "currency": policy.currency,
        "within_policy": policy.allowed,
        "previous_starts_at": plan.starts_at.isoformat(),
        "previous_ends_at": plan.ends_at.isoformat(),
        "starts_at": recorded.starts_at.isoformat(),
        "ends_at": recorded.ends_at.isoformat(),
        "modified_by": request.modified_by.model_dump(mode="json"),
    }
    actor = request.modified_by
    return NotifyEvent(
        event_id=f"appointment-change:{request.company_id}:{request.request_id}",
        type=EVENT_TYPES[request.change],
        occurred_at=now,
        actor=f"{actor.type.value}:{actor.id}" if actor.id else actor.type.value,
        payload=payload,
        subject=NotificationSubject(
            type="appointment",
            id=str(request.appointment_id),
            company_id=request.company_id,
            branch_id=plan.branch_id,
            service_id=plan.service_id,
            status=recorded.status,
            assigned_staff_id=plan.staff_id,
            customer_id=plan.customer_id,
            customer_name=plan.customer_name,
            due_at=recorded.starts_at,
        ),
    )


def refusal_of(err: FailureError) -> ApplicationError | None:
    """The activity's own non-retryable error (a definite "no"), as opposed to a timeout or outage.
    A regular activity's error arrives wrapped in an `ActivityError`; a local activity's arrives as is."""
    cause = err.cause if isinstance(err, ActivityError) else err
    if isinstance(cause, ApplicationError) and cause.non_retryable:
        return cause
    return None


def _bad_new_start(new_start: datetime, plan: AppointmentChangePlan, now: datetime) -> str | None:
    if new_start <= now:
        return f"the new start {new_start.isoformat()} is not in the future"
    if new_start == plan.starts_at:
        return f"the appointment already starts at {new_start.isoformat()}"
    return None


@workflow.defn(name="AppointmentChangeWorkflow")
class AppointmentChangeWorkflow:
    @workflow.run
    async def run(self, request: AppointmentChangeRequest) -> AppointmentChangeOutcome:
        now = workflow.now()
        base: dict[str, Any] = {
            "request_id": request.request_id,
            "company_id": request.company_id,
            "appointment_id": request.appointment_id,
            "change": request.change,
            "decided_at": now,
        }
        try:
            plan = await self._plan(request, now)
        except FailureError as err:
            refusal = refusal_of(err)
            if refusal is None or refusal.type != names.APPOINTMENT_NOT_FOUND:
                raise
            return AppointmentChangeOutcome(
                **base, status=ChangeStatus.NOT_FOUND, reason=refusal.message, error_type=refusal.type
            )

        current: dict[str, Any] = {
            "policy": plan.policy,
            "starts_at": plan.starts_at,
            "ends_at": plan.ends_at,
            "calcom_booking_uid": plan.calcom_booking_uid,
        }
        if not plan.policy.allowed:
            return AppointmentChangeOutcome(
                **base, **current, status=ChangeStatus.DENIED, reason=plan.policy.reason
            )
        if request.new_start is not None:
            problem = _bad_new_start(request.new_start, plan, now)
            if problem is not None:
                return AppointmentChangeOutcome(
                    **base, **current, status=ChangeStatus.REFUSED, reason=problem
                )

        booking: Booking | None = None
        if plan.calcom_booking_uid is not None:
            try:
                booking = await self._calcom(request, plan.calcom_booking_uid)
            except ActivityError as err:
                refusal = refusal_of(err)
                if refusal is None:
                    raise ApplicationError(
                        f"Cal.com did not complete the {request.change.value} of booking "
                        f"{plan.calcom_booking_uid} within {CALCOM_GIVE_UP_AFTER}; nothing was recorded",
                        type=CALCOM_UNAVAILABLE,
                    ) from err
                return AppointmentChangeOutcome(
                    **base,
                    **current,
                    status=ChangeStatus.REFUSED,
                    reason=f"Cal.com refused the {request.change.value}: {refusal.message}",
                    error_type=refusal.type,
                )

        try:
            recorded = await self._record(request, plan, booking)
        except FailureError as err:
            refusal = refusal_of(err)
            if refusal is None or refusal.type != names.APPOINTMENT_NOT_FOUND:
                raise
            await self._undo_new_booking(request, booking)
            return AppointmentChangeOutcome(
                **base, status=ChangeStatus.NOT_FOUND, reason=refusal.message, error_type=refusal.type
            )
        after: dict[str, Any] = {
            "policy": plan.policy,
            "starts_at": recorded.starts_at,
            "ends_at": recorded.ends_at,
            "calcom_booking_uid": recorded.calcom_booking_uid,
        }
        if recorded.conflict is not None:
            await self._undo_new_booking(request, booking)
            return AppointmentChangeOutcome(
                **base, **after, status=ChangeStatus.REFUSED, reason=recorded.conflict
            )
        outcome = AppointmentChangeOutcome(
            **base,
            **after,
            status=ChangeStatus.APPLIED,
            reason=plan.policy.reason,
            fee_charged=plan.policy.fee,
            modification_id=recorded.modification_id,
        )
        # Runs recorded before the notification step existed replay without it.
        if workflow.patched(NOTIFY_PATCH):
            await notify_event(
                change_event(request, plan, recorded, workflow.now()),
                notify_change_workflow_id(request.company_id, request.request_id),
            )
        return outcome

    async def _plan(self, request: AppointmentChangeRequest, now: datetime) -> AppointmentChangePlan:
        plan: AppointmentChangePlan = await workflow.execute_local_activity(
            names.PLAN_APPOINTMENT_CHANGE,
            CheckAppointmentChange(
                appointment_id=request.appointment_id,
                company_id=request.company_id,
                change=request.change,
                now=now,
            ),
            result_type=AppointmentChangePlan,
            start_to_close_timeout=DB_START_TO_CLOSE,
            retry_policy=PLAN_RETRY,
        )
        return plan

    async def _calcom(self, request: AppointmentChangeRequest, uid: str) -> Booking:
        if request.change is ModificationType.CANCEL:
            return await calcom.cancel_booking(
                CancelBooking(uid=uid, reason=request.reason), give_up_after=CALCOM_GIVE_UP_AFTER
            )
        assert request.new_start is not None
        return await calcom.reschedule_booking(
            RescheduleBooking(uid=uid, start=request.new_start, reason=request.reason),
            give_up_after=CALCOM_GIVE_UP_AFTER,
        )

    async def _record(
        self, request: AppointmentChangeRequest, plan: AppointmentChangePlan, booking: Booking | None
    ) -> RecordedChange:
        recorded: RecordedChange = await workflow.execute_local_activity(
            names.RECORD_APPOINTMENT_CHANGE,
            RecordAppointmentChange.of(request, plan, booking, workflow.info().workflow_id),
            result_type=RecordedChange,
            start_to_close_timeout=DB_START_TO_CLOSE,
            retry_policy=RECORD_RETRY,
        )
        return recorded

    async def _undo_new_booking(self, request: AppointmentChangeRequest, booking: Booking | None) -> None:
        await undo_new_booking(request, booking)


async def undo_new_booking(request: AppointmentChangeRequest, booking: Booking | None) -> None:
    """A reschedule that lost the race to a cancellation (or whose appointment vanished) leaves a new
    Cal.com booking nobody holds: cancel it so the slot is free again."""
    if request.change is not ModificationType.RESCHEDULE or booking is None:
        return
    try:
        await calcom.cancel_booking(
            CancelBooking(
                uid=booking.uid, reason="the appointment changed meanwhile; nobody holds this booking"
            ),
            give_up_after=CALCOM_GIVE_UP_AFTER,
        )
    except ActivityError:
        workflow.logger.warning("could not cancel the orphaned Cal.com booking %s", booking.uid)
