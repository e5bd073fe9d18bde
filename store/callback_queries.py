"""Reads of the callback read model for the API: list with filters, sort and count, detail, summary.

Every function takes the company to scope by (None only for a super_admin looking across companies), so a
query can never leak another tenant's rows by forgetting a WHERE.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, case, func, not_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from models.callbacks import TERMINAL_STATUSES, CallbackStatus, Priority, stored_callback_workflow_id
from models.tables import (
    Branch,
    CallbackEscalation,
    CallbackEventRow,
    CallbackRequest,
    CallbackStuckRow,
    Service,
    Staff,
)
from store import stuck
from store.callable import callable_now_condition, dial_fields
from store.callback_reports import sla_by_clock

CR = CallbackRequest
_TERMINAL = [status.value for status in TERMINAL_STATUSES]
_OPEN_WORK = (CallbackStatus.ASSIGNED.value, CallbackStatus.CONTACTED.value)

# Sorting by status follows the life cycle and by priority follows urgency, not the alphabet.
_STATUS_RANK = case(
    {s.value: i for i, s in enumerate(CallbackStatus)},
    value=CR.status,
    else_=len(CallbackStatus),
)
_PRIORITY_RANK = case({"normal": 0, "high": 1, "urgent": 2}, value=CR.priority, else_=3)
# The assignee join of every row query; module-level so that sorting by assignee can name it.
_ASSIGNEE = aliased(Staff)
_STUCK = aliased(CallbackStuckRow, name="stuck")
SORT_KEYS: dict[str, Any] = {
    "id": CR.id,
    "customer_name": func.lower(CR.customer_name),
    "status": _STATUS_RANK,
    "priority": _PRIORITY_RANK,
    "branch": func.lower(Branch.name),
    "service": func.lower(Service.name),
    "expires_at": CR.expires_at,
    "created_at": CR.created_at,
}
# Sorts the console offers on top (every column of its queue); the API's contract keeps SORT_KEYS.
CONSOLE_SORT_KEYS: dict[str, Any] = {
    **SORT_KEYS,
    "phone_number": CR.phone_number,
    "assigned_to": func.lower(_ASSIGNEE.name),
    "escalation_count": CR.escalation_count,
}


@dataclass(frozen=True)
class CallbackFilter:
    company_id: int | None
    statuses: Sequence[CallbackStatus] = ()
    priorities: Sequence[Priority] = ()
    branch_id: int | None = None
    assigned_to: uuid.UUID | None = None
    overdue: bool | None = None
    callable_now: bool | None = None
    q: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    include_deleted: bool = False
    only_deleted: bool = False
    ids: Sequence[uuid.UUID] = field(default_factory=tuple)


def overdue_condition(now: datetime) -> ColumnElement[bool]:
    return and_(CR.expires_at < now, CR.status.not_in(_TERMINAL))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _conditions(spec: CallbackFilter, now: datetime) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if spec.company_id is not None:
        conditions.append(CR.company_id == spec.company_id)
    if spec.only_deleted:
        conditions.append(CR.deleted_at.is_not(None))
    elif not spec.include_deleted:
        conditions.append(CR.deleted_at.is_(None))
    if spec.statuses:
        conditions.append(CR.status.in_([s.value for s in spec.statuses]))
    if spec.priorities:
        conditions.append(CR.priority.in_([p.value for p in spec.priorities]))
    if spec.branch_id is not None:
        conditions.append(CR.branch_id == spec.branch_id)
    if spec.assigned_to is not None:
        conditions.append(CR.assigned_to == spec.assigned_to)
    if spec.overdue is not None:
        overdue = overdue_condition(now)
        conditions.append(overdue if spec.overdue else not_(overdue))
    if spec.callable_now is not None:
        callable_now = callable_now_condition(now)
        conditions.append(callable_now if spec.callable_now else not_(callable_now))
    if spec.q:
        term = spec.q.strip()
        matches: list[ColumnElement[bool]] = [CR.customer_name.ilike(f"%{_escape_like(term)}%", escape="\\")]
        digits = "".join(ch for ch in term if ch.isdigit())
        if digits:
            matches.append(CR.phone_number.like(f"%{digits}%"))
        conditions.append(or_(*matches))
    if spec.created_from is not None:
        conditions.append(CR.created_at >= spec.created_from)
    if spec.created_to is not None:
        conditions.append(CR.created_at < spec.created_to)
    if spec.ids:
        conditions.append(CR.id.in_(list(spec.ids)))
    return conditions


def _rows_query(now: datetime) -> Select[CallbackRequest, str, str, str, bool, CallbackStuckRow]:
    assignee = _ASSIGNEE
    return (
        select(
            CR,
            Branch.name.label("branch_name"),
            Service.name.label("service_name"),
            assignee.name.label("assigned_to_name"),
            overdue_condition(now).label("overdue"),
            _STUCK,
        )
        .join(Branch, Branch.id == CR.branch_id)
        .outerjoin(Service, Service.id == CR.service_id)
        .outerjoin(assignee, assignee.id == CR.assigned_to)
        .outerjoin(_STUCK, _STUCK.callback_id == CR.id)
    )


def as_dict(row: Any, now: datetime) -> dict[str, Any]:
    callback: CallbackRequest = row[0]
    return {
        "id": callback.id,
        "company_id": callback.company_id,
        "workflow_id": stored_callback_workflow_id(callback.id, callback.workflow_id),
        "branch_id": callback.branch_id,
        "branch_name": row.branch_name,
        "service_id": callback.service_id,
        "service_name": row.service_name,
        "customer_id": callback.customer_id,
        "customer_name": callback.customer_name,
        "phone_number": callback.phone_number,
        "email": callback.email,
        "priority": callback.priority,
        "status": callback.status,
        "assigned_to": callback.assigned_to,
        "assigned_to_name": row.assigned_to_name,
        "preferred_staff_id": callback.staff_id,
        "preferred_time_window": callback.preferred_time_window,
        "notes": callback.notes,
        "metadata": callback.metadata_,
        "created_at": callback.created_at,
        "updated_at": callback.updated_at,
        "assigned_at": callback.assigned_at,
        "contacted_at": callback.contacted_at,
        "completed_at": callback.completed_at,
        "cancelled_at": callback.cancelled_at,
        "expired_at": callback.expired_at,
        "expires_at": callback.expires_at,
        "overdue": bool(row.overdue),
        "completion_notes": callback.completion_notes,
        "cancel_reason": callback.cancel_reason,
        "contact_attempts": callback.contact_attempts,
        "escalation_count": callback.escalation_count,
        "deleted_at": callback.deleted_at,
        "version": callback.version,
        "suggested_slots": callback.suggested_slots,
        "sla_clock": callback.sla_clock,
        # A workflow that cannot get a database step through (models/stuck.py); None when all is well.
        "stuck": stuck.as_dict(row.stuck),
        **dial_fields(callback, now),
    }


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    total: int


async def list_callbacks(
    session: AsyncSession,
    spec: CallbackFilter,
    *,
    now: datetime,
    sort: str = "-created_at",
    page: int = 1,
    page_size: int = 50,
) -> Page:
    """One page in the asked order (ties broken by id, so pages never overlap) and the total count."""
    descending = sort.startswith("-")
    key = CONSOLE_SORT_KEYS[sort.lstrip("-")]
    conditions = _conditions(spec, now)
    total = await session.scalar(select(func.count()).select_from(CR).where(*conditions))
    order = [key.desc() if descending else key.asc()]
    if sort.lstrip("-") != "id":
        order.append(CR.id.desc() if descending else CR.id.asc())
    result = await session.execute(
        _rows_query(now).where(*conditions).order_by(*order).limit(page_size).offset((page - 1) * page_size)
    )
    return Page([as_dict(row, now) for row in result.all()], int(total or 0))


async def get_callback(
    session: AsyncSession,
    callback_id: uuid.UUID,
    company_id: int | None,
    *,
    now: datetime,
    include_deleted: bool = False,
) -> dict[str, Any] | None:
    spec = CallbackFilter(company_id=company_id, include_deleted=include_deleted, ids=[callback_id])
    row = (await session.execute(_rows_query(now).where(*_conditions(spec, now)))).first()
    return as_dict(row, now) if row is not None else None


async def callback_history(session: AsyncSession, callback_id: uuid.UUID) -> dict[str, list[dict[str, Any]]]:
    """Escalations, failed attempts and the whole audit trail of one callback (already tenant-checked)."""
    escalations = await session.scalars(
        select(CallbackEscalation)
        .where(CallbackEscalation.callback_request_id == callback_id)
        .order_by(CallbackEscalation.sequence)
    )
    events = list(
        await session.scalars(
            select(CallbackEventRow)
            .where(CallbackEventRow.callback_request_id == callback_id)
            .order_by(CallbackEventRow.seq)
        )
    )
    return {
        "escalations": [
            {
                "sequence": e.sequence,
                "reason": e.escalation_reason,
                "details": (e.metadata_ or {}).get("details"),
                "escalated_from": e.escalated_from,
                "escalated_to": e.escalated_to,
                "escalated_at": e.escalated_at,
                "resolved_at": e.resolved_at,
            }
            for e in escalations
        ],
        "attempts": [
            {
                "number": event.payload.get("number", 0),
                "outcome": event.payload.get("outcome", ""),
                "notes": event.payload.get("notes"),
                "actor": event.actor,
                "at": event.occurred_at,
            }
            for event in events
            if event.type == "callback.attempt_failed"
        ],
        "events": [
            {
                "seq": event.seq,
                "type": event.type,
                "actor": event.actor,
                "at": event.occurred_at,
                "payload": event.payload,
            }
            for event in events
        ],
    }


async def existing_ids(
    session: AsyncSession, ids: Sequence[uuid.UUID], company_id: int | None
) -> set[uuid.UUID]:
    """Which of `ids` are live callbacks of the company (one query for a whole bulk request)."""
    spec = CallbackFilter(company_id=company_id, ids=ids)
    return set(await session.scalars(select(CR.id).where(*_conditions(spec, datetime.now().astimezone()))))


async def set_deleted(
    session: AsyncSession, callback_id: uuid.UUID, company_id: int | None, deleted_at: datetime | None
) -> bool:
    """Soft delete (a moment) or restore (None); False when there was nothing to change."""
    conditions: list[ColumnElement[bool]] = [CR.id == callback_id]
    if company_id is not None:
        conditions.append(CR.company_id == company_id)
    conditions.append(CR.deleted_at.is_(None) if deleted_at is not None else CR.deleted_at.is_not(None))
    result = await session.execute(
        update(CR).where(*conditions).values(deleted_at=deleted_at).returning(CR.id)
    )
    return result.first() is not None


async def summary(session: AsyncSession, company_id: int | None, *, now: datetime) -> dict[str, Any]:
    """The queue at a glance, in five queries."""
    scope: list[ColumnElement[bool]] = [CR.deleted_at.is_(None)]
    if company_id is not None:
        scope.append(CR.company_id == company_id)
    counts = (
        await session.execute(
            select(CR.status, CR.priority, func.count()).where(*scope).group_by(CR.status, CR.priority)
        )
    ).all()
    by_status = {status.value: 0 for status in CallbackStatus}
    by_priority = {priority.value: 0 for priority in Priority}
    for status, priority, count in counts:
        by_status[status] = by_status.get(status, 0) + count
        by_priority[priority] = by_priority.get(priority, 0) + count
    overdue, completed, on_time = (
        await session.execute(
            select(
                func.count().filter(overdue_condition(now)),
                func.count().filter(CR.status == CallbackStatus.COMPLETED.value),
                func.count().filter(
                    CR.status == CallbackStatus.COMPLETED.value, CR.completed_at <= CR.expires_at
                ),
            ).where(*scope)
        )
    ).one()
    escalation_scope = [CallbackEscalation.callback_request_id == CR.id, *scope]
    day, week = (
        await session.execute(
            select(
                func.count().filter(CallbackEscalation.escalated_at >= now - timedelta(hours=24)),
                func.count().filter(CallbackEscalation.escalated_at >= now - timedelta(days=7)),
            )
            .select_from(CallbackEscalation)
            .join(CR, and_(*escalation_scope))
            .where(CallbackEscalation.escalated_at <= now)
        )
    ).one()
    loads = (
        await session.execute(
            select(CR.assigned_to, Staff.name, func.count())
            .join(Staff, Staff.id == CR.assigned_to)
            .where(*scope, CR.status.in_(_OPEN_WORK))
            .group_by(CR.assigned_to, Staff.name)
            .order_by(func.count().desc(), CR.assigned_to)
        )
    ).all()
    return {
        "pending": by_status[CallbackStatus.PENDING.value],
        "overdue": overdue,
        "by_status": by_status,
        "by_priority": by_priority,
        "completed": completed,
        "completed_on_time": on_time,
        "sla_compliance_rate": (on_time / completed) if completed else None,
        "escalations_24h": day,
        "escalations_7d": week,
        "open_per_staff": [
            {"staff_id": staff_id, "name": name, "open_callbacks": count} for staff_id, name, count in loads
        ],
        "sla_by_clock": await sla_by_clock(session, scope),
    }


async def pending_count(session: AsyncSession, company_id: int | None) -> int:
    """Open, unassigned callbacks: one index-only count (company, status), cheap enough for a nav badge."""
    conditions: list[ColumnElement[bool]] = [
        CR.status == CallbackStatus.PENDING.value,
        CR.deleted_at.is_(None),
    ]
    if company_id is not None:
        conditions.append(CR.company_id == company_id)
    return int(await session.scalar(select(func.count()).select_from(CR).where(*conditions)) or 0)
