"""The callback read model: rows written from workflow state, and the lookups the workflow needs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from models.callbacks import (
    CallbackEvent,
    CallbackState,
    CallbackStatus,
    DeadReferences,
    Escalation,
)
from models.tables import (
    Branch,
    CallbackEscalation,
    CallbackEventRow,
    CallbackRequest,
    Company,
    Customer,
    Service,
    Staff,
)

OPEN_WORK = (CallbackStatus.ASSIGNED.value, CallbackStatus.CONTACTED.value)


def row_values(state: CallbackState) -> dict[str, Any]:
    request = state.request
    return {
        "id": state.id,
        "company_id": request.company_id,
        "customer_id": request.customer_id,
        "branch_id": request.branch_id,
        "service_id": request.service_id,
        "staff_id": request.preferred_staff_id,
        "phone_number": request.phone_number,
        "customer_name": request.customer_name,
        "email": request.email,
        "preferred_time_window": request.preferred_time_window,
        "priority": state.priority.value,
        "status": state.status.value,
        "assigned_to": state.assigned_to,
        "notes": request.notes,
        "metadata_": request.metadata or None,
        "assigned_at": state.assigned_at,
        "contacted_at": state.contacted_at,
        "completed_at": state.completed_at,
        "cancelled_at": state.cancelled_at,
        "expired_at": state.expired_at,
        "expires_at": state.expires_at,
        "completion_notes": state.completion_notes,
        "cancel_reason": state.cancel_reason,
        "contact_attempts": state.contact_attempts,
        "escalation_count": state.escalation_count,
        "suggested_slots": (
            [slot.model_dump(mode="json") for slot in state.suggested_slots]
            if state.suggested_slots is not None
            else None
        ),
        "version": state.version,
        "created_at": state.created_at,
        "sla_clock": state.settings.sla_clock.value,
        **dial_values(state),
    }


def dial_values(state: CallbackState) -> dict[str, Any]:
    dial = state.dial_window
    return {
        "dial_time_zone": dial.time_zone if dial else None,
        "dial_window_start": dial.start if dial else None,
        "dial_window_end": dial.end if dial else None,
        "dial_not_before": dial.not_before if dial else None,
        "dial_not_after": dial.not_after if dial else None,
    }


async def upsert_callback(
    session: AsyncSession, state: CallbackState, *, workflow_id: str | None = None
) -> bool:
    """Write the row unless a newer version is already there. Returns whether anything was written.

    `workflow_id`: the workflow the state comes from, recorded so lookups by callback id find it (the
    workflow's own writes pass it; None leaves the stored one as it is)."""
    values = row_values(state)
    if workflow_id is not None:
        values["workflow_id"] = workflow_id
    statement = insert(CallbackRequest).values(**values)
    changed: dict[str, Any] = {
        _column(key): statement.excluded[_column(key)] for key in values if key not in ("id", "created_at")
    }
    changed["updated_at"] = func.now()
    upsert = statement.on_conflict_do_update(
        index_elements=[CallbackRequest.id],
        set_=changed,
        where=CallbackRequest.version < statement.excluded.version,
    ).returning(CallbackRequest.id)
    return (await session.execute(upsert)).first() is not None


def _column(attribute: str) -> str:
    return "metadata" if attribute == "metadata_" else attribute


async def insert_escalation(session: AsyncSession, state: CallbackState, escalation: Escalation) -> None:
    await session.execute(
        insert(CallbackEscalation)
        .values(
            company_id=state.request.company_id,
            callback_request_id=state.id,
            sequence=escalation.number,
            escalation_reason=escalation.reason.value,
            escalated_from=escalation.escalated_from,
            escalated_to=escalation.escalated_to,
            escalated_at=escalation.at,
            metadata_={"details": escalation.details} if escalation.details else None,
        )
        .on_conflict_do_nothing(index_elements=["callback_request_id", "sequence"])
    )


async def append_events(session: AsyncSession, state: CallbackState, events: Sequence[CallbackEvent]) -> None:
    if not events:
        return
    await session.execute(
        insert(CallbackEventRow)
        .values(
            [
                {
                    "company_id": state.request.company_id,
                    "callback_request_id": state.id,
                    "seq": event.seq,
                    "type": event.type,
                    "payload": event.payload,
                    "actor": event.actor,
                    "occurred_at": event.at,
                }
                for event in events
            ]
        )
        .on_conflict_do_nothing(index_elements=["callback_request_id", "seq"])
    )


# A capacity claim's two statements, built once (a claim runs with every assignment on the hot path).
_STAFF_LIMIT = (
    select(Staff.max_open_callbacks).where(Staff.id == bindparam("staff_id")).with_for_update(key_share=True)
)
_STAFF_LOAD = select(func.count()).where(
    CallbackRequest.assigned_to == bindparam("staff_id"),
    CallbackRequest.status.in_(OPEN_WORK),
    CallbackRequest.deleted_at.is_(None),
    CallbackRequest.id != bindparam("callback_id"),
)


async def claim_capacity(session: AsyncSession | AsyncConnection, staff_id: UUID, callback_id: UUID) -> bool:
    """Whether `staff_id` can take `callback_id` without going over their `max_open_callbacks`, decided
    under a lock on their row held until the caller's transaction ends: concurrent claims for one staff
    member queue here, and each counts the callbacks the ones before it committed."""
    limit = await session.scalar(_STAFF_LIMIT, {"staff_id": staff_id})
    if limit is None:
        return True  # no cap (or no such staff: the write's foreign key tells)
    taken = await session.scalar(_STAFF_LOAD, {"staff_id": staff_id, "callback_id": callback_id})
    return int(taken or 0) < limit


async def callback_exists(session: AsyncSession, callback_id: UUID) -> bool:
    """Whether the callback's row was written (soft-deleted rows count: the id is taken)."""
    found = await session.scalar(select(CallbackRequest.id).where(CallbackRequest.id == callback_id))
    return found is not None


async def dead_references(
    session: AsyncSession, state: CallbackState, escalation: Escalation | None = None
) -> DeadReferences:
    """The references of a step whose row is gone: what made its write violate a foreign key."""
    request = state.request
    fields: list[str] = []
    for field, table, value in (
        ("company_id", Company, request.company_id),
        ("branch_id", Branch, request.branch_id),
        ("service_id", Service, request.service_id),
        ("customer_id", Customer, request.customer_id),
    ):
        if value is not None and await session.scalar(select(table.id).where(table.id == value)) is None:
            fields.append(field)
    named = {
        "preferred_staff_id": request.preferred_staff_id,
        "assigned_to": state.assigned_to,
        "escalated_from": escalation.escalated_from if escalation else None,
        "escalated_to": escalation.escalated_to if escalation else None,
    }
    wanted = {staff_id for staff_id in named.values() if staff_id is not None}
    alive = (
        set((await session.scalars(select(Staff.id).where(Staff.id.in_(wanted)))).all()) if wanted else set()
    )
    dead_staff = wanted - alive
    fields.extend(field for field, staff_id in named.items() if staff_id in dead_staff)
    return DeadReferences(fields=fields, staff=sorted(dead_staff))


async def get_row(session: AsyncSession, callback_id: UUID) -> CallbackRequest | None:
    """The callback's row as stored (soft-deleted included)."""
    return await session.get(CallbackRequest, callback_id)
