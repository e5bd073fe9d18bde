"""The dashboard's reports on the callback read model: escalations per day, and SLA compliance per clock.

Each callback's `expires_at` is the wall-clock deadline of its own SLA clock (`calendar` or
`business_hours`, with a deadline moved for the customer's dial window recorded as an event), so "done by
the deadline" counts in the callback's own mode; the split by clock shows how each mode fares.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from models.callbacks import CallbackStatus, SlaClock
from models.tables import CallbackEscalation, CallbackEventRow, CallbackRequest

CR = CallbackRequest
DEADLINE_MOVED = "callback.deadline_moved"


async def sla_by_clock(session: AsyncSession, scope: list[ColumnElement[bool]]) -> dict[str, dict[str, Any]]:
    """Per SLA clock: completed, completed by the deadline, the rate, and how many deadlines moved for
    the customer's dial window (one query)."""
    completed = CR.status == CallbackStatus.COMPLETED.value
    moved = exists().where(
        CallbackEventRow.callback_request_id == CR.id, CallbackEventRow.type == DEADLINE_MOVED
    )
    rows = await session.execute(
        select(
            CR.sla_clock,
            func.count().filter(completed),
            func.count().filter(completed, CR.completed_at <= CR.expires_at),
            func.count().filter(moved),
        )
        .where(*scope)
        .group_by(CR.sla_clock)
    )
    found = {clock: (done, on_time, shifted) for clock, done, on_time, shifted in rows.all()}
    report = {}
    for clock in SlaClock:
        done, on_time, shifted = found.get(clock.value, (0, 0, 0))
        report[clock.value] = {
            "completed": done,
            "completed_on_time": on_time,
            "sla_compliance_rate": (on_time / done) if done else None,
            "deadlines_moved": shifted,
        }
    return report


async def escalations_per_day(
    session: AsyncSession, company_id: int | None, *, now: datetime, days: int, time_zone: str
) -> list[tuple[date, int]]:
    """Escalations per calendar day in `time_zone`, the last `days` days up to today, gaps filled with 0.

    Days are the company's days, not UTC's: a breach at 00:30 in Berlin belongs to that Berlin day.
    """
    zone = ZoneInfo(time_zone)
    today = now.astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, datetime.min.time(), tzinfo=zone)
    day = func.date(func.timezone(time_zone, CallbackEscalation.escalated_at))
    conditions: list[ColumnElement[bool]] = [
        CallbackEscalation.escalated_at >= start,
        CallbackEscalation.escalated_at <= now,
        CR.deleted_at.is_(None),
    ]
    if company_id is not None:
        conditions.append(CallbackEscalation.company_id == company_id)
    rows = (
        await session.execute(
            select(day, func.count())
            .select_from(CallbackEscalation)
            .join(CR, CR.id == CallbackEscalation.callback_request_id)
            .where(*conditions)
            .group_by(day)
        )
    ).all()
    counts = {found: int(count) for found, count in rows}
    return [(first + timedelta(days=i), counts.get(first + timedelta(days=i), 0)) for i in range(days)]
