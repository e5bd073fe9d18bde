"""The SLA clock: when a callback is due, when to warn, when to escalate and when to give up.

Everything is derived from the callback's state, never stored twice: the workflow asks `next_deadline`
after every change and sleeps until then, so a priority change simply moves the next deadline.

The clock runs in the callback's `sla_clock` mode: `calendar` counts every hour; `business_hours` counts
only the open hours of the branch's calendar (rules/business_calendar.py: opening hours, closures, public
holidays), so a callback made while the branch is closed starts its clock at the next opening. Either way
every instant here is the real wall-clock instant (what `expires_at` and the SlaDeadline attribute show).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from itertools import groupby

from models.calendars import BusinessCalendarSpec, Closure
from models.callbacks import CallbackSettings, CallbackState, EscalationReason, Priority, SlaClock
from rules.business_calendar import BusinessCalendar, public_holidays

WARNING_PERCENTS = (50, 75)


@dataclass(frozen=True)
class Clock:
    """Adds and measures SLA time: every hour without a calendar, only open hours with one."""

    calendar: BusinessCalendar | None = None

    def add(self, start: datetime, span: timedelta) -> datetime:
        if self.calendar is not None:
            try:
                return self.calendar.add_business_hours(start, span)
            except ValueError:  # a calendar that stops opening: count every hour rather than never
                pass
        return start + span

    def between(self, start: datetime, end: datetime) -> timedelta:
        if self.calendar is not None:
            open_time = self.calendar.business_hours_between(start, end)
            if open_time or self.calendar.next_opening(start) is not None:
                return open_time
        return end - start


def clock_for(settings: CallbackSettings, calendar: BusinessCalendarSpec | None) -> Clock:
    """The callback's clock; a business-hours SLA at a branch without hours (always open) is a calendar
    SLA, and one whose calendar stops opening (400 days of closures: a data error) falls back to it."""
    if settings.sla_clock != SlaClock.BUSINESS_HOURS or calendar is None:
        return Clock()
    if calendar.weekly_hours.is_empty:
        return Clock()
    return Clock(BusinessCalendar(calendar))


def with_holidays_written_out(spec: BusinessCalendarSpec, since: date) -> BusinessCalendarSpec:
    """The calendar a workflow carries: its public holidays from `since` to the end of the next year as
    closures of their own. The `holidays` package reads its translations through `gettext` and `locale`,
    which the workflow sandbox forbids, and holiday data written into the history cannot change under a
    replay when the package is upgraded. (A callback open for more than a year would miss later holidays.)
    """
    if spec.country is None or spec.ignore_public_holidays:
        return spec
    days = sorted(
        day
        for year in (since.year, since.year + 1)
        for day in public_holidays(spec.country, spec.subdivision, year)
        if day >= since
    )
    # Runs of consecutive days (Christmas, Easter Sunday and Monday) become one closure.
    runs = [
        [day for _, day in run]
        for _, run in groupby(enumerate(days), lambda pair: pair[1].toordinal() - pair[0])
    ]
    closures = tuple(Closure(start=run[0], end=run[-1]) for run in runs)
    return spec.model_copy(update={"closures": spec.closures + closures, "ignore_public_holidays": True})


def state_clock(state: CallbackState) -> Clock:
    return clock_for(state.settings, state.calendar)


def sla_deadline(
    created_at: datetime,
    priority: Priority,
    settings: CallbackSettings,
    calendar: BusinessCalendarSpec | None = None,
) -> datetime:
    """`expires_at`: created_at plus the SLA hours of the priority (retroactive on a priority change),
    counted on the callback's clock."""
    return clock_for(settings, calendar).add(created_at, timedelta(hours=settings.sla_hours[priority]))


def warning_time(state: CallbackState, percent: int) -> datetime:
    """`percent` of the SLA time between creation and the deadline, on the callback's clock."""
    clock = state_clock(state)
    return clock.add(state.created_at, clock.between(state.created_at, state.expires_at) * (percent / 100))


class DueKind(StrEnum):
    WARNING = "warning"
    ESCALATION = "escalation"
    EXPIRY = "expiry"
    # Staff on shift (rules/shifts.py): nobody was on shift to take the callback, or its assignee's
    # absence starts: choose again.
    ASSIGNMENT = "assignment"
    HANDOVER = "handover"


@dataclass(frozen=True)
class Deadline:
    kind: DueKind
    at: datetime
    warning_percent: int | None = None


def _breach_escalations(state: CallbackState) -> int:
    return sum(1 for e in state.escalations if e.reason == EscalationReason.SLA_BREACH)


def next_deadline(state: CallbackState, now: datetime) -> Deadline | None:
    """The next moment the clock must act on its own, or None when the callback is finished.

    Breach escalations come at `expires_at`, then one cooldown after the previous escalation of any kind,
    up to `max_escalations`; one cooldown after the last allowed one the callback expires. A normal
    callback (24 h SLA, 4 h cooldown, 3 escalations) therefore escalates at 24, 28 and 32 h and expires
    at 36 h. Unsent warnings (50 % and 75 % of the SLA) come first, unless the SLA is already breached
    (a late warning after a priority change would only be noise). A breach escalation held for staff on
    shift comes when they are; a pending choice of staff or a handover comes when it is due.
    """
    if state.status.is_terminal:
        return None
    clock = state_clock(state)
    cooldown = timedelta(hours=state.settings.escalation_cooldown_hours)
    last_escalation = state.escalations[-1].at if state.escalations else None
    if _breach_escalations(state) < state.settings.max_escalations:
        due_at = state.expires_at
        if last_escalation is not None:
            due_at = max(due_at, clock.add(last_escalation, cooldown))
        if state.escalation_waits_until is not None:
            due_at = max(due_at, state.escalation_waits_until)
        action = Deadline(DueKind.ESCALATION, due_at)
    elif last_escalation is None:  # max_escalations == 0: expire at the deadline itself
        action = Deadline(DueKind.EXPIRY, state.expires_at)
    else:
        action = Deadline(DueKind.EXPIRY, clock.add(last_escalation, cooldown))

    if now < state.expires_at:
        for percent in WARNING_PERCENTS:
            if percent in state.warnings_sent:
                continue
            at = warning_time(state, percent)
            if at <= action.at:
                action = Deadline(DueKind.WARNING, at, warning_percent=percent)
                break
    return _earliest(action, _staff_deadline(state))


def _staff_deadline(state: CallbackState) -> Deadline | None:
    if state.assign_at is not None:
        return Deadline(DueKind.ASSIGNMENT, state.assign_at)
    if state.assignee_away_at is not None and state.assigned_to is not None:
        return Deadline(DueKind.HANDOVER, state.assignee_away_at)
    return None


def _earliest(first: Deadline, other: Deadline | None) -> Deadline:
    """The sooner of two; on a tie the SLA's own deadline (an escalation also picks staff anew)."""
    return other if other is not None and other.at < first.at else first


def is_overdue(state: CallbackState, now: datetime) -> bool:
    return not state.status.is_terminal and now >= state.expires_at
