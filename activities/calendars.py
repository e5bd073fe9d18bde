"""What the callback activities add from the calendars (DESIGN §8): each staff candidate's shift at the
workflow's `now`, the branch calendar a business-hours SLA counts in, and the customer's dial window.

Computed here, in the activity, and handed to the workflow as data: the workflow never reads the
directory, and replaying it finds the same answers in its history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from models.calendars import BusinessCalendarSpec
from models.callbacks import NewCallback, StaffCandidate
from models.dial_window import DialWindow
from rules.dial_window import customer_time_zone, dial_window
from rules.shifts import on_shift, staff_calendar
from rules.sla import with_holidays_written_out
from store import calendars as store
from store.calendars import BranchCalendar


@dataclass(frozen=True)
class CallbackCalendars:
    calendar: BusinessCalendarSpec | None
    dial_window: DialWindow | None
    candidates: list[StaffCandidate]


async def with_shifts(
    session: AsyncSession,
    candidates: Sequence[StaffCandidate],
    *,
    branch_id: int,
    at: datetime,
    branches: dict[int, BranchCalendar] | None = None,
) -> list[StaffCandidate]:
    """The candidates with their shift at `at`: their own hours or their branch's, on their branch's
    calendar, minus their absences. Staff of no branch count in the callback's branch's calendar."""
    schedules = await store.staff_schedules(session, [c.id for c in candidates], at=at)
    wanted = {branch_id} | {s.branch_id for s in schedules.values() if s.branch_id is not None}
    known = dict(branches or {})
    known.update(await store.branch_calendars(session, [b for b in wanted if b not in known]))
    shifted = []
    for candidate in candidates:
        schedule = schedules.get(candidate.id)
        branch = known.get(schedule.branch_id or branch_id) if schedule else None
        branch = branch or known.get(branch_id)
        if schedule is None or branch is None:
            shifted.append(candidate)
            continue
        calendar = staff_calendar(branch.spec, schedule.working_hours, schedule.absences)
        shifted.append(on_shift(candidate, calendar, schedule.absences, at))
    return shifted


async def callback_calendars(
    session: AsyncSession,
    request: NewCallback,
    candidates: Sequence[StaffCandidate],
    *,
    at: datetime,
    default_dial_hours: tuple[time, time],
) -> CallbackCalendars:
    """Everything calendar-shaped a new callback needs, in four small queries."""
    branches = await store.branch_calendars(session, [request.branch_id])
    branch = branches.get(request.branch_id)
    shifted = await with_shifts(session, candidates, branch_id=request.branch_id, at=at, branches=branches)
    if branch is None:  # refused by the reference check before this is reached
        return CallbackCalendars(None, None, shifted)
    zone, source = customer_time_zone(
        await store.customer_time_zone(session, request.customer_id, request.company_id),
        request.phone_number,
        branch.spec.time_zone,
        at,
    )
    try:
        window = dial_window(
            time_zone=zone,
            zone_source=source,
            hours=branch.dial_hours or default_dial_hours,
            preferred_time_window=request.preferred_time_window,
        )
    except ValueError:  # an empty window stored for the branch or company: the engine's default
        window = dial_window(
            time_zone=zone,
            zone_source=source,
            hours=default_dial_hours,
            preferred_time_window=request.preferred_time_window,
        )
    calendar = branch.business_hours
    if calendar is not None:  # from the day before in UTC: the branch's today in any zone
        calendar = with_holidays_written_out(calendar, (at - timedelta(days=1)).date())
    return CallbackCalendars(calendar, window, shifted)
