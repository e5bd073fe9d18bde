"""Staff on shift (DESIGN §8): who works at a given moment, when someone off shift comes back, and when
an absence begins.

A member of staff works their own weekly hours, or the branch's when they have none, on the branch's
calendar (its closures and public holidays), minus their absences (vacation, sick, other). A branch
without opening hours is always open, so its staff without hours of their own are always on shift.
The activities compute this when they load candidates, at the workflow's `now`; the answer travels in the
candidates (`StaffCandidate.on_shift`, ...) and the assignment rules only read it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time

from models.calendars import WEEKDAYS, Absence, BusinessCalendarSpec, WeeklyHours
from models.callbacks import PreparedCallback, StaffCandidate
from rules.business_calendar import BusinessCalendar

_WHOLE_DAY = ((time(0), time(0)),)
ALWAYS = WeeklyHours.model_validate(dict.fromkeys(WEEKDAYS, _WHOLE_DAY))


def staff_calendar(
    branch: BusinessCalendarSpec, working_hours: WeeklyHours | None, absences: Sequence[Absence]
) -> BusinessCalendar:
    """`branch` is the branch's calendar as stored (its weekly hours may be empty: no hours given)."""
    hours = branch.weekly_hours
    if working_hours is not None and not working_hours.is_empty:
        hours = working_hours
    if hours.is_empty:
        spec = BusinessCalendarSpec(
            time_zone=branch.time_zone, weekly_hours=ALWAYS, ignore_public_holidays=True
        )
    else:
        spec = branch.model_copy(update={"weekly_hours": hours})
    return BusinessCalendar(spec, absences=absences)


def on_shift(
    candidate: StaffCandidate, calendar: BusinessCalendar, absences: Sequence[Absence], at: datetime
) -> StaffCandidate:
    """The candidate with their shift at `at`: on shift or not, when they next are, when they are next
    away."""
    working = calendar.is_open(at)
    return candidate.model_copy(
        update={
            "on_shift": working,
            "absent": any(a.start <= at < a.end for a in absences),
            "next_on_shift_at": None if working else calendar.next_opening(at),
            "away_from": min((a.start for a in absences if a.start > at), default=None),
        }
    )


def ignoring_shifts(candidates: Sequence[StaffCandidate]) -> list[StaffCandidate]:
    """Candidates as a workflow recorded before shifts saw them: everyone on shift, nobody ever away."""
    return [
        c.model_copy(update={"on_shift": True, "absent": False, "next_on_shift_at": None, "away_from": None})
        for c in candidates
    ]


def without_calendars(prepared: PreparedCallback) -> PreparedCallback:
    """What a workflow recorded before calendars made of a prepared callback: no calendar, no dial window,
    nobody off shift."""
    return prepared.model_copy(
        update={"calendar": None, "dial_window": None, "candidates": ignoring_shifts(prepared.candidates)}
    )
