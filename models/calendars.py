"""Business calendar shapes (DESIGN §8): a branch's opening hours, closures and public holidays, and
staff absences. Pure data: the arithmetic lives in `rules/business_calendar.py`, which the workflow
sandbox loads, so nothing here may do I/O.

Opening hours are local wall-clock times (naive `time`s) in the calendar's zone. An interval is
`(opens, closes)`; a `closes` of 00:00 means midnight at the *end* of the day, so `("00:00", "00:00")`
is the whole day. On input "24:00" is accepted as a spelling of that midnight; it is stored (and sent
back) as 00:00.
"""

from __future__ import annotations

from datetime import date, time, timedelta
from enum import StrEnum
from functools import lru_cache
from itertools import pairwise
from typing import Annotated, Any

import holidays
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from models.calcom import check_time_zone

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # in `date.weekday()` order
MIDNIGHT = time(0)
_DAY = timedelta(days=1)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _local(value: time) -> time:
    """Opening hours follow the calendar's zone; a time carrying its own offset would contradict it."""
    if value.tzinfo is not None:
        raise ValueError("opening hours are local wall-clock times: leave out the UTC offset")
    return value


def _end_of_day(value: Any) -> Any:
    """ISO 8601 allows 24:00 for the end of a day; `datetime.time` cannot hold it."""
    if isinstance(value, str) and value.strip() in ("24:00", "24:00:00"):
        return MIDNIGHT
    return value


OpeningTime = Annotated[time, AfterValidator(_local)]
ClosingTime = Annotated[time, BeforeValidator(_end_of_day), AfterValidator(_local)]
OpeningInterval = tuple[OpeningTime, ClosingTime]


def since_midnight(moment: time) -> timedelta:
    return timedelta(
        hours=moment.hour, minutes=moment.minute, seconds=moment.second, microseconds=moment.microsecond
    )


def interval_bounds(interval: tuple[time, time]) -> tuple[timedelta, timedelta]:
    """Offsets from local midnight, with a closing 00:00 counted as the end of the day (24 h)."""
    opens, closes = interval
    return since_midnight(opens), _DAY if closes == MIDNIGHT else since_midnight(closes)


def _hhmm(moment: time) -> str:
    return moment.isoformat(timespec="minutes" if not (moment.second or moment.microsecond) else "auto")


def _describe(interval: tuple[time, time]) -> str:
    opens, closes = interval
    return f"{_hhmm(opens)}–{'24:00' if closes == MIDNIGHT else _hhmm(closes)}"


class WeeklyHours(_Frozen):
    """Opening intervals per weekday; a missing or empty day is closed. Intervals come back sorted."""

    mon: tuple[OpeningInterval, ...] = ()
    tue: tuple[OpeningInterval, ...] = ()
    wed: tuple[OpeningInterval, ...] = ()
    thu: tuple[OpeningInterval, ...] = ()
    fri: tuple[OpeningInterval, ...] = ()
    sat: tuple[OpeningInterval, ...] = ()
    sun: tuple[OpeningInterval, ...] = ()

    @field_validator(*WEEKDAYS)
    @classmethod
    def _ordered_and_disjoint(
        cls, value: tuple[tuple[time, time], ...], info: ValidationInfo
    ) -> tuple[tuple[time, time], ...]:
        """Overlaps are rejected rather than merged: they are almost always a typo in an hours form."""
        day = info.field_name
        for interval in value:
            opens, closes = interval_bounds(interval)
            if opens >= closes:
                raise ValueError(
                    f"{day}: interval {_describe(interval)} must open before it closes "
                    "(write 24:00 or 00:00 as the closing time for midnight)"
                )
        ordered = tuple(sorted(value, key=interval_bounds))
        for before, after in pairwise(ordered):
            if interval_bounds(after)[0] < interval_bounds(before)[1]:
                raise ValueError(f"{day}: intervals {_describe(before)} and {_describe(after)} overlap")
        return ordered

    def on(self, weekday: int) -> tuple[tuple[time, time], ...]:
        """The intervals of a `date.weekday()` (0 = Monday)."""
        hours: tuple[tuple[time, time], ...] = getattr(self, WEEKDAYS[weekday])
        return hours

    @property
    def is_empty(self) -> bool:
        return not any(self.on(weekday) for weekday in range(7))


class Closure(_Frozen):
    """Days a branch is closed on its own account (inventory, works, company outing), both ends included."""

    start: date
    end: date
    reason: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _end_not_before_start(self) -> Closure:
        if self.end < self.start:
            raise ValueError(f"closure ends ({self.end}) before it starts ({self.start})")
        return self

    def covers(self, day: date) -> bool:
        return self.start <= day <= self.end


@lru_cache(maxsize=1)
def supported_subdivisions() -> dict[str, tuple[str, ...]]:
    """Countries the `holidays` package knows, with their subdivision codes."""
    return {country: tuple(subdivs) for country, subdivs in holidays.list_supported_countries().items()}


class BusinessCalendarSpec(_Frozen):
    """A branch's (or a member of staff's) calendar: weekly hours in `time_zone`, minus its own closures,
    minus the public holidays of `country`/`subdivision` unless `ignore_public_holidays`."""

    time_zone: str
    weekly_hours: WeeklyHours
    closures: tuple[Closure, ...] = ()
    country: str | None = Field(default=None, description="ISO 3166-1 alpha-2, e.g. DE")
    subdivision: str | None = Field(default=None, description="as the `holidays` package names it, e.g. BE")
    ignore_public_holidays: bool = False

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return check_time_zone(value)

    @field_validator("country")
    @classmethod
    def _known_country(cls, value: str | None) -> str | None:
        if value is None:
            return None
        code = value.strip().upper()
        if len(code) != 2 or not code.isalpha():
            raise ValueError(f"country {value!r} is not an ISO 3166-1 alpha-2 code such as 'DE'")
        if code not in supported_subdivisions():
            raise ValueError(f"no public holidays are known for country {code!r}")
        return code

    @field_validator("subdivision")
    @classmethod
    def _known_subdivision(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Checked here, not when the first deadline is computed: inside a workflow it would be too late."""
        if value is None:
            return None
        if "country" not in info.data:  # the country itself failed; its error says enough
            return value
        country = info.data["country"]
        if country is None:
            raise ValueError("a subdivision needs a country")
        known = supported_subdivisions()[country]
        by_upper = {code.upper(): code for code in known}
        code = by_upper.get(value.strip().upper())
        if code is None:
            listed = ", ".join(known) if known else "none"
            raise ValueError(f"unknown subdivision {value!r} of {country} (known: {listed})")
        return code


class AbsenceKind(StrEnum):
    VACATION = "vacation"
    SICK = "sick"
    OTHER = "other"


class Absence(_Frozen):
    """A member of staff away from `start` up to (not including) `end`, on top of their working hours."""

    start: AwareDatetime
    end: AwareDatetime
    kind: AbsenceKind = AbsenceKind.OTHER

    @model_validator(mode="after")
    def _end_after_start(self) -> Absence:
        if self.end <= self.start:
            raise ValueError("an absence must end after it starts")
        return self
