"""The calendars the callback engine reads from the directory (DESIGN §8): a branch's opening hours,
closures, holiday region and allowed dial hours (its own, else its company's), and its staff's working
hours and absences. A new callback reads them with the rest of its preparation, in one statement
(store/callback_preparation.py); this module makes them into calendars and reads a branch's alone.

Directory data is validated when it is written; a row that still does not parse (written before the
directory validated it, or by hand) is read as "not given" and logged, rather than failing a workflow's
activity over and over.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from models.calendars import Absence, AbsenceKind, BusinessCalendarSpec, Closure, WeeklyHours

log = logging.getLogger(__name__)
UTC_ZONE = "UTC"
_KINDS = frozenset(kind.value for kind in AbsenceKind)


@dataclass(frozen=True)
class BranchCalendar:
    """A branch's calendar as stored (`spec.weekly_hours` empty: no hours given, always open) and the
    allowed dial hours of the branch, else of its company (None: the engine's default)."""

    spec: BusinessCalendarSpec
    dial_hours: tuple[time, time] | None

    @property
    def business_hours(self) -> BusinessCalendarSpec | None:
        """The calendar a business-hours SLA counts in; None for a branch that is always open."""
        return None if self.spec.weekly_hours.is_empty else self.spec


def _parsed(what: str, owner: object, parse: Any, value: Any, fallback: Any) -> Any:
    try:
        return parse(value)
    except (ValidationError, ValueError, TypeError) as exc:
        log.warning("%s of %s is not valid, read as not given: %s", what, owner, exc)
        return fallback


def _spec(row: Mapping[Any, Any]) -> BusinessCalendarSpec:
    branch = f"branch {row['id']}"
    hours = _parsed("opening hours", branch, WeeklyHours.model_validate, row["opening_hours"] or {}, None)
    closures = _parsed(
        "closures", branch, lambda v: tuple(Closure.model_validate(c) for c in v), row["closures"] or [], ()
    )
    zone = row["time_zone"] or UTC_ZONE
    base = {"time_zone": zone, "weekly_hours": hours or WeeklyHours(), "closures": closures}
    region = {"country": row["country"], "subdivision": row["subdivision"]} if row["country"] else {}
    spec = _parsed("holiday region", branch, BusinessCalendarSpec.model_validate, {**base, **region}, None)
    if spec is None:
        spec = _parsed("time zone", branch, BusinessCalendarSpec.model_validate, base, None)
    if spec is None:
        spec = BusinessCalendarSpec.model_validate({**base, "time_zone": UTC_ZONE})
    assert isinstance(spec, BusinessCalendarSpec)
    return spec


def _pair(start: time | None, end: time | None) -> tuple[time, time] | None:
    return (start, end) if start is not None and end is not None else None


# A branch's calendar columns and its company's dial hours, shared with the callback's preparation
# (store/callback_preparation.py); the caller adds which branches.
BRANCH_CALENDAR_ROWS = """SELECT b.id, b.time_zone, b.opening_hours, b.closures, b.country, b.subdivision,
           b.dial_window_start, b.dial_window_end,
           o.dial_window_start AS company_dial_start, o.dial_window_end AS company_dial_end
      FROM branches AS b JOIN companies AS o ON o.id = b.company_id"""
_BRANCH_CALENDARS = text(f"{BRANCH_CALENDAR_ROWS}\n     WHERE b.id = ANY(:ids)")


def branch_calendar(row: Mapping[Any, Any]) -> BranchCalendar:
    """A branch's calendar from a row of `BRANCH_CALENDAR_ROWS`."""
    return BranchCalendar(
        spec=_spec(row),
        dial_hours=_pair(row["dial_window_start"], row["dial_window_end"])
        or _pair(row["company_dial_start"], row["company_dial_end"]),
    )


async def branch_calendars(session: AsyncSession, branch_ids: Sequence[int]) -> dict[int, BranchCalendar]:
    """The calendars of the given branches (one query; unknown ids are left out)."""
    if not branch_ids:
        return {}
    rows = await session.execute(_BRANCH_CALENDARS, {"ids": list(set(branch_ids))})
    return {row.id: branch_calendar(row._mapping) for row in rows.all()}


@dataclass(frozen=True)
class StaffSchedule:
    branch_id: int | None
    working_hours: WeeklyHours | None
    absences: tuple[Absence, ...]


def staff_schedule(
    staff_id: uuid.UUID,
    branch_id: int | None,
    working_hours: Any,
    absences: Iterable[tuple[datetime, datetime, str]],
) -> StaffSchedule:
    """A staff member's schedule from their row: `working_hours` as stored, `absences` (start, end, kind)
    earliest first."""
    return StaffSchedule(
        branch_id=branch_id,
        working_hours=None
        if working_hours is None
        else _parsed("working hours", f"staff {staff_id}", WeeklyHours.model_validate, working_hours, None),
        absences=tuple(
            Absence(start=start, end=end, kind=kind if kind in _KINDS else AbsenceKind.OTHER)
            for start, end, kind in absences
        ),
    )
