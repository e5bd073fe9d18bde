"""Calendars for the workflow tests: branch hours and holidays, staff hours and absences, and moving the
time-skipping server's clock to a chosen wall-clock moment (it starts at the real time and never goes back,
so every test picks the next moment of the kind it needs)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from models.tables import Branch, Staff, StaffAbsence
from store.db import transaction
from tests.factories import Tenant

Sessions = async_sessionmaker[AsyncSession]
BERLIN, LISBON = ZoneInfo("Europe/Berlin"), ZoneInfo("Europe/Lisbon")
MON_FRI_9_17: dict[str, Any] = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
MONDAY, FRIDAY, SATURDAY, SUNDAY = 0, 4, 5, 6


async def set_branch_calendar(
    sessions: Sessions,
    branch_id: int,
    *,
    hours: dict[str, Any] | None = None,
    country: str | None = "DE",
    subdivision: str | None = "BE",
    time_zone: str = "Europe/Berlin",
) -> None:
    async with transaction(sessions) as session:
        await session.execute(
            update(Branch)
            .where(Branch.id == branch_id)
            .values(
                opening_hours=MON_FRI_9_17 if hours is None else hours,
                country=country,
                subdivision=subdivision,
                time_zone=time_zone,
            )
        )


async def set_working_hours(sessions: Sessions, staff_id: uuid.UUID, hours: dict[str, Any]) -> None:
    async with transaction(sessions) as session:
        await session.execute(update(Staff).where(Staff.id == staff_id).values(working_hours=hours))


async def add_absence(
    sessions: Sessions, tenant: Tenant, staff_id: uuid.UUID, start: datetime, end: datetime, kind: str
) -> None:
    async with transaction(sessions) as session:
        session.add(
            StaffAbsence(
                company_id=tenant.company_id, staff_id=staff_id, starts_at=start, ends_at=end, kind=kind
            )
        )


async def skip_to(env: WorkflowEnvironment, moment: datetime) -> None:
    """Move the server's clock to `moment` (timers due on the way fire)."""
    now = await env.get_current_time()
    assert moment > now, f"{moment.isoformat()} is in the server's past ({now.isoformat()})"
    await env.sleep(moment - now)


def is_workday(day: date, region: tuple[str, str | None] = ("DE", "BE")) -> bool:
    country, subdivision = region
    return day.weekday() < SATURDAY and day not in holidays.country_holidays(country, subdiv=subdivision)


def next_day(after: datetime, wanted: Callable[[date], bool]) -> date:
    """The first day after `after` (a few days of margin) that is `wanted`."""
    day = after.astimezone(UTC).date() + timedelta(days=2)
    while not wanted(day):
        day += timedelta(days=1)
    return day


def quiet_week_friday(after: datetime) -> date:
    """A Friday that is a workday in Berlin, and so are the Monday to Wednesday after it (no Easter, no
    Whitsun, no May Day on the way)."""
    return next_day(
        after,
        lambda d: d.weekday() == FRIDAY and all(is_workday(d + timedelta(days=n)) for n in (0, 3, 4, 5)),
    )


def at(day: date, hour: int, minute: int = 0, zone: ZoneInfo = BERLIN) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=zone)


def last_sunday(year: int, month: int) -> date:
    day = date(year, month + 1, 1) - timedelta(days=1)
    return day - timedelta(days=(day.weekday() - SUNDAY) % 7)


def close_to(actual: datetime, expected: datetime) -> bool:
    """Within a minute: the server's clock runs on in real time between a skip and the request that
    follows it (seconds on a busy machine), and timers fire a few milliseconds after their deadline. The
    instants the tests tell apart are half an hour or more apart."""
    return abs(actual - expected) < timedelta(minutes=1)
