"""What the periodic jobs read and delete (`activities/operations.py` drives them).

The reconciliation sweep pages through open rows and rebuilds the workflow state a row stands for from the
row and its history; the retention job deletes soft-deleted rows in short batches. The rebuild is pure
(no I/O) so it is the same whichever process runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.callbacks import (
    TERMINAL_STATUSES,
    AttemptOutcome,
    CallbackSettings,
    CallbackState,
    CallbackStatus,
    ContactAttempt,
    Escalation,
    EscalationReason,
    NewCallback,
)
from models.tables import (
    AppointmentModification,
    CallbackEscalation,
    CallbackEventRow,
    CallbackRequest,
    NotificationConfiguration,
    PolicyConfiguration,
)

OPEN_STATUSES = [CallbackStatus.PENDING.value, CallbackStatus.ASSIGNED.value, CallbackStatus.CONTACTED.value]
# What a rebuilt state says where the row counts attempts or escalations that nothing recorded (an import).
IMPORTED = "imported: not recorded"

Purgeable = (
    type[CallbackRequest]
    | type[PolicyConfiguration]
    | type[AppointmentModification]
    | type[NotificationConfiguration]
)
# The soft-deleted tables, in the order the retention job purges them.
PURGEABLE: tuple[Purgeable, ...] = (
    CallbackRequest,
    PolicyConfiguration,
    AppointmentModification,
    NotificationConfiguration,
)


@dataclass
class RowHistory:
    escalations: list[CallbackEscalation]
    events: list[CallbackEventRow]


async def open_callbacks(session: AsyncSession, after: UUID | None, limit: int) -> list[CallbackRequest]:
    """One page of open, live rows in id order (keyset: the page after `after`)."""
    query = (
        select(CallbackRequest)
        .where(CallbackRequest.status.in_(OPEN_STATUSES), CallbackRequest.deleted_at.is_(None))
        .order_by(CallbackRequest.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(CallbackRequest.id > after)
    return list(await session.scalars(query))


async def history(session: AsyncSession, callback_id: UUID) -> RowHistory:
    escalations = await session.scalars(
        select(CallbackEscalation)
        .where(CallbackEscalation.callback_request_id == callback_id)
        .order_by(CallbackEscalation.sequence)
    )
    events = await session.scalars(
        select(CallbackEventRow)
        .where(CallbackEventRow.callback_request_id == callback_id)
        .order_by(CallbackEventRow.seq)
    )
    return RowHistory(list(escalations), list(events))


async def open_ids_and_versions(
    session: AsyncSession, ids: Sequence[UUID]
) -> tuple[set[UUID], dict[UUID, int]]:
    """Of `ids`: those with an open, live row, and the version of every row there is."""
    open_rows = set(
        await session.scalars(
            select(CallbackRequest.id).where(
                CallbackRequest.id.in_(ids),
                CallbackRequest.status.in_(OPEN_STATUSES),
                CallbackRequest.deleted_at.is_(None),
            )
        )
    )
    versions = dict(
        (
            await session.execute(
                select(CallbackRequest.id, CallbackRequest.version).where(CallbackRequest.id.in_(ids))
            )
        ).all()
    )
    return open_rows, versions


async def set_workflow_id(session: AsyncSession, callback_id: UUID, workflow_id: str) -> None:
    """Point the row at the workflow the sweep started for it (lookups by callback id read it)."""
    await session.execute(
        update(CallbackRequest).where(CallbackRequest.id == callback_id).values(workflow_id=workflow_id)
    )


async def purge_soft_deleted(
    session: AsyncSession, table: Purgeable, cutoff: datetime, batch_size: int
) -> int:
    """Delete up to `batch_size` rows soft-deleted before `cutoff`; returns how many went. Callback rows go
    only once closed: a running workflow would write its row back."""
    extra = (
        [CallbackRequest.status.in_([s.value for s in TERMINAL_STATUSES])] if table is CallbackRequest else []
    )
    batch = select(table.id).where(table.deleted_at < cutoff, *extra).limit(batch_size).scalar_subquery()
    result = await session.execute(delete(table).where(table.id.in_(batch)))
    return int(getattr(result, "rowcount", 0) or 0)


def state_from_row(row: CallbackRequest, settings: CallbackSettings, past: RowHistory) -> CallbackState:
    """The workflow state a row stands for, with its escalations and the facts its audit trail holds.
    What the row counts but nothing records (attempts or escalations of an import) is filled in with
    placeholders marked as such, so the rules (max attempts, max escalations, cooldown) still hold."""
    request = NewCallback(
        company_id=row.company_id,
        branch_id=row.branch_id,
        service_id=row.service_id,
        customer_id=row.customer_id,
        customer_name=row.customer_name,
        phone_number=row.phone_number,
        email=row.email,
        priority=row.priority,
        preferred_staff_id=row.staff_id,
        preferred_time_window=row.preferred_time_window,
        notes=row.notes,
        metadata=row.metadata_ or {},
    )
    events = past.events
    last_change = row.updated_at or row.created_at
    escalations = [
        Escalation(
            number=e.sequence,
            reason=EscalationReason(e.escalation_reason),
            details=(e.metadata_ or {}).get("details"),
            escalated_from=e.escalated_from,
            escalated_to=e.escalated_to,
            at=e.escalated_at,
        )
        for e in past.escalations
    ]
    while len(escalations) < row.escalation_count:
        escalations.append(
            Escalation(
                number=len(escalations) + 1,
                reason=EscalationReason.MANUAL,
                details=IMPORTED,
                at=last_change,
            )
        )
    attempts = [
        ContactAttempt(
            number=number,
            outcome=AttemptOutcome(event.payload.get("outcome", AttemptOutcome.NO_ANSWER.value)),
            notes=event.payload.get("notes"),
            at=event.occurred_at,
        )
        for number, event in enumerate((e for e in events if e.type == "callback.attempt_failed"), start=1)
    ]
    while len(attempts) < row.contact_attempts:
        attempts.append(
            ContactAttempt(
                number=len(attempts) + 1, outcome=AttemptOutcome.NO_ANSWER, notes=IMPORTED, at=last_change
            )
        )
    previous: list[UUID] = []
    for event in events:
        earlier = event.payload.get("previous_staff_id") if event.type == "callback.assigned" else None
        if earlier and UUID(earlier) not in previous:
            previous.append(UUID(earlier))
    return CallbackState(
        id=row.id,
        request=request,
        settings=settings,
        status=CallbackStatus(row.status),
        priority=row.priority,
        created_at=row.created_at,
        expires_at=row.expires_at,
        assigned_to=row.assigned_to,
        previous_assignees=[p for p in previous if p != row.assigned_to],
        assigned_at=row.assigned_at,
        contacted_at=row.contacted_at,
        completed_at=row.completed_at,
        cancelled_at=row.cancelled_at,
        expired_at=row.expired_at,
        completion_notes=row.completion_notes,
        cancel_reason=row.cancel_reason,
        attempts=attempts,
        escalations=escalations,
        warnings_sent=sorted({int(e.payload["percent"]) for e in events if e.type == "callback.sla_warning"}),
        # New events continue the audit trail's numbering (a reused seq would be dropped as a repeat).
        event_count=max((e.seq for e in events), default=0),
        version=row.version,
    )
