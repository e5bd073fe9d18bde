"""What the callback activities add from the calendars (DESIGN §8): each staff candidate's shift at the
workflow's `now`, the branch calendar a business-hours SLA counts in, and the customer's dial window.

Computed here, in the activity, and handed to the workflow as data: the workflow never reads the
directory, and replaying it finds the same answers in its history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from models.calendars import BusinessCalendarSpec
from models.callbacks import NewCallback, StaffCandidate
from models.dial_window import DialWindow
from rules.dial_window import customer_time_zone, dial_window
from rules.shifts import on_shift, staff_calendar
from rules.sla import with_holidays_written_out
from store.callback_preparation import Preparation, Staffing


@dataclass(frozen=True)
class CallbackCalendars:
    calendar: BusinessCalendarSpec | None
    dial_window: DialWindow | None
    candidates: list[StaffCandidate]


def with_shifts(staffing: Staffing, *, branch_id: int, at: datetime) -> list[StaffCandidate]:
    """The candidates with their shift at `at`: their own hours or their branch's, on their branch's
    calendar, minus their absences. Staff of no branch count in the callback's branch's calendar."""
    known = staffing.branches
    shifted = []
    for candidate in staffing.candidates:
        schedule = staffing.schedules.get(candidate.id)
        branch = known.get(schedule.branch_id or branch_id) if schedule else None
        branch = branch or known.get(branch_id)
        if schedule is None or branch is None:
            shifted.append(candidate)
            continue
        calendar = staff_calendar(branch.spec, schedule.working_hours, schedule.absences)
        shifted.append(on_shift(candidate, calendar, schedule.absences, at))
    return shifted


def callback_calendars(
    request: NewCallback,
    preparation: Preparation,
    *,
    at: datetime,
    default_dial_hours: tuple[time, time],
) -> CallbackCalendars:
    """Everything calendar-shaped a new callback needs, from what its preparation read."""
    branch = preparation.staffing.branches.get(request.branch_id)
    shifted = with_shifts(preparation.staffing, branch_id=request.branch_id, at=at)
    if branch is None:  # refused by the reference check before this is reached
        return CallbackCalendars(None, None, shifted)
    zone, source = customer_time_zone(
        preparation.customer_time_zone,
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
