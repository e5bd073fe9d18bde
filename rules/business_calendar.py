"""Business calendars (DESIGN §8): when a branch, a member of staff or a customer's dial window is open,
and business-hours arithmetic on top of that (SLA clocks in `business_hours` mode, "next callable at").

Pure and deterministic: no I/O, no clock, so workflow code may call it and replay gets the same answer.
Every datetime going in must be timezone-aware; every datetime coming out is in UTC.

Wall clock and daylight saving time
-----------------------------------
Opening hours are wall-clock times in the calendar's zone. A local time L (opening or closing) is the
*first instant at which the wall clock shows L or later*:

- an ordinary time is its only instant;
- an ambiguous time (autumn: the repeated hour) is its first occurrence, zoneinfo's `fold=0`;
- a nonexistent time (spring: the skipped hour) is the instant the clocks jump over it. That is neither
  fold: `fold=0` would push it one gap later (an opening at 02:30 in Berlin to 03:30 CEST), while the
  branch is open as soon as the clock shows 03:00.

Intervals are then real (UTC) time between their two instants: Berlin's 01:30–03:30 on the last Sunday
of March is open one real hour, 00:00–24:00 on the last Sunday of October twenty-five. Equivalently, an
instant is open when a wall clock that never runs backwards (it waits through the repeated hour) shows a
time inside an interval of a day that is not closed; the tests check the code against exactly that.

A day's intervals belong to that day: a public holiday or a closure closes the intervals that open on it,
and an interval ending at 24:00 the evening before a holiday still runs until midnight.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from models.calendars import (
    MIDNIGHT,
    Absence,
    BusinessCalendarSpec,
    WeeklyHours,
    interval_bounds,
)

# A calendar with no open time in this long a stretch counts as never opening: a full year (every
# weekday, every yearly holiday) and then some. Closures longer than that are treated as "never".
SEARCH_HORIZON = timedelta(days=400)

Interval = tuple[datetime, datetime]

_DAY = timedelta(days=1)
_SECOND = timedelta(seconds=1)
_TICK = timedelta(microseconds=1)


@lru_cache(maxsize=1024)
def public_holidays(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    """One country-subdivision-year of public holidays (observed days included), computed once per process."""
    days = holidays.country_holidays(country, subdiv=subdivision, years=year)
    return frozenset(day for day in days if day.year == year)


def as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no time zone: business calendars take aware datetimes")
    return moment.astimezone(UTC)


def _merge(intervals: Iterable[Interval]) -> Iterator[Interval]:
    """Sorted intervals in, maximal ones out: touching or overlapping pieces become one."""
    current: Interval | None = None
    for start, end in intervals:
        if current is not None and start <= current[1]:
            current = (current[0], max(current[1], end))
            continue
        if current is not None:
            yield current
        current = (start, end)
    if current is not None:
        yield current


class BusinessCalendar:
    """Open time of one spec, minus any `absences` and `closed` UTC intervals (for staff: working hours
    from the spec, vacations and sick days from here; for a branch: ad-hoc closures by the hour)."""

    def __init__(
        self,
        spec: BusinessCalendarSpec,
        *,
        absences: Iterable[Absence] = (),
        closed: Iterable[tuple[datetime, datetime]] = (),
    ) -> None:
        self.spec = spec
        self._zone = ZoneInfo(spec.time_zone)
        self._hours = [spec.weekly_hours.on(weekday) for weekday in range(7)]
        blocked: list[Interval] = [(as_utc(a.start), as_utc(a.end)) for a in absences]
        for start, end in closed:
            if as_utc(end) <= as_utc(start):
                raise ValueError(f"closed interval {start.isoformat()}–{end.isoformat()} is empty")
            blocked.append((as_utc(start), as_utc(end)))
        self._blocked = list(_merge(sorted(blocked)))
        self._blocked_ends = [end for _, end in self._blocked]

    # -- days and instants ---------------------------------------------------------------------------

    def is_closed_day(self, day: date) -> bool:
        """A public holiday or one of the spec's closures: no interval opening on `day` counts."""
        spec = self.spec
        if any(closure.covers(day) for closure in spec.closures):
            return True
        if spec.country is None or spec.ignore_public_holidays:
            return False
        return day in public_holidays(spec.country, spec.subdivision, day.year)

    def local_instant(self, local: datetime) -> datetime:
        """The first UTC instant at which the calendar's wall clock shows `local` (naive) or later."""
        first = local.replace(tzinfo=self._zone, fold=0).astimezone(UTC)
        if first.astimezone(self._zone).replace(tzinfo=None) == local:
            return first  # exists; fold=0 is the first occurrence of an ambiguous time
        # Skipped by a forward jump. fold=1 reads it with the offset after the jump (an instant before
        # the jump), fold=0 with the one before (after it): the jump lies in between, on a whole second
        # (TZif transitions are whole seconds), so bisect for the first second showing `local` or later.
        low = local.replace(tzinfo=self._zone, fold=1).astimezone(UTC).replace(microsecond=0)
        high = first if first.microsecond == 0 else first.replace(microsecond=0) + _SECOND
        while high - low > _SECOND:
            middle = low + (high - low) // 2
            middle = middle.replace(microsecond=0)
            if middle.astimezone(self._zone).replace(tzinfo=None) >= local:
                high = middle
            else:
                low = middle
        return high

    # -- the core ------------------------------------------------------------------------------------

    def _weekly(self, start: datetime, end: datetime) -> Iterator[Interval]:
        """Weekly hours of the days that are not closed, as UTC intervals clipped to [start, end).

        Sorted, because turning local times into instants never goes backwards. The day before the
        local date of `start` is included: autumn's repeated hour can belong to it.
        """
        day = start.astimezone(self._zone).date() - _DAY
        last = end.astimezone(self._zone).date() + _DAY
        while day <= last:
            if self._hours[day.weekday()] and not self.is_closed_day(day):
                midnight = datetime.combine(day, MIDNIGHT)
                for interval in self._hours[day.weekday()]:
                    opens, closes = interval_bounds(interval)
                    lo = max(self.local_instant(midnight + opens), start)
                    hi = min(self.local_instant(midnight + closes), end)
                    if lo < hi:
                        yield lo, hi
            day += _DAY

    def _without_blocked(self, intervals: Iterable[Interval]) -> Iterator[Interval]:
        for start, end in intervals:
            index = bisect_right(self._blocked_ends, start)  # the first block still running at `start`
            for block_start, block_end in self._blocked[index:]:
                if block_start >= end:
                    break
                if block_start > start:
                    yield start, block_start
                start = max(start, block_end)
                if start >= end:
                    break
            if start < end:
                yield start, end

    def _open(self, start: datetime, end: datetime) -> Iterator[Interval]:
        return self._without_blocked(_merge(self._weekly(start, end)))

    def _open_onwards(self, start: datetime) -> Iterator[Interval]:
        """Open intervals from `start` on, window by window, until SEARCH_HORIZON passes without any."""
        if self.spec.weekly_hours.is_empty:
            return
        cursor = start
        while True:
            found = False
            for interval in self._open(cursor, cursor + SEARCH_HORIZON):
                found = True
                cursor = interval[1]
                yield interval
            if not found:
                return

    # -- the API -------------------------------------------------------------------------------------

    def open_intervals(self, start: datetime, end: datetime) -> Iterator[Interval]:
        """Maximal open intervals within [start, end) as (UTC start, UTC end), earliest first; lazy, so a
        consumer may stop early. Nothing when `end` is not after `start`."""
        return self._open(as_utc(start), as_utc(end))

    def is_open(self, moment: datetime) -> bool:
        moment = as_utc(moment)
        return next(self._open(moment, moment + _TICK), None) is not None

    def next_opening(self, moment: datetime) -> datetime | None:
        """`moment` itself (in UTC) when open, else the next opening; None when the calendar does not
        open within SEARCH_HORIZON (400 days) of `moment`, which the callers treat as "never"."""
        moment = as_utc(moment)
        first = next(self._open(moment, moment + SEARCH_HORIZON), None)
        return None if first is None else first[0]

    def add_business_hours(self, moment: datetime, hours: float | timedelta) -> datetime:
        """The instant at which `hours` of open time have passed since `moment` (counting from the next
        opening when closed). Time used up exactly at a closing gives that closing, not the next opening;
        zero hours give `next_opening(moment)`.

        Raises ValueError for negative hours or a calendar that never opens (no open time within
        SEARCH_HORIZON of `moment` or of the end of any open interval on the way).
        """
        remaining = hours if isinstance(hours, timedelta) else timedelta(hours=hours)
        if remaining < timedelta(0):
            raise ValueError(f"cannot add negative business hours ({remaining})")
        for start, end in self._open_onwards(as_utc(moment)):
            if remaining <= end - start:
                return start + remaining
            remaining -= end - start
        raise ValueError(
            f"the calendar ({self.spec.time_zone}) is not open within {SEARCH_HORIZON.days} days of "
            f"{moment.isoformat()}: cannot add {hours} business hours"
        )

    def business_hours_between(self, start: datetime, end: datetime) -> timedelta:
        """Open time within [start, end); zero when `end` is not after `start`."""
        return sum((hi - lo for lo, hi in self.open_intervals(start, end)), timedelta(0))


def daily_window_calendar(time_zone: str, start: time, end: time) -> BusinessCalendar:
    """Open every day from `start` to `end` local time, holidays ignored: a customer's dial window, whose
    `next_opening` is "next callable at". An `end` before `start` wraps past midnight (20:00–08:00 is
    the night); an `end` of 00:00 is midnight at the end of the day.

    Raises ValueError (a pydantic ValidationError for a bad zone) when the window is empty.
    """
    if start == end and end != MIDNIGHT:
        raise ValueError(f"the dial window {start.isoformat()}–{end.isoformat()} is empty")
    if end == MIDNIGHT or start < end:
        day: tuple[tuple[time, time], ...] = ((start, end),)
    else:
        day = ((MIDNIGHT, end), (start, MIDNIGHT))
    hours = WeeklyHours(mon=day, tue=day, wed=day, thu=day, fri=day, sat=day, sun=day)
    spec = BusinessCalendarSpec(time_zone=time_zone, weekly_hours=hours, ignore_public_holidays=True)
    return BusinessCalendar(spec)
