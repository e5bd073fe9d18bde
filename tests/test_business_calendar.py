"""Business calendars (rules/business_calendar.py): the issue's hand examples, daylight saving time, the
validation of the shapes, and properties against a minute-by-minute wall-clock reference."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from models.calendars import Absence, AbsenceKind, BusinessCalendarSpec, Closure, WeeklyHours
from rules.business_calendar import BusinessCalendar, Interval, daily_window_calendar

BERLIN, LISBON = ZoneInfo("Europe/Berlin"), ZoneInfo("Europe/Lisbon")
OFFICE = ((time(9), time(17)),)
MINUTE = timedelta(minutes=1)


def office(zone: str = "Europe/Berlin", **spec: Any) -> BusinessCalendar:
    hours = WeeklyHours(mon=OFFICE, tue=OFFICE, wed=OFFICE, thu=OFFICE, fri=OFFICE)
    return BusinessCalendar(BusinessCalendarSpec(time_zone=zone, weekly_hours=hours, **spec))


BERLIN_BRANCH = office(country="DE", subdivision="BE")
LISBON_BRANCH = office("Europe/Lisbon", country="PT")


def local(zone: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=zone, fold=fold)  # type: ignore[misc]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


class TestIssueExamples:
    FRIDAY = local(BERLIN, 2025, 10, 10, 16, 30)

    @pytest.mark.parametrize(
        ("hours", "due"), [(2, (13, 10, 30)), (1, (13, 9, 30)), (1.5, (13, 10, 0)), (0.5, (10, 17, 0))]
    )
    def test_friday_afternoon_runs_into_monday(self, hours: float, due: tuple[int, int, int]) -> None:
        day, hour, minute = due
        assert BERLIN_BRANCH.add_business_hours(self.FRIDAY, hours) == local(
            BERLIN, 2025, 10, day, hour, minute
        )

    def test_a_saturday_night_request_starts_counting_on_monday(self) -> None:
        saturday = local(BERLIN, 2025, 10, 11, 23)
        assert BERLIN_BRANCH.add_business_hours(saturday, timedelta(hours=2)) == local(
            BERLIN, 2025, 10, 13, 11
        )
        assert BERLIN_BRANCH.next_opening(saturday) == local(BERLIN, 2025, 10, 13, 9)
        assert BERLIN_BRANCH.add_business_hours(saturday, 0) == local(BERLIN, 2025, 10, 13, 9)

    @pytest.mark.parametrize(
        ("thursday_before", "due"),
        [((2025, 10, 2), (2025, 10, 6, 10, 30)), ((2024, 10, 2), (2024, 10, 4, 10, 30))],
    )
    def test_german_unity_day_is_skipped(
        self, thursday_before: tuple[int, int, int], due: tuple[int, ...]
    ) -> None:
        start = local(BERLIN, *thursday_before, 16, 30)
        assert BERLIN_BRANCH.add_business_hours(start, 2) == local(BERLIN, *due)
        assert not BERLIN_BRANCH.is_open(local(BERLIN, thursday_before[0], 10, 3, 11))

    def test_each_branch_keeps_its_own_public_holidays(self) -> None:
        # 10 June is Portugal Day (a Wednesday in 2026); 3 October is German only (a Friday in 2025).
        assert LISBON_BRANCH.add_business_hours(local(LISBON, 2026, 6, 9, 16, 30), 2) == local(
            LISBON, 2026, 6, 11, 10, 30
        )
        assert BERLIN_BRANCH.add_business_hours(local(BERLIN, 2026, 6, 9, 16, 30), 2) == local(
            BERLIN, 2026, 6, 10, 10, 30
        )
        assert LISBON_BRANCH.add_business_hours(local(LISBON, 2025, 10, 2, 16, 30), 2) == local(
            LISBON, 2025, 10, 3, 10, 30
        )
        assert LISBON_BRANCH.is_closed_day(date(2026, 6, 10))
        assert not BERLIN_BRANCH.is_closed_day(date(2026, 6, 10))

    def test_a_branch_closure_is_skipped(self) -> None:
        closed = office(
            country="DE",
            subdivision="BE",
            closures=[Closure(start=date(2025, 10, 13), end=date(2025, 10, 14))],
        )
        assert closed.add_business_hours(self.FRIDAY, 2) == local(BERLIN, 2025, 10, 15, 10, 30)

    def test_public_holidays_can_be_ignored(self) -> None:
        ignoring = office(country="DE", subdivision="BE", ignore_public_holidays=True)
        assert ignoring.is_open(local(BERLIN, 2025, 10, 3, 11))


class TestDaylightSavingTime:
    def test_office_deadlines_across_both_changes_land_on_wall_clock_time(self) -> None:
        assert BERLIN_BRANCH.add_business_hours(local(BERLIN, 2025, 3, 28, 16, 30), 2) == utc(
            2025, 3, 31, 8, 30
        )
        assert BERLIN_BRANCH.add_business_hours(local(BERLIN, 2025, 10, 24, 16, 30), 2) == utc(
            2025, 10, 27, 9, 30
        )

    def test_a_whole_sunday_has_the_real_elapsed_time(self) -> None:
        sundays = BusinessCalendar(
            BusinessCalendarSpec(
                time_zone="Europe/Berlin", weekly_hours=WeeklyHours(sun=[("00:00", "24:00")])
            )
        )
        spring, autumn = local(BERLIN, 2025, 3, 30), local(BERLIN, 2025, 10, 26)
        assert sundays.business_hours_between(spring, spring + timedelta(days=2)) == timedelta(hours=23)
        assert sundays.business_hours_between(autumn, autumn + timedelta(days=2)) == timedelta(hours=25)
        # 02:00–03:00 never happened in spring and happened twice in autumn (the second 02:00 is 01:00 UTC).
        assert sundays.add_business_hours(spring, 12) == local(BERLIN, 2025, 3, 30, 13)
        assert sundays.add_business_hours(autumn, 12) == local(BERLIN, 2025, 10, 26, 11)
        assert sundays.add_business_hours(autumn, 3) == utc(2025, 10, 26, 1)
        # Used up exactly at the closing: the closing, not the next Sunday's opening.
        assert sundays.add_business_hours(spring, 23) == local(BERLIN, 2025, 3, 31)
        assert list(sundays.open_intervals(autumn, autumn + timedelta(days=8))) == [
            (utc(2025, 10, 25, 22), utc(2025, 10, 26, 23)),
            (utc(2025, 11, 1, 23), utc(2025, 11, 2, 23)),
        ]

    @pytest.mark.parametrize(
        ("hours", "day", "opens", "closes"),
        [
            (("01:30", "03:30"), 30, utc(2025, 3, 30, 0, 30), utc(2025, 3, 30, 1, 30)),  # one real hour
            (("02:30", "04:00"), 30, utc(2025, 3, 30, 1), utc(2025, 3, 30, 2)),  # opens when the clock jumps
            (("01:00", "02:30"), 30, utc(2025, 3, 30, 0), utc(2025, 3, 30, 1)),  # closes when the clock jumps
            (("01:30", "03:30"), 26, utc(2025, 10, 25, 23, 30), utc(2025, 10, 26, 2, 30)),  # three real hours
            (("02:30", "04:00"), 26, utc(2025, 10, 26, 0, 30), utc(2025, 10, 26, 3)),  # first 02:30
            (("00:00", "02:30"), 26, utc(2025, 10, 25, 22), utc(2025, 10, 26, 0, 30)),  # first 02:30
        ],
    )
    def test_endpoints_in_the_changing_hour(
        self, hours: tuple[str, str], day: int, opens: datetime, closes: datetime
    ) -> None:
        calendar = BusinessCalendar(
            BusinessCalendarSpec(time_zone="Europe/Berlin", weekly_hours=WeeklyHours(sun=[hours]))
        )
        month = 3 if day == 30 else 10
        assert list(
            calendar.open_intervals(local(BERLIN, 2025, month, day - 1), local(BERLIN, 2025, month, day + 1))
        ) == [(opens, closes)]
        assert calendar.next_opening(local(BERLIN, 2025, month, day - 1)) == opens

    def test_an_interval_inside_the_skipped_hour_never_opens(self) -> None:
        calendar = BusinessCalendar(
            BusinessCalendarSpec(
                time_zone="Europe/Berlin", weekly_hours=WeeklyHours(sun=[("02:00", "03:00")])
            )
        )
        assert calendar.business_hours_between(utc(2025, 3, 29), utc(2025, 3, 31)) == timedelta(0)
        assert calendar.next_opening(utc(2025, 3, 29)) == local(BERLIN, 2025, 4, 6, 2)


class TestStaffAndDialWindows:
    def test_absences_and_closed_intervals_are_taken_out(self) -> None:
        vacation = Absence(
            start=local(BERLIN, 2025, 10, 13), end=local(BERLIN, 2025, 10, 15), kind=AbsenceKind.VACATION
        )
        meeting = (local(BERLIN, 2025, 10, 15, 9), local(BERLIN, 2025, 10, 15, 10, 15))
        staff = BusinessCalendar(BERLIN_BRANCH.spec, absences=[vacation], closed=[meeting])
        assert staff.add_business_hours(TestIssueExamples.FRIDAY, 2) == local(BERLIN, 2025, 10, 15, 11, 45)
        assert staff.next_opening(local(BERLIN, 2025, 10, 13, 12)) == local(BERLIN, 2025, 10, 15, 10, 15)

    def test_a_dial_window_gives_next_callable_at(self) -> None:
        new_york = ZoneInfo("America/New_York")
        window = daily_window_calendar("America/New_York", time(8), time(20))
        assert window.next_opening(local(new_york, 2025, 7, 4, 21)) == local(
            new_york, 2025, 7, 5, 8
        )  # holiday too
        assert window.next_opening(local(new_york, 2025, 7, 4, 12)) == local(new_york, 2025, 7, 4, 12)
        night = daily_window_calendar("Europe/Berlin", time(20), time(8))
        assert night.is_open(local(BERLIN, 2025, 7, 4, 23))
        assert not night.is_open(local(BERLIN, 2025, 7, 4, 12))
        with pytest.raises(ValueError, match="empty"):
            daily_window_calendar("Europe/Berlin", time(8), time(8))

    def test_a_calendar_that_never_opens(self) -> None:
        never = BusinessCalendar(BusinessCalendarSpec(time_zone="Europe/Berlin", weekly_hours=WeeklyHours()))
        assert never.next_opening(utc(2025, 1, 1)) is None
        with pytest.raises(ValueError, match="not open within 400 days"):
            never.add_business_hours(utc(2025, 1, 1), 1)
        closed = office(closures=[Closure(start=date(2025, 1, 1), end=date(2027, 1, 1), reason="works")])
        assert closed.next_opening(utc(2025, 1, 1)) is None
        assert closed.add_business_hours(utc(2024, 12, 31, 15), 1) == utc(2024, 12, 31, 16)
        with pytest.raises(ValueError, match="not open within"):
            closed.add_business_hours(utc(2024, 12, 31, 15), 3)

    def test_bad_arguments(self) -> None:
        with pytest.raises(ValueError, match="no time zone"):
            BERLIN_BRANCH.is_open(datetime(2025, 1, 1, 12))
        with pytest.raises(ValueError, match="negative"):
            BERLIN_BRANCH.add_business_hours(utc(2025, 1, 1), -1)
        assert BERLIN_BRANCH.business_hours_between(utc(2025, 1, 3), utc(2025, 1, 2)) == timedelta(0)


class TestValidation:
    @staticmethod
    def locations(error: pytest.ExceptionInfo[ValidationError]) -> list[tuple[int | str, ...]]:
        return [e["loc"] for e in error.value.errors()]

    def test_overlapping_intervals_name_the_weekday(self) -> None:
        with pytest.raises(
            ValidationError, match=r"tue: intervals 09:00–12:00 and 11:00–13:00 overlap"
        ) as error:
            BusinessCalendarSpec(
                time_zone="Europe/Berlin", weekly_hours={"tue": [("11:00", "13:00"), ("09:00", "12:00")]}
            )
        assert self.locations(error) == [("weekly_hours", "tue")]

    def test_an_interval_must_open_before_it_closes(self) -> None:
        with pytest.raises(ValidationError, match="fri: interval 17:00–09:00 must open before") as error:
            WeeklyHours(fri=[("17:00", "09:00")])
        assert self.locations(error) == [("fri",)]

    def test_hours_come_back_sorted_with_midnight_as_end_of_day(self) -> None:
        hours = WeeklyHours(sat=[("18:00", "24:00"), ("08:00", "12:00")], sun=[("00:00", "00:00")])
        assert hours.sat == ((time(8), time(12)), (time(18), time(0)))
        assert hours.model_dump(mode="json")["sun"] == [["00:00:00", "00:00:00"]]

    def test_offsets_in_opening_hours_are_refused(self) -> None:
        with pytest.raises(ValidationError, match="leave out the UTC offset"):
            WeeklyHours(mon=[("09:00+01:00", "17:00")])

    @pytest.mark.parametrize(
        ("fields", "location", "message"),
        [
            ({"time_zone": "Mars/Olympus"}, ("time_zone",), "unknown time zone"),
            ({"country": "DE", "subdivision": "XX"}, ("subdivision",), "unknown subdivision 'XX' of DE"),
            ({"subdivision": "BE"}, ("subdivision",), "needs a country"),
            ({"country": "XX"}, ("country",), "no public holidays are known"),
            ({"country": "Germany"}, ("country",), "not an ISO 3166-1 alpha-2"),
        ],
    )
    def test_spec_errors_carry_the_field(
        self, fields: dict[str, str], location: tuple[str], message: str
    ) -> None:
        with pytest.raises(ValidationError, match=message) as error:
            BusinessCalendarSpec(**{"time_zone": "Europe/Berlin", "weekly_hours": {}, **fields})
        assert self.locations(error) == [location]

    def test_codes_are_normalised(self) -> None:
        spec = BusinessCalendarSpec(
            time_zone="Europe/Berlin", weekly_hours={}, country="de", subdivision="be"
        )
        assert (spec.country, spec.subdivision) == ("DE", "BE")

    def test_closures_and_absences_must_not_run_backwards(self) -> None:
        with pytest.raises(ValidationError, match="before it starts"):
            Closure(start=date(2025, 1, 2), end=date(2025, 1, 1))
        with pytest.raises(ValidationError, match="must end after it starts"):
            Absence(start=utc(2025, 1, 2), end=utc(2025, 1, 1))
        with pytest.raises(ValidationError, match="timezone"):
            Absence(start=datetime(2025, 1, 1), end=utc(2025, 1, 2))


# -- properties against the wall clock, read minute by minute ---------------------------------------------

PLACES = [
    ("Europe/Berlin", "DE", "BE"),
    ("Europe/Lisbon", "PT", None),
    ("America/New_York", "US", "NY"),
    ("Australia/Lord_Howe", "AU", "NSW"),  # half-hour DST
    ("America/New_York", None, None),
]
WINDOW = 8 * 24 * 60  # minutes the reference looks ahead
WARM_UP = timedelta(days=1)  # the reference's clock must have seen the hour before an autumn change


@dataclass(frozen=True)
class Case:
    spec: BusinessCalendarSpec
    absences: tuple[Absence, ...]
    start: datetime  # UTC, minute-aligned

    def calendar(self) -> BusinessCalendar:
        return BusinessCalendar(self.spec, absences=self.absences)


def reference(case: Case, minutes: int) -> list[bool]:
    """Open or not for each minute from `case.start`: step through UTC, read the local wall clock, never
    let it run backwards (it waits through autumn's repeated hour), and look the reading up."""
    spec, zone = case.spec, ZoneInfo(case.spec.time_zone)
    public = public_holidays(spec.country, spec.subdivision) if spec.country else {}
    closed_day: dict[date, bool] = {}
    clock = datetime.min
    instant, end = case.start - WARM_UP, case.start + minutes * MINUTE
    result = []
    while instant < end:
        clock = max(clock, instant.astimezone(zone).replace(tzinfo=None))
        day = clock.date()
        if day not in closed_day:
            holiday = day in public and not spec.ignore_public_holidays
            closed_day[day] = holiday or any(c.start <= day <= c.end for c in spec.closures)
        now = clock.time()
        is_open = not closed_day[day] and any(
            opens <= now and (now < closes or closes == time(0))
            for opens, closes in spec.weekly_hours.on(day.weekday())
        )
        is_open = is_open and not any(a.start <= instant < a.end for a in case.absences)
        if instant >= case.start:
            result.append(is_open)
        instant += MINUTE
    return result


@lru_cache
def public_holidays(
    country: str, subdivision: str | None, years: range | None = None
) -> holidays.HolidayBase:
    """The library's own lookup (it fills in years as they are asked for), kept between examples."""
    return holidays.country_holidays(country, subdiv=subdivision, years=years)


@lru_cache
def transitions(zone_name: str) -> list[datetime]:
    """The UTC instants (to the quarter hour) of the zone's offset changes in 2023–2027."""
    zone, found = ZoneInfo(zone_name), []
    for day in range(5 * 365):
        instant = utc(2023, 1, 1) + timedelta(days=day)
        if instant.astimezone(zone).utcoffset() != (instant + timedelta(days=1)).astimezone(zone).utcoffset():
            while (
                instant.astimezone(zone).utcoffset()
                == (instant - timedelta(minutes=15)).astimezone(zone).utcoffset()
            ):
                instant += timedelta(minutes=15)
            found.append(instant)
    return found


# Half the edges fall between 00:00 and 03:00, where these zones skip or repeat their clock hours.
MINUTE_OF_DAY = st.one_of(st.integers(0, 1440), st.sampled_from([*range(0, 181, 15), 1440]))
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def day_hours(points: Sequence[int]) -> list[tuple[time, time]]:
    """Sorted minutes paired up: disjoint intervals, touching where a minute repeats."""
    edges = sorted(points)
    pairs = [
        (opens, closes) for opens, closes in zip(edges[0::2], edges[1::2], strict=False) if opens < closes
    ]
    return [(time(opens // 60, opens % 60), time(closes // 60 % 24, closes % 60)) for opens, closes in pairs]


def minute_of_day(moment: datetime) -> int:
    return moment.hour * 60 + moment.minute


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """Calendars of the places above, starting anywhere in 2023–2027, on a public holiday, or around a
    clock change; then the changing day gets opening and closing times in and around its odd hour."""
    zone_name, country, subdivision = draw(st.sampled_from(PLACES))
    zone, edges = ZoneInfo(zone_name), {day: MINUTE_OF_DAY for day in WEEKDAYS}
    anchor = draw(st.sampled_from(["anywhere", "clock change", "clock change", "holiday"]))
    if anchor == "anywhere":
        start = utc(2023, 1, 1) + MINUTE * draw(st.integers(0, 5 * 365 * 1440))
    elif anchor == "holiday" and country is not None:
        day = draw(st.sampled_from(sorted(public_holidays(country, subdivision, years=range(2023, 2028)))))
        midnight = datetime.combine(day, time(0), zone).astimezone(UTC)
        start = midnight + MINUTE * draw(st.integers(0, 1439))
    else:
        change = draw(st.sampled_from(transitions(zone_name)))
        start = change + MINUTE * draw(st.one_of(st.integers(-180, 180), st.integers(-2 * 1440, 0)))
        before, after = (change - MINUTE).astimezone(zone), change.astimezone(zone)
        low, high = sorted((minute_of_day(before) + 1, minute_of_day(after)))
        odd_hour = st.integers(max(low - 30, 0), min(high + 30, 1440))
        edges[WEEKDAYS[after.weekday()]] = st.one_of(MINUTE_OF_DAY, odd_hour, odd_hour)
    hours = WeeklyHours(**{day: draw(st.lists(edges[day], max_size=6).map(day_hours)) for day in WEEKDAYS})
    closures = []
    for _ in range(draw(st.integers(0, 2))):
        first = start.date() + timedelta(days=draw(st.integers(-2, 8)))
        closures.append(Closure(start=first, end=first + timedelta(days=draw(st.integers(0, 2)))))
    absences = []
    for _ in range(draw(st.integers(0, 2))):
        begins = start + MINUTE * draw(st.integers(-1440, WINDOW))
        absences.append(Absence(start=begins, end=begins + MINUTE * draw(st.integers(1, 3000))))
    spec = BusinessCalendarSpec(
        time_zone=zone_name,
        weekly_hours=hours,
        closures=closures,
        country=country,
        subdivision=subdivision,
        ignore_public_holidays=draw(st.booleans()),
    )
    return Case(spec, tuple(absences), start)


def shown(case: Case, minutes: int, local_zone: bool) -> datetime:
    """The instant `minutes` after the start, given in UTC or in the calendar's zone: the answers must not
    depend on how the caller spells it."""
    instant = case.start + MINUTE * minutes
    return instant.astimezone(ZoneInfo(case.spec.time_zone)) if local_zone else instant


def runs_of_open_minutes(case: Case, timeline: Sequence[bool], first: int, last: int) -> list[Interval]:
    runs, run_start = [], None
    for index in range(first, last + 1):
        is_open = index < last and timeline[index]
        if is_open and run_start is None:
            run_start = index
        elif not is_open and run_start is not None:
            runs.append((case.start + MINUTE * run_start, case.start + MINUTE * index))
            run_start = None
    return runs


# Each example computes one reference timeline (~10–30 ms) and then asks several questions of it.
PROBES = st.lists(st.integers(0, 2 * 1440), min_size=1, max_size=8)


@settings(max_examples=100, deadline=None)
@given(case=cases(), probes=PROBES, local_zone=st.booleans())
def test_is_open_reads_the_wall_clock(case: Case, probes: list[int], local_zone: bool) -> None:
    timeline, calendar = reference(case, 2 * 1440 + 1), case.calendar()
    for probe in [0, *probes]:
        assert calendar.is_open(shown(case, probe, local_zone)) == timeline[probe], probe


@settings(max_examples=50, deadline=None)
@given(case=cases(), probes=PROBES, local_zone=st.booleans())
def test_next_opening_is_the_first_open_minute(case: Case, probes: list[int], local_zone: bool) -> None:
    timeline, calendar = reference(case, WINDOW), case.calendar()
    for probe in [0, *probes]:
        found = calendar.next_opening(shown(case, probe, local_zone))
        if True in timeline[probe:]:
            assert found == case.start + MINUTE * timeline.index(True, probe), probe
        else:
            assert found is None or found >= case.start + MINUTE * WINDOW, probe


@settings(max_examples=50, deadline=None)
@given(case=cases(), sums=st.lists(st.tuples(st.integers(0, 2 * 1440), st.integers(0, 30 * 60)), max_size=6))
def test_add_business_hours_counts_open_minutes(case: Case, sums: list[tuple[int, int]]) -> None:
    timeline, calendar = reference(case, WINDOW), case.calendar()
    for probe, minutes in [(0, 0), (0, 120), *sums]:
        try:  # hours as a float and as a timedelta
            due = calendar.add_business_hours(shown(case, probe, minutes % 2 == 0), minutes / 60)
            assert calendar.add_business_hours(shown(case, probe, False), MINUTE * minutes) == due
        except ValueError:
            assert case.spec.weekly_hours.is_empty
            continue
        expected, counted = None, 0
        for index in range(probe, WINDOW):
            if minutes == 0 and timeline[index]:
                expected = case.start + MINUTE * index
                break
            counted += timeline[index]
            if minutes and counted == minutes:
                expected = case.start + MINUTE * (index + 1)
                break
        if expected is None:
            assert due >= case.start + MINUTE * WINDOW, (probe, minutes)
        else:
            assert due == expected, (probe, minutes)


@settings(max_examples=80, deadline=None)
@given(
    case=cases(), spans=st.lists(st.tuples(st.integers(0, 3 * 1440), st.integers(0, 3 * 1440)), max_size=6)
)
def test_open_time_between_two_instants(case: Case, spans: list[tuple[int, int]]) -> None:
    timeline, calendar = reference(case, 3 * 1440), case.calendar()
    for first, last in [(0, 3 * 1440), *spans]:
        start, end = case.start + MINUTE * first, case.start + MINUTE * last
        assert calendar.business_hours_between(start, end) == MINUTE * sum(timeline[first:last])
        assert list(calendar.open_intervals(start, end)) == runs_of_open_minutes(case, timeline, first, last)
