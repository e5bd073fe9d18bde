"""Calendar-shaped input of the directory: time zones, weekly hours, closures, country and subdivision.

Everything the API accepts about *when* a branch is open or a staff member works is checked here, in one
place, with messages that name the field and the weekday ("mon: 09:00–12:00 and 11:30–14:00 overlap").
The shapes are the ones stored in `branches.opening_hours` / `staff.working_hours` (`{"mon": [["09:00",
"17:00"]], ...}`) and `branches.closures` (`[{"start": "2026-12-24", "end": "2026-12-26", "reason": ...}]`),
which the business calendars (models/calendars.py, rules/) read. When those models are available to the
API, the classes here can become thin aliases of them.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import date
from functools import lru_cache
from itertools import pairwise
from typing import Annotated, Any, cast

import holidays
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.config import JsonDict

from api.text import Documented, SingleLine

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$")
END_OF_DAY = "24:00"
MAX_INTERVALS_PER_DAY = 12
MAX_CLOSURES = 400


# --- time zones, countries, subdivisions ----------------------------------------------------------


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def check_time_zone(value: str) -> str:
    """An IANA zone name from the system's tz database (e.g. `Europe/Berlin`)."""
    zone = value.strip()
    if zone not in _zones():
        raise ValueError(f"unknown time zone {value!r}: use an IANA name such as 'Europe/Berlin'")
    return zone


@lru_cache(maxsize=1)
def supported_subdivisions() -> dict[str, tuple[str, ...]]:
    """Countries the `holidays` package knows public holidays for, with their subdivision codes."""
    return {
        country: tuple(subdivisions) for country, subdivisions in holidays.list_supported_countries().items()
    }


def check_country(value: str) -> str:
    """An ISO 3166-1 alpha-2 code the `holidays` package knows (public holidays come from there)."""
    code = value.strip().upper()
    if len(code) != 2 or not code.isalpha():
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code such as 'DE'")
    if code not in supported_subdivisions():
        raise ValueError(f"no public holidays are known for country {code!r}")
    return code


def check_subdivision(country: str | None, value: str) -> str:
    """A subdivision of `country` as the `holidays` package spells it (e.g. `BE` for Berlin)."""
    if country is None:
        raise ValueError("a subdivision needs a country")
    known = supported_subdivisions().get(country, ())
    by_upper = {code.upper(): code for code in known}
    code = by_upper.get(value.strip().upper())
    if code is None:
        listed = ", ".join(known) if known else "none"
        raise ValueError(f"unknown subdivision {value!r} of {country} (known: {listed})")
    return code


# The schema lists the names and codes the API knows, so a client (and a test generator) sees the choice.
TimeZoneName = Annotated[
    str,
    Field(max_length=64),
    AfterValidator(check_time_zone),
    Documented({"enum": sorted(_zones()), "description": "an IANA time zone name, e.g. Europe/Berlin"}),
]
CountryCode = Annotated[
    str,
    Field(max_length=8),
    AfterValidator(check_country),
    Documented(
        {
            "enum": sorted(c for c in supported_subdivisions() if len(c) == 2),
            "description": "ISO 3166-1 alpha-2",
        }
    ),
]


# --- weekly hours ------------------------------------------------------------------------------------


def _minutes(text: str) -> int:
    if text == END_OF_DAY:
        return 24 * 60
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _interval(day: str, raw: Any) -> tuple[str, str]:
    if not isinstance(raw, list | tuple) or len(raw) != 2 or not all(isinstance(v, str) for v in raw):
        raise ValueError(f'{day}: each interval is a pair of "HH:MM" times, e.g. ["09:00", "17:00"]')
    opens, closes = (v.strip() for v in raw)
    if not _HHMM.match(opens):
        raise ValueError(f'{day}: {opens!r} is not a time of day as "HH:MM"')
    if closes in ("24:00", "00:00"):
        closes = END_OF_DAY  # closing at midnight: the end of this day
    elif not _HHMM.match(closes):
        raise ValueError(f'{day}: {closes!r} is not a time of day as "HH:MM"')
    if _minutes(opens) >= _minutes(closes):
        raise ValueError(f"{day}: {opens}–{closes} must open before it closes")
    return opens, closes


_HHMM_PATTERN = "^(?:[01][0-9]|2[0-3]):[0-5][0-9]$"
# One interval of a day: ["HH:MM", "HH:MM"], closing at 24:00 (or 00:00) for midnight.
INTERVAL_SCHEMA: dict[str, Any] = {
    "type": "array",
    "prefixItems": [
        {"type": "string", "pattern": _HHMM_PATTERN},
        {"type": "string", "pattern": "^(?:(?:[01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"},
    ],
    "minItems": 2,
    "maxItems": 2,
}


def _day() -> Any:
    return Field(
        default_factory=list,
        max_length=MAX_INTERVALS_PER_DAY,
        json_schema_extra={"items": cast(JsonDict, INTERVAL_SCHEMA)},
    )


class WeeklyHoursIn(BaseModel):
    """Intervals per weekday (`mon` … `sun`) as `["HH:MM", "HH:MM"]` local wall-clock times; a day left
    out or empty is closed, `24:00` (or `00:00` as a closing time) is midnight at the end of the day.
    Intervals of a day must not overlap; they are stored sorted."""

    model_config = ConfigDict(extra="forbid")

    mon: list[Any] = _day()
    tue: list[Any] = _day()
    wed: list[Any] = _day()
    thu: list[Any] = _day()
    fri: list[Any] = _day()
    sat: list[Any] = _day()
    sun: list[Any] = _day()

    @field_validator(*WEEKDAYS)
    @classmethod
    def _ordered_and_disjoint(cls, value: list[Any], info: ValidationInfo) -> list[Any]:
        day = str(info.field_name)
        intervals = sorted((_interval(day, raw) for raw in value), key=lambda i: _minutes(i[0]))
        for before, after in pairwise(intervals):
            if _minutes(after[0]) < _minutes(before[1]):
                raise ValueError(f"{day}: {before[0]}–{before[1]} and {after[0]}–{after[1]} overlap")
        return [list(interval) for interval in intervals]

    def stored(self) -> dict[str, list[list[str]]]:
        """The JSON stored in the database: only the days with hours."""
        return {day: getattr(self, day) for day in WEEKDAYS if getattr(self, day)}


# --- closures ------------------------------------------------------------------------------------


class ClosureIn(BaseModel):
    """Days a branch is closed on its own account, both ends included."""

    model_config = ConfigDict(extra="forbid")

    start: date
    end: date
    reason: SingleLine | None = Field(default=None, max_length=200)

    @field_validator("end")
    @classmethod
    def _not_before_start(cls, value: date, info: ValidationInfo) -> date:
        start = info.data.get("start")
        if start is not None and value < start:
            raise ValueError(f"the closure ends ({value}) before it starts ({start})")
        return value

    @field_validator("reason")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if any(ord(char) < 32 for char in value):
            raise ValueError("must be one line without control characters")
        return value.strip() or None


def stored_closures(closures: list[ClosureIn]) -> list[dict[str, Any]]:
    """The JSON stored in the database, sorted by start."""
    return [
        closure.model_dump(mode="json", exclude_none=True)
        for closure in sorted(closures, key=lambda c: (c.start, c.end))
    ]


ClosureList = Annotated[list[ClosureIn], Field(max_length=MAX_CLOSURES)]


def check_pair(start: object, end: object, what: str) -> str | None:
    """Two columns that are set together or not at all (quiet hours, dial windows); the problem or None."""
    if (start is None) != (end is None):
        return f"give both {what}_start and {what}_end, or neither"
    return None
