"""The pure rules of issue 15, without Temporal: the SLA clock in both modes, holidays written out for the
workflow, dial windows and the customer's zone, staff shifts, and the steps that wait for staff on shift."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.calendars import Absence, AbsenceKind, BusinessCalendarSpec, Closure, WeeklyHours
from models.callbacks import (
    CallbackSettings,
    CallbackState,
    Escalation,
    EscalationReason,
    NewCallback,
    PreparedCallback,
    Priority,
    SlaClock,
    StaffCandidate,
)
from models.dial_window import DialWindow, ZoneSource
from models.policies import PolicyConfigError, validate_config
from rules import callback_machine as machine
from rules.business_calendar import BusinessCalendar
from rules.callback_settings import apply_callback_policy
from rules.dial_window import (
    callable_status,
    customer_time_zone,
    deadline_after_dial_window,
    dial_window,
    first_callable,
)
from rules.shifts import ALWAYS, ignoring_shifts, on_shift, staff_calendar, without_calendars
from rules.sla import Deadline, DueKind, next_deadline, sla_deadline, warning_time, with_holidays_written_out

BERLIN, LISBON = ZoneInfo("Europe/Berlin"), ZoneInfo("Europe/Lisbon")
OFFICE = ((time(9), time(17)),)
WEEKDAYS_9_17 = WeeklyHours(mon=OFFICE, tue=OFFICE, wed=OFFICE, thu=OFFICE, fri=OFFICE)
BERLIN_BRANCH = BusinessCalendarSpec(
    time_zone="Europe/Berlin", weekly_hours=WEEKDAYS_9_17, country="DE", subdivision="BE"
)
CALENDAR = CallbackSettings(
    sla_hours={Priority.URGENT: 2, Priority.HIGH: 4, Priority.NORMAL: 24},
    escalation_cooldown_hours=4,
    max_contact_attempts=3,
    max_escalations=3,
)
BUSINESS = CALENDAR.model_copy(update={"sla_clock": SlaClock.BUSINESS_HOURS})
FRIDAY_1630 = datetime(2025, 10, 10, 16, 30, tzinfo=BERLIN)
MONDAY = date(2025, 10, 13)
BRANCH = 7
ANNA, BERT, CARLA = (uuid.UUID(int=n) for n in (1, 2, 3))


def berlin(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=BERLIN)


def state(
    created: datetime = FRIDAY_1630,
    priority: Priority = Priority.URGENT,
    settings_: CallbackSettings = BUSINESS,
    calendar: BusinessCalendarSpec | None = BERLIN_BRANCH,
    **changes: Any,
) -> CallbackState:
    request = NewCallback(company_id=1, branch_id=BRANCH, customer_name="A", phone_number="+4930123456")
    blank = CallbackState(
        id=uuid.uuid4(),
        request=request,
        settings=settings_,
        priority=priority,
        created_at=created,
        expires_at=sla_deadline(created, priority, settings_, calendar),
        calendar=calendar,
    )
    return blank.model_copy(update=changes)


# --- the SLA clock ------------------------------------------------------------------------------


def test_calendar_mode_counts_every_hour_even_with_a_branch_calendar() -> None:
    for priority, hours in ((Priority.URGENT, 2), (Priority.HIGH, 4), (Priority.NORMAL, 24)):
        assert sla_deadline(FRIDAY_1630, priority, CALENDAR, BERLIN_BRANCH) == FRIDAY_1630 + timedelta(
            hours=hours
        )
    legacy = state(settings_=CALENDAR)
    span = legacy.expires_at - legacy.created_at
    assert [warning_time(legacy, p) for p in (50, 75)] == [
        legacy.created_at + span * 0.5,
        legacy.created_at + span * 0.75,
    ]


def test_business_hours_deadline_warnings_cooldown_and_expiry_count_open_hours_only() -> None:
    urgent = state()
    assert urgent.expires_at == berlin(MONDAY, 10, 30)
    assert [warning_time(urgent, p) for p in (50, 75)] == [berlin(MONDAY, 9, 30), berlin(MONDAY, 10)]
    due = next_deadline(urgent, FRIDAY_1630)
    assert due == Deadline(DueKind.WARNING, berlin(MONDAY, 9, 30), warning_percent=50)
    # Escalated at 16:00 on Monday: the next one comes one four-hour cooldown of open time later.
    escalated = urgent.model_copy(
        update={
            "warnings_sent": [50, 75],
            "escalations": [Escalation(number=1, reason=EscalationReason.SLA_BREACH, at=berlin(MONDAY, 16))],
        }
    )
    tuesday = MONDAY + timedelta(days=1)
    assert next_deadline(escalated, berlin(MONDAY, 16)) == Deadline(DueKind.ESCALATION, berlin(tuesday, 12))
    done = escalated.model_copy(
        update={
            "escalations": [
                Escalation(number=n, reason=EscalationReason.SLA_BREACH, at=berlin(MONDAY, 16))
                for n in (1, 2, 3)
            ]
        }
    )
    assert next_deadline(done, berlin(MONDAY, 16)) == Deadline(DueKind.EXPIRY, berlin(tuesday, 12))


def test_a_branch_that_is_always_open_or_never_opens_runs_on_calendar_time() -> None:
    assert sla_deadline(FRIDAY_1630, Priority.URGENT, BUSINESS, None) == FRIDAY_1630 + timedelta(hours=2)
    never = BusinessCalendarSpec(
        time_zone="Europe/Berlin",
        weekly_hours=WEEKDAYS_9_17,
        closures=(Closure(start=date(2025, 1, 1), end=date(2027, 12, 31)),),
    )
    assert sla_deadline(FRIDAY_1630, Priority.URGENT, BUSINESS, never) == FRIDAY_1630 + timedelta(hours=2)
    fallback = state(calendar=never)
    assert warning_time(fallback, 50) == FRIDAY_1630 + timedelta(hours=1)


def test_the_sla_clock_is_a_callback_policy_key() -> None:
    assert validate_config("callback", {"sla_clock": "business_hours"}) == {"sla_clock": "business_hours"}
    with pytest.raises(PolicyConfigError, match="sla_clock"):
        validate_config("callback", {"sla_clock": "lunar"})
    assert (
        apply_callback_policy(CALENDAR, {"sla_clock": "business_hours"}).sla_clock is SlaClock.BUSINESS_HOURS
    )
    assert apply_callback_policy(BUSINESS, {"sla_hours": {"urgent": 1}}).sla_clock is SlaClock.BUSINESS_HOURS


def test_holidays_are_written_out_as_closures_and_close_the_same_days() -> None:
    written = with_holidays_written_out(BERLIN_BRANCH, date(2025, 12, 1))
    assert written.ignore_public_holidays
    assert Closure(start=date(2025, 12, 25), end=date(2025, 12, 26)) in written.closures  # one run
    assert all(c.end >= date(2025, 12, 1) and c.start.year <= 2026 for c in written.closures)
    original, copy = BusinessCalendar(BERLIN_BRANCH), BusinessCalendar(written)
    moments = [datetime(2025, 12, 1, tzinfo=UTC) + timedelta(hours=7 * n) for n in range(1200)]
    assert [original.is_open(m) for m in moments] == [copy.is_open(m) for m in moments]
    assert with_holidays_written_out(written, date(2025, 12, 1)) == written
    without_region = BERLIN_BRANCH.model_copy(update={"country": None, "subdivision": None})
    assert with_holidays_written_out(without_region, date(2025, 12, 1)) == without_region


@settings(max_examples=60, deadline=None)
@given(
    start=st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)
    ),
    hours=st.floats(min_value=0.25, max_value=60),
)
def test_business_deadlines_are_open_time_after_creation(start: datetime, hours: float) -> None:
    settings_ = BUSINESS.model_copy(update={"sla_hours": {**BUSINESS.sla_hours, Priority.NORMAL: hours}})
    deadline = sla_deadline(start, Priority.NORMAL, settings_, BERLIN_BRANCH)
    calendar = BusinessCalendar(BERLIN_BRANCH)
    assert calendar.business_hours_between(start, deadline) == timedelta(hours=hours)
    assert calendar.is_open(deadline - timedelta(microseconds=1))


# --- dial windows -------------------------------------------------------------------------------

AT = datetime(2026, 1, 15, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("customer", "phone", "branch", "expected"),
    [
        ("America/New_York", "+351912345678", "Europe/Berlin", ("America/New_York", ZoneSource.CUSTOMER)),
        (None, "+351213456789", "Europe/Berlin", ("Europe/Lisbon", ZoneSource.PHONE)),  # Lisbon landline
        (None, "+351912345678", "Europe/Berlin", ("Europe/Lisbon", ZoneSource.PHONE)),  # Azores or Lisbon
        (None, "+351912345678", "Atlantic/Azores", ("Atlantic/Azores", ZoneSource.PHONE)),
        ("Not/AZone", "+4930123456", "Europe/Lisbon", ("Europe/Berlin", ZoneSource.PHONE)),
        (None, "+800 1234 5678", "Europe/Berlin", ("Europe/Berlin", ZoneSource.BRANCH)),  # no region
    ],
)
def test_the_customers_zone(
    customer: str | None, phone: str, branch: str, expected: tuple[str, ZoneSource]
) -> None:
    assert customer_time_zone(customer, phone, branch, AT) == expected


def window(**changes: Any) -> DialWindow:
    return DialWindow(time_zone="Europe/Lisbon", **changes)


def lisbon(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=LISBON)


def test_callable_inside_the_allowed_hours_on_the_customers_wall_clock() -> None:
    assert callable_status(window(), lisbon(15, 7, 30)) == (False, lisbon(15, 8))
    assert callable_status(window(), lisbon(15, 8)) == (True, lisbon(15, 8))
    assert callable_status(window(), lisbon(15, 20)) == (False, lisbon(16, 8))
    assert first_callable(window(), lisbon(15, 12)) == (lisbon(15, 12), lisbon(15, 20))
    night = window(start=time(20), end=time(8))  # wraps past midnight
    assert first_callable(night, lisbon(15, 12)) == (lisbon(15, 20), lisbon(16, 8))
    assert callable_status(None, AT) == (None, None)


def test_the_preferred_window_narrows_the_allowed_hours_while_it_lasts() -> None:
    preferred = window(not_before=lisbon(16, 14), not_after=lisbon(16, 16))
    assert first_callable(preferred, lisbon(15, 9)) == (lisbon(16, 14), lisbon(16, 16))
    assert callable_status(preferred, lisbon(16, 15)) == (True, lisbon(16, 15))
    assert callable_status(preferred, lisbon(16, 17)) == (True, lisbon(16, 17))  # over: allowed hours
    at_night = window(not_before=lisbon(16, 21), not_after=lisbon(16, 23))  # no allowed hour in it
    assert first_callable(at_night, lisbon(16, 9)) == (lisbon(17, 8), lisbon(17, 20))
    built = dial_window(
        time_zone="Europe/Lisbon",
        zone_source=ZoneSource.PHONE,
        hours=(time(9), time(18)),
        preferred_time_window={"start": lisbon(16, 14).isoformat(), "end": lisbon(16, 16).isoformat()},
    )
    assert (built.start, built.end, built.not_before, built.not_after) == (
        time(9),
        time(18),
        lisbon(16, 14),
        lisbon(16, 16),
    )
    assert (
        dial_window(
            time_zone="UTC",
            zone_source=ZoneSource.BRANCH,
            hours=(time(8), time(20)),
            preferred_time_window={"a": 1},
        ).not_before
        is None
    )


def test_a_deadline_before_the_first_callable_moment_moves_to_the_end_of_that_window() -> None:
    assert deadline_after_dial_window(window(), lisbon(15, 23), lisbon(16, 1)) == lisbon(16, 20)
    assert deadline_after_dial_window(window(), lisbon(15, 23), lisbon(16, 9)) == lisbon(16, 9)
    assert deadline_after_dial_window(None, lisbon(15, 23), lisbon(16, 1)) == lisbon(16, 1)
    prepared = PreparedCallback(settings=BUSINESS, candidates=[], dial_window=window())
    request = NewCallback(company_id=1, branch_id=BRANCH, customer_name="A", phone_number="+351912345678")
    step = machine.open_callback(
        uuid.uuid4(), request.model_copy(update={"priority": Priority.URGENT}), prepared, lisbon(15, 23)
    )
    assert step.state.expires_at == lisbon(16, 20)
    assert [e.type for e in step.events] == ["callback.created", "callback.deadline_moved"]
    calendar_mode = machine.open_callback(
        uuid.uuid4(),
        request.model_copy(update={"priority": Priority.URGENT}),
        prepared.model_copy(update={"settings": CALENDAR}),
        lisbon(15, 23),
    )
    assert calendar_mode.state.expires_at == lisbon(16, 1)  # calendar mode: exactly as before
    assert (calendar_mode.state.callable_now, calendar_mode.state.next_callable_at) == (False, lisbon(16, 8))


# --- staff shifts -------------------------------------------------------------------------------

AFTERNOONS = WeeklyHours(mon=((time(13), time(17)),))


def test_a_staff_members_calendar_is_their_hours_or_the_branchs_on_the_branchs_days() -> None:
    open_branch = BERLIN_BRANCH.model_copy(update={"weekly_hours": WeeklyHours()})
    assert staff_calendar(open_branch, None, ()).spec.weekly_hours == ALWAYS
    assert staff_calendar(BERLIN_BRANCH, None, ()).spec == BERLIN_BRANCH
    own = staff_calendar(BERLIN_BRANCH, AFTERNOONS, ())
    assert own.is_open(berlin(MONDAY, 14))
    assert not own.is_open(berlin(MONDAY, 10))
    easter_monday = date(2026, 4, 6)
    assert not own.is_open(berlin(easter_monday, 14))  # the branch's holidays close their hours too
    assert staff_calendar(BERLIN_BRANCH, WeeklyHours(), ()).spec == BERLIN_BRANCH  # {}: the branch's


def test_shift_info_at_a_moment() -> None:
    away = (Absence(start=berlin(MONDAY, 12), end=berlin(MONDAY, 15), kind=AbsenceKind.SICK),)
    calendar = staff_calendar(BERLIN_BRANCH, None, away)
    candidate = StaffCandidate(id=ANNA, branch_id=BRANCH)
    morning = on_shift(candidate, calendar, away, berlin(MONDAY, 10))
    assert (morning.on_shift, morning.absent, morning.next_on_shift_at, morning.away_from) == (
        True,
        False,
        None,
        berlin(MONDAY, 12),
    )
    ill = on_shift(candidate, calendar, away, berlin(MONDAY, 13))
    assert (ill.on_shift, ill.absent, ill.next_on_shift_at, ill.away_from) == (
        False,
        True,
        berlin(MONDAY, 15),
        None,
    )
    assert ignoring_shifts([ill]) == [candidate]
    prepared = PreparedCallback(
        settings=BUSINESS, candidates=[ill], calendar=BERLIN_BRANCH, dial_window=window()
    )
    assert without_calendars(prepared) == PreparedCallback(settings=BUSINESS, candidates=[candidate])


def shift(staff_id: uuid.UUID, on: bool = True, back: datetime | None = None, **more: Any) -> StaffCandidate:
    return StaffCandidate(id=staff_id, branch_id=BRANCH, on_shift=on, next_on_shift_at=back, **more)


def test_auto_assignment_waits_for_the_first_colleague_on_shift() -> None:
    nobody = [shift(ANNA, False, berlin(MONDAY, 13)), shift(BERT, False, berlin(MONDAY, 9))]
    prepared = PreparedCallback(settings=BUSINESS, candidates=nobody, calendar=BERLIN_BRANCH)
    request = NewCallback(company_id=1, branch_id=BRANCH, customer_name="A", phone_number="+4930123456")
    saturday = berlin(date(2025, 10, 11), 23)
    step = machine.open_callback(uuid.uuid4(), request, prepared, saturday)
    assert (step.state.assigned_to, step.state.assign_at) == (None, berlin(MONDAY, 9))
    assert step.events[-1].type == "callback.waiting_for_staff"
    due = next_deadline(step.state, saturday)
    assert due == Deadline(DueKind.ASSIGNMENT, berlin(MONDAY, 9))
    at_nine = machine.on_deadline(step.state, due, berlin(MONDAY, 9), [shift(ANNA, False), shift(BERT)])
    assert (at_nine.state.assigned_to, at_nine.state.assign_at) == (BERT, None)
    never = machine.open_callback(
        uuid.uuid4(), request, prepared.model_copy(update={"candidates": []}), saturday
    )
    assert (never.state.assigned_to, never.state.assign_at, len(never.events)) == (None, None, 1)


def test_a_breach_with_nobody_else_on_shift_waits_then_escalates() -> None:
    assigned = state(created=berlin(MONDAY, 9), assigned_to=ANNA, warnings_sent=[50, 75])
    staff = [shift(ANNA), shift(BERT, False, None, absent=True), shift(CARLA, False, berlin(MONDAY, 13))]
    breach = next_deadline(assigned, berlin(MONDAY, 11))
    assert breach == Deadline(DueKind.ESCALATION, berlin(MONDAY, 11))
    waiting = machine.on_deadline(assigned, breach, berlin(MONDAY, 11), staff)
    assert (waiting.escalation, waiting.state.escalation_waits_until) == (None, berlin(MONDAY, 13))
    later = next_deadline(waiting.state, berlin(MONDAY, 11))
    assert later == Deadline(DueKind.ESCALATION, berlin(MONDAY, 13))
    staff_at_one = [shift(ANNA), shift(BERT, False, None, absent=True), shift(CARLA)]
    escalated = machine.on_deadline(waiting.state, later, berlin(MONDAY, 13), staff_at_one)
    assert escalated.escalation is not None
    assert (escalated.escalation.escalated_to, escalated.state.escalation_waits_until) == (CARLA, None)
    # Nobody else at all: escalate at once, to nobody (as before shifts).
    alone = machine.on_deadline(assigned, breach, berlin(MONDAY, 11), [shift(ANNA)])
    assert alone.escalation is not None
    assert alone.escalation.escalated_to is None


def test_an_absence_hands_the_callback_on_or_waits_or_only_moves() -> None:
    assigned = state(created=berlin(MONDAY, 9), assigned_to=ANNA, assignee_away_at=berlin(MONDAY, 9, 45))
    due = next_deadline(assigned, berlin(MONDAY, 9, 30))
    assert due == Deadline(DueKind.HANDOVER, berlin(MONDAY, 9, 45))
    assert machine.staff_for_deadline(due, assigned) == machine.StaffNeeded(include=(ANNA,))
    ill = shift(ANNA, False, berlin(MONDAY, 15), absent=True)
    handed = machine.on_deadline(
        assigned, due, berlin(MONDAY, 9, 45), [ill, shift(BERT, away_from=berlin(MONDAY, 16))]
    )
    assert (handed.state.assigned_to, handed.state.assignee_away_at) == (BERT, berlin(MONDAY, 16))
    assert [e.type for e in handed.events] == ["callback.handed_over", "callback.assigned"]
    waits = machine.on_deadline(
        assigned, due, berlin(MONDAY, 9, 45), [ill, shift(BERT, False, berlin(MONDAY, 12))]
    )
    assert (waits.state.assigned_to, waits.state.assign_at, waits.state.assignee_away_at) == (
        ANNA,
        berlin(MONDAY, 12),
        None,
    )
    withdrawn = machine.on_deadline(
        assigned, due, berlin(MONDAY, 9, 45), [shift(ANNA, away_from=berlin(MONDAY, 14))]
    )
    assert (withdrawn.state.assigned_to, withdrawn.state.assignee_away_at, withdrawn.events) == (
        ANNA,
        berlin(MONDAY, 14),
        [],
    )


def test_staff_deadlines_never_change_a_state_recorded_before_shifts() -> None:
    legacy = state(settings_=CALENDAR, calendar=None)
    assert next_deadline(legacy, legacy.created_at) == Deadline(
        DueKind.WARNING, legacy.created_at + timedelta(hours=1), warning_percent=50
    )
