"""The facts about the whole queue that the API's gauges report (`api/metrics.py`): open callbacks per
status and priority with how many are overdue, the callbacks closed recently with whether they met
their SLA, and the stuck ones. Read from PostgreSQL so that every API replica reports the same numbers."""

from __future__ import annotations

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
