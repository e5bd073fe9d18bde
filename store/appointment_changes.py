"""The database side of `AppointmentWorkflow`: a change request is written down (with its decision) before
Cal.com is called, and settled with its outcome in the transaction that records the change.

Why written first: a run that dies, or loses Cal.com's answer, between Cal.com and the record finds the
request pending and knows Cal.com may have acted (it reads the booking back instead of acting again);
every retry of a settled request gets its stored outcome; and a pending request holds its place in the
quota, so two cancels of one customer racing on two appointments cannot both pass a limit of one.

Locks, always in this order: the request row, the appointment row (`FOR UPDATE`), the customer
(`pg_advisory_xact_lock` on `appointment-quota:<company>:<customer>`). The quota and the per-appointment
limit are counted under the customer lock, together with the customer's pending requests.
"""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.appointment_workflow import (
    BeginChange,
    BeginStep,
    BegunChange,
    FinishChange,
    FinishedChange,
    SettleChange,
)
from models.appointments import (
    AppointmentChangeOutcome,
    AppointmentChangePlan,
    AppointmentChangeRequest,
    ChangeStatus,
    RecordAppointmentChange,
)
from models.policies import ModificationType
from models.tables import Appointment, AppointmentChangeRequestRow, Customer
from rules.appointment_changes import first_decision, outcome, recorded_outcome
from store.appointments import apply_change, plan_change
from store.policies import PolicyResolver

Row = AppointmentChangeRequestRow
APPOINTMENT_NOT_FOUND = "AppointmentNotFound"


async def lock_customer(session: AsyncSession, company_id: int, customer_id: int) -> None:
    """Serialises every quota decision of one customer until the transaction ends."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"appointment-quota:{company_id}:{customer_id}"},
    )


async def pending_count(session: AsyncSession, request: AppointmentChangeRequest, customer_id: int) -> int:
    """Requests decided but not settled yet that count against the same limit as `request`: the
    customer's cancellations, or this appointment's reschedules."""
    query = (
        select(func.count())
        .select_from(Row)
        .where(
            Row.company_id == request.company_id,
            Row.modification_type == request.change.value,
            Row.outcome.is_(None),
            Row.request_id != request.request_id,
        )
    )
    if request.change is ModificationType.CANCEL:
        query = query.where(Row.customer_id == customer_id)
    else:
        query = query.where(Row.appointment_id == request.appointment_id)
    return int(await session.scalar(query) or 0)


async def pending_changes(session: AsyncSession, company_id: int, appointment_id: int) -> list[str]:
    """The kinds of change (`cancel`, `reschedule`) requested here for the appointment and not settled."""
    found = await session.scalars(
        select(Row.modification_type).where(
            Row.company_id == company_id, Row.appointment_id == appointment_id, Row.outcome.is_(None)
        )
    )
    return list(found)


async def _stored(session: AsyncSession, request: AppointmentChangeRequest) -> Row | None:
    return await session.scalar(
        select(Row)
        .where(Row.company_id == request.company_id, Row.request_id == request.request_id)
        .with_for_update()
    )


async def _customer_name(session: AsyncSession, customer_id: int | None) -> str | None:
    if customer_id is None:
        return None
    return await session.scalar(select(Customer.name).where(Customer.id == customer_id))


async def _known(session: AsyncSession, row: Row, request: AppointmentChangeRequest) -> BegunChange:
    """The answer for a request id written before: refused when reused for another change, the stored
    outcome when settled, else the stored decision to resume with."""
    if row.fingerprint != request.fingerprint:
        return BegunChange(
            step=BeginStep.ANSWERED,
            reused=(
                f"request id {request.request_id!r} was already used for the {row.summary}; this request "
                f"(the {request.describe()}) is a different change: send it with a new request id "
                "(Idempotency-Key)"
            ),
        )
    if row.outcome is not None:
        return BegunChange(
            step=BeginStep.ANSWERED, outcome=AppointmentChangeOutcome.model_validate(row.outcome)
        )
    assert row.plan is not None, "a pending request has its plan"
    plan = AppointmentChangePlan.model_validate(row.plan)
    named = plan.model_copy(update={"customer_name": await _customer_name(session, plan.customer_id)})
    return BegunChange(step=BeginStep.RESUME, plan=named)


async def begin_change(resolver: PolicyResolver, session: AsyncSession, command: BeginChange) -> BegunChange:
    """Decide the request at its `requested_at` and write it down, once per request id (a retry answers
    from the row). Runs in the caller's transaction."""
    request = command.request
    at = request.requested_at
    assert at is not None, "the workflow dates every request"
    known = await _stored(session, request)
    if known is not None:
        return await _known(session, known, request)
    appointment = await session.scalar(
        select(Appointment)
        .where(Appointment.id == request.appointment_id, Appointment.company_id == request.company_id)
        .with_for_update()
    )
    if appointment is None:  # nothing to hold or to resume: not written down (the company may not exist)
        missing = outcome(
            request,
            ChangeStatus.NOT_FOUND,
            at,
            reason=f"appointment {request.appointment_id} does not exist",
            error_type=APPOINTMENT_NOT_FOUND,
        )
        return BegunChange(step=BeginStep.ANSWERED, outcome=missing)
    await lock_customer(session, request.company_id, appointment.customer_id)
    plan = await plan_change(
        resolver,
        session,
        appointment_id=request.appointment_id,
        company_id=request.company_id,
        change=request.change,
        now=at,
        pending=await pending_count(session, request, appointment.customer_id),
    )
    return await _write(session, command, appointment.customer_id, plan, first_decision(request, plan, at))


async def _write(
    session: AsyncSession,
    command: BeginChange,
    customer_id: int,
    plan: AppointmentChangePlan,
    answer: AppointmentChangeOutcome | None,
) -> BegunChange:
    request = command.request
    inserted = await session.scalar(
        insert(Row)
        .values(
            company_id=request.company_id,
            request_id=request.request_id,
            appointment_id=request.appointment_id,
            customer_id=customer_id,
            modification_type=request.change.value,
            fingerprint=request.fingerprint,
            summary=request.describe()[:255],
            requested_at=request.requested_at,
            plan=plan.model_dump(mode="json", exclude={"customer_name"}),
            outcome=answer.model_dump(mode="json") if answer else None,
            workflow_id=command.workflow_id,
            settled_at=func.now() if answer else None,
        )
        .on_conflict_do_nothing(constraint="appointment_change_requests_unique_request")
        .returning(Row.id)
    )
    if inserted is None:  # a concurrent run wrote the same request id first (it has committed now)
        known = await _stored(session, request)
        assert known is not None
        return await _known(session, known, request)
    if answer is not None:
        return BegunChange(step=BeginStep.ANSWERED, plan=plan, outcome=answer)
    return BegunChange(step=BeginStep.ACT, plan=plan)


async def finish_change(session: AsyncSession, command: FinishChange) -> FinishedChange:
    """Record the change (modification, stats, appointment) and settle the request with its outcome, in
    the caller's transaction; a retry after the commit answers from the stored outcome."""
    request = command.request
    assert request.requested_at is not None
    row = await _stored(session, request)
    recorded = await apply_change(
        session,
        RecordAppointmentChange.of(command.request, command.plan, command.booking, command.workflow_id),
    )
    if row is not None and row.outcome is not None:
        return FinishedChange(outcome=AppointmentChangeOutcome.model_validate(row.outcome), recorded=recorded)
    answer = recorded_outcome(request, command.plan, recorded, request.requested_at)
    if row is not None:
        row.outcome = answer.model_dump(mode="json")
        row.settled_at = func.now()
        await session.flush()
    return FinishedChange(outcome=answer, recorded=recorded)


async def settle_change(session: AsyncSession, command: SettleChange) -> AppointmentChangeOutcome:
    """Store the outcome of a request that changed nothing (its quota place is free again); a request
    settled before keeps its first outcome."""
    answer = command.outcome
    row = await session.scalar(
        select(Row)
        .where(Row.company_id == answer.company_id, Row.request_id == answer.request_id)
        .with_for_update()
    )
    if row is None:
        return answer
    if row.outcome is not None:
        return AppointmentChangeOutcome.model_validate(row.outcome)
    row.outcome = answer.model_dump(mode="json")
    row.settled_at = func.now()
    await session.flush()
    return answer
