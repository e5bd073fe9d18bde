"""What a callback is prepared from, read in one round trip (DESIGN §8): whether the request's references
are the company's, its service's Cal.com event type, the staff who could take it (their load, service link,
working hours and absences), the calendars of its branch and of theirs, and the customer's time zone.

The statements are written once, as text, at import: preparing a callback is on every callback's hot path,
and building (and cache-keying) five to seven ORM selects per call cost more than running them. The staff
part is one SQL fragment shared by the preparation and by the staff reload of deadlines and staff actions.
The API runs the preparation itself before it starts a callback's workflow (activities/preparation.py):
its reference check is this statement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any
from uuid import UUID

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from models.callbacks import NewCallback, StaffCandidate
from store.calendars import (
    BRANCH_CALENDAR_ROWS,
    BranchCalendar,
    StaffSchedule,
    branch_calendar,
    staff_schedule,
)
from store.callbacks import OPEN_WORK

Reader = AsyncSession | AsyncConnection

# The request's references that must be rows of its company, in the order their errors are named.
REFERENCES: tuple[tuple[str, str], ...] = (
    ("branch_id", "branches"),
    ("service_id", "services"),
    ("customer_id", "customers"),
    ("preferred_staff_id", "staff"),
)
_REFERENCES_SQL = ",\n".join(
    f"(SELECT r.id FROM {table} AS r WHERE r.id = :{field} AND r.company_id = :company_id) AS {field}"
    for field, table in REFERENCES
)

# The staff of :branch_id and the staff named in :include (of the company), with their open callbacks
# (rows assigned to them in an open state), whether they are linked to :service_id, and their absences
# not over at :at; then the calendars of :branch_id and of the candidates' branches, with the dial hours
# of their company.
_STAFFING_SQL = f"""
candidates AS (
    SELECT s.id, s.branch_id, s.is_active, s.max_open_callbacks, s.working_hours,
           (SELECT count(*) FROM callback_requests AS w
             WHERE w.assigned_to = s.id
               AND w.status IN ({", ".join(f"'{status}'" for status in OPEN_WORK)})
               AND w.deleted_at IS NULL) AS open_callbacks,
           EXISTS (SELECT FROM staff_services AS l
                    WHERE l.staff_id = s.id AND l.service_id = :service_id) AS linked,
           (SELECT json_agg(json_build_object('start', a.starts_at, 'end', a.ends_at, 'kind', a.kind)
                            ORDER BY a.starts_at)
              FROM staff_absences AS a
             WHERE a.staff_id = s.id AND a.ends_at > :at) AS absences
      FROM staff AS s
     WHERE s.company_id = :company_id AND (s.branch_id = :branch_id OR s.id = ANY(:include))
),
calendars AS (
    {BRANCH_CALENDAR_ROWS}
     WHERE b.id = ANY(array_append(ARRAY(SELECT branch_id FROM candidates), CAST(:branch_id AS bigint)))
)"""
_STAFFING_COLUMNS = """
(SELECT json_agg(c) FROM candidates AS c) AS candidates,
(SELECT json_agg(b) FROM calendars AS b) AS calendars"""

PREPARATION = text(
    f"""WITH {_STAFFING_SQL}
SELECT {_REFERENCES_SQL},
(SELECT v.calcom_event_type_id FROM services AS v WHERE v.id = :service_id) AS event_type,
(SELECT u.time_zone FROM customers AS u
  WHERE u.id = :customer_id AND u.company_id = :company_id) AS customer_time_zone,
{_STAFFING_COLUMNS}"""
)
STAFFING = text(f"WITH {_STAFFING_SQL}\nSELECT {_STAFFING_COLUMNS}")


@dataclass(frozen=True)
class Staffing:
    """The candidates as stored (their shift not yet computed), each one's schedule, and the calendars
    of the callback's branch and of the candidates' branches."""

    candidates: list[StaffCandidate]
    schedules: dict[UUID, StaffSchedule]
    branches: dict[int, BranchCalendar]


@dataclass(frozen=True)
class Preparation:
    """`errors`: what in the request is not the company's (empty when all is well); `bookable`: its
    service has a Cal.com event type; `customer_time_zone`: the customer's own zone, if the directory
    knows one."""

    errors: list[str]
    bookable: bool
    customer_time_zone: str | None
    staffing: Staffing


def _references(request: NewCallback) -> dict[str, Any]:
    return {
        "company_id": request.company_id,
        "branch_id": request.branch_id,
        "service_id": request.service_id,
        "customer_id": request.customer_id,
        "preferred_staff_id": request.preferred_staff_id,
    }


def _errors(found: Row[Any], request: NewCallback) -> list[str]:
    return [
        f"{field}: no such {field.removesuffix('_id').replace('_', ' ')} in company {request.company_id}"
        for field, _ in REFERENCES
        if getattr(request, field) is not None and getattr(found, field) is None
    ]


async def read_preparation(reader: Reader, request: NewCallback, *, at: datetime) -> Preparation:
    """Everything a new callback is prepared from; its candidates are the branch's staff and the
    preferred staff member."""
    params = {
        **_references(request),
        "include": [request.preferred_staff_id] if request.preferred_staff_id else [],
        "at": at,
    }
    found = (await reader.execute(PREPARATION, params)).one()
    return Preparation(
        errors=_errors(found, request),
        bookable=request.service_id is not None and found.event_type is not None,
        customer_time_zone=found.customer_time_zone,
        staffing=_staffing(found),
    )


async def read_staffing(
    reader: Reader,
    *,
    company_id: int,
    branch_id: int,
    service_id: int | None,
    include: Sequence[UUID] = (),
    at: datetime,
) -> Staffing:
    """The staff of the branch and any explicitly named staff of the company, with their schedules."""
    params = {
        "company_id": company_id,
        "branch_id": branch_id,
        "service_id": service_id,
        "include": list(include),
        "at": at,
    }
    return _staffing((await reader.execute(STAFFING, params)).one())


def _staffing(found: Row[Any]) -> Staffing:
    candidates: list[StaffCandidate] = []
    schedules: dict[UUID, StaffSchedule] = {}
    for staff in found.candidates or ():
        staff_id = UUID(staff["id"])
        candidates.append(
            StaffCandidate(
                id=staff_id,
                branch_id=staff["branch_id"],
                active=staff["is_active"],
                max_open_callbacks=staff["max_open_callbacks"],
                open_callbacks=staff["open_callbacks"],
                linked_to_service=staff["linked"],
            )
        )
        schedules[staff_id] = staff_schedule(
            staff_id,
            staff["branch_id"],
            staff["working_hours"],
            ((_instant(a["start"]), _instant(a["end"]), a["kind"]) for a in staff["absences"] or ()),
        )
    branches = {row["id"]: branch_calendar(_with_times(row)) for row in found.calendars or ()}
    return Staffing(candidates, schedules, branches)


def _instant(value: str) -> datetime:
    """A timestamp as JSON gives it (in the session's zone), in UTC as the driver gives columns."""
    return datetime.fromisoformat(value).astimezone(UTC)


_TIMES = ("dial_window_start", "dial_window_end", "company_dial_start", "company_dial_end")


def _with_times(row: Mapping[str, Any]) -> dict[str, Any]:
    """A branch's calendar row as JSON gives it, with its times of day as `time`s again."""
    return {
        **row,
        **{key: time.fromisoformat(row[key]) if row[key] is not None else None for key in _TIMES},
    }
