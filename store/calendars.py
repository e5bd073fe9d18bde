"""The calendars the callback engine reads from the directory (DESIGN §8): a branch's opening hours,
closures and holiday region, its staff's working hours and absences, and what a customer's dial window is
made of (their zone, the company's and the branch's allowed hours).

Directory data is validated when it is written; a row that still does not parse (written before the
directory validated it, or by hand) is read as "not given" and logged, rather than failing a workflow's
activity over and over.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.calendars import Absence, AbsenceKind, BusinessCalendarSpec, Closure, WeeklyHours
from models.tables import Branch, Company, Customer, Staff, StaffAbsence

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


def _spec(row: Any) -> BusinessCalendarSpec:
    hours = _parsed(
        "opening hours", f"branch {row.id}", WeeklyHours.model_validate, row.opening_hours or {}, None
    )
    closures = _parsed(
        "closures",
        f"branch {row.id}",
        lambda v: tuple(Closure.model_validate(c) for c in v),
        row.closures or [],
        (),
    )
    zone = row.time_zone or UTC_ZONE
    base = {"time_zone": zone, "weekly_hours": hours or WeeklyHours(), "closures": closures}
    region = {"country": row.country, "subdivision": row.subdivision} if row.country else {}
    spec = _parsed(
        "holiday region", f"branch {row.id}", BusinessCalendarSpec.model_validate, {**base, **region}, None
    )
    if spec is None:
        spec = _parsed("time zone", f"branch {row.id}", BusinessCalendarSpec.model_validate, base, None)
    if spec is None:
        spec = BusinessCalendarSpec.model_validate({**base, "time_zone": UTC_ZONE})
    assert isinstance(spec, BusinessCalendarSpec)
    return spec


def _pair(start: time | None, end: time | None) -> tuple[time, time] | None:
    return (start, end) if start is not None and end is not None else None


async def branch_calendars(session: AsyncSession, branch_ids: Sequence[int]) -> dict[int, BranchCalendar]:
    """The calendars of the given branches (one query; unknown ids are left out)."""
    if not branch_ids:
        return {}
    rows = await session.execute(
        select(
            Branch.id,
            Branch.time_zone,
            Branch.opening_hours,
            Branch.closures,
            Branch.country,
            Branch.subdivision,
            Branch.dial_window_start,
            Branch.dial_window_end,
            Company.dial_window_start.label("company_dial_start"),
            Company.dial_window_end.label("company_dial_end"),
        )
        .join(Company, Company.id == Branch.company_id)
        .where(Branch.id.in_(list(set(branch_ids))))
    )
    return {
        row.id: BranchCalendar(
            spec=_spec(row),
            dial_hours=_pair(row.dial_window_start, row.dial_window_end)
            or _pair(row.company_dial_start, row.company_dial_end),
        )
        for row in rows.all()
    }


@dataclass(frozen=True)
class StaffSchedule:
    branch_id: int | None
    working_hours: WeeklyHours | None
    absences: tuple[Absence, ...]


async def staff_schedules(
    session: AsyncSession, staff_ids: Sequence[uuid.UUID], *, at: datetime
) -> dict[uuid.UUID, StaffSchedule]:
    """Working hours and the absences not over at `at` (earliest first) of the given staff; two queries."""
    if not staff_ids:
        return {}
    ids = list(set(staff_ids))
    absences: dict[uuid.UUID, list[Absence]] = defaultdict(list)
    rows = await session.execute(
        select(StaffAbsence.staff_id, StaffAbsence.starts_at, StaffAbsence.ends_at, StaffAbsence.kind)
        .where(StaffAbsence.staff_id.in_(ids), StaffAbsence.ends_at > at)
        .order_by(StaffAbsence.staff_id, StaffAbsence.starts_at)
    )
    for row in rows.all():
        kind = row.kind if row.kind in _KINDS else AbsenceKind.OTHER
        absences[row.staff_id].append(Absence(start=row.starts_at, end=row.ends_at, kind=kind))
    staff = await session.execute(
        select(Staff.id, Staff.branch_id, Staff.working_hours).where(Staff.id.in_(ids))
    )
    return {
        row.id: StaffSchedule(
            branch_id=row.branch_id,
            working_hours=None
            if row.working_hours is None
            else _parsed(
                "working hours", f"staff {row.id}", WeeklyHours.model_validate, row.working_hours, None
            ),
            absences=tuple(absences[row.id]),
        )
        for row in staff.all()
    }


async def customer_time_zone(session: AsyncSession, customer_id: int | None, company_id: int) -> str | None:
    """The customer's own zone from the directory (None: not known, or no customer given)."""
    if customer_id is None:
        return None
    zone: str | None = await session.scalar(
        select(Customer.time_zone).where(Customer.id == customer_id, Customer.company_id == company_id)
    )
    return zone
