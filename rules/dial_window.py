"""Dial windows (DESIGN §8): when a customer may be called, and whose time zone that is counted in.

A customer may be called inside the allowed hours (08:00–20:00 unless the company or branch sets its own)
on their own wall clock, and, while their preferred window is not over, only inside that window. Once it is
over, the allowed hours alone apply: calling late beats never calling. The customer's zone is the one the
directory knows, else the one their phone number's region has (phonenumbers' time-zone data), else the
branch's. Pure: `now` and every input are passed in, so workflow code may call it.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_zones

from models.dial_window import DialWindow, ZoneSource
from rules.business_calendar import BusinessCalendar, Interval, daily_window_calendar

# Far enough to find the end of any daily window that has started (it lasts at most a day).
_WINDOW_END_SEARCH = timedelta(days=2)


@lru_cache(maxsize=256)
def _allowed_hours(time_zone: str, start: time, end: time) -> BusinessCalendar:
    return daily_window_calendar(time_zone, start, end)


def _known_zone(name: str | None) -> bool:
    if not name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def customer_time_zone(
    customer_zone: str | None, phone_number: str, branch_zone: str, at: datetime
) -> tuple[str, ZoneSource]:
    """The zone the customer's wall clock runs in, and where that came from.

    A number whose region spans several zones (a Portuguese mobile: Azores and Lisbon; a US mobile: all
    of them) gives the branch's zone when it is one of them, else the middle one by UTC offset at `at`.
    """
    if _known_zone(customer_zone):
        assert customer_zone is not None
        return customer_zone, ZoneSource.CUSTOMER
    try:
        parsed = phonenumbers.parse(phone_number, None)
    except phonenumbers.NumberParseException:
        return branch_zone, ZoneSource.BRANCH
    zones = sorted(z for z in phone_zones.time_zones_for_number(parsed) if _known_zone(z))
    if not zones:
        return branch_zone, ZoneSource.BRANCH
    if branch_zone in zones:
        return branch_zone, ZoneSource.PHONE
    by_offset = sorted(zones, key=lambda zone: (at.astimezone(ZoneInfo(zone)).utcoffset(), zone))
    return by_offset[len(by_offset) // 2], ZoneSource.PHONE


def parse_preferred(window: dict[str, Any] | None) -> tuple[datetime, datetime] | None:
    """The customer's preferred window as aware datetimes; None when absent, malformed or empty."""
    if not window:
        return None
    try:
        start = datetime.fromisoformat(str(window["start"]))
        end = datetime.fromisoformat(str(window["end"]))
    except (KeyError, ValueError):
        return None
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        return None
    return start, end


def dial_window(
    *,
    time_zone: str,
    zone_source: ZoneSource,
    hours: tuple[time, time],
    preferred_time_window: dict[str, Any] | None,
) -> DialWindow:
    preferred = parse_preferred(preferred_time_window)
    return DialWindow(
        time_zone=time_zone,
        zone_source=zone_source,
        start=hours[0],
        end=hours[1],
        not_before=preferred[0] if preferred else None,
        not_after=preferred[1] if preferred else None,
    )


def first_callable(dial: DialWindow, after: datetime) -> Interval | None:
    """The first stretch of time from `after` on in which the customer may be called, as (UTC start, UTC
    end); the start is `after` itself when they may be called right now. None: never (cannot happen with
    a valid window, but callers do not have to know that)."""
    allowed = _allowed_hours(dial.time_zone, dial.start, dial.end)
    if dial.not_after is not None and after < dial.not_after:
        since = max(after, dial.not_before) if dial.not_before is not None else after
        inside = next(allowed.open_intervals(since, dial.not_after), None)
        if inside is not None:
            return inside
        after = dial.not_after  # no allowed hour in the preferred window: the allowed hours after it
    opening = allowed.next_opening(after)
    if opening is None:
        return None
    return next(allowed.open_intervals(opening, opening + _WINDOW_END_SEARCH), None)


def callable_status(dial: DialWindow | None, now: datetime) -> tuple[bool | None, datetime | None]:
    """(callable now, next callable at); (None, None) when the callback has no dial window (older ones)."""
    if dial is None:
        return None, None
    first = first_callable(dial, now)
    if first is None:
        return False, None
    return first[0] <= now, first[0]


def deadline_after_dial_window(dial: DialWindow | None, created_at: datetime, deadline: datetime) -> datetime:
    """The SLA deadline, moved to the end of the first callable window when that window only opens at or
    after the deadline (nobody could have called in time)."""
    if dial is None:
        return deadline
    first = first_callable(dial, created_at)
    if first is None or first[0] < deadline:
        return deadline
    return max(first[1], deadline)
