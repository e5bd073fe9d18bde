"""The facts about the whole queue that the API's gauges report (`api/metrics.py`): open callbacks per
status and priority with how many are overdue, the callbacks closed recently with whether they met
their SLA, in all and per branch, and the stuck ones. Read from PostgreSQL so that every API replica reports
the same numbers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.callbacks import CallbackStatus
from models.tables import CallbackRequest as CR
from models.tables import CallbackStuckRow

OPEN = [CallbackStatus.PENDING.value, CallbackStatus.ASSIGNED.value, CallbackStatus.CONTACTED.value]


async def open_counts(session: AsyncSession, now: datetime) -> dict[tuple[str, str], tuple[int, int]]:
    """(status, priority) → (open callbacks, of which overdue), for the live open rows."""
    rows = await session.execute(
        select(CR.status, CR.priority, func.count(), func.count().filter(CR.expires_at < now))
        .where(CR.deleted_at.is_(None), CR.status.in_(OPEN))
        .group_by(CR.status, CR.priority)
    )
    return {(status, priority): (count, overdue) for status, priority, count, overdue in rows.all()}


async def closed_since(session: AsyncSession, oldest: datetime) -> list[tuple[datetime | None, bool]]:
    """(closed at, SLA met) of every live callback completed or expired since `oldest`. Cancelled callbacks
    say nothing about the SLA and are left out."""
    closed_at = func.coalesce(CR.completed_at, CR.expired_at)
    rows = await session.execute(
        select(closed_at, CR.completed_at.is_not(None) & (CR.completed_at <= CR.expires_at)).where(
            CR.deleted_at.is_(None),
            CR.status.in_([CallbackStatus.COMPLETED.value, CallbackStatus.EXPIRED.value]),
            closed_at >= oldest,
        )
    )
    return [(at, bool(met)) for at, met in rows.all()]


async def compliance_by_branch(
    session: AsyncSession, windows: Mapping[str, datetime]
) -> dict[tuple[int, str], tuple[int, int]]:
    """(branch id, window name) → (callbacks closed since the window's start, of which met their SLA), for
    the branches that closed any; `windows` maps a window's name to its start. Counted in the database:
    one row per branch, whatever the volume."""
    closed_at = func.coalesce(CR.completed_at, CR.expired_at)
    met = CR.completed_at.is_not(None) & (CR.completed_at <= CR.expires_at)
    names = list(windows)
    counts = []
    for name in names:
        counts += [
            func.count().filter(closed_at >= windows[name]),
            func.count().filter(met & (closed_at >= windows[name])),
        ]
    rows = await session.execute(
        select(CR.branch_id, *counts)
        .where(
            CR.deleted_at.is_(None),
            CR.status.in_([CallbackStatus.COMPLETED.value, CallbackStatus.EXPIRED.value]),
            closed_at >= min(windows.values()),
        )
        .group_by(CR.branch_id)
    )
    found: dict[tuple[int, str], tuple[int, int]] = {}
    for branch_id, *values in rows.all():
        for index, name in enumerate(names):
            closed, on_time = values[2 * index], values[2 * index + 1]
            if closed:
                found[(branch_id, name)] = (closed, on_time)
    return found


async def stuck_counts(session: AsyncSession) -> dict[tuple[str, bool], int]:
    """(step, given up) → stuck open callbacks; a mark left by a callback that has ended is not counted."""
    given_up = CallbackStuckRow.gave_up_at.is_not(None)
    rows = await session.execute(
        select(CallbackStuckRow.step, given_up, func.count())
        .join(CR, CR.id == CallbackStuckRow.callback_id)
        .where(CR.status.in_(OPEN), CR.deleted_at.is_(None))
        .group_by(CallbackStuckRow.step, given_up)
    )
    return {(step, bool(gave_up)): count for step, gave_up, count in rows.all()}
