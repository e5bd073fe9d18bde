"""A directory for the preparation tests (tests/test_callback_preparation.py): a tenant with calendars,
staff with hours, absences and load, another company to point at, and what its staff look like at AT."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, time, timedelta
from typing import Any

from sqlalchemy import event, update
from sqlalchemy.ext.asyncio import AsyncEngine

from activities.callbacks import CallbackActivities
from models.calendars import BusinessCalendarSpec, Closure, WeeklyHours
from models.callbacks import NewCallback, StaffCandidate
from models.tables import Branch, CallbackRequest, Company, Customer, Service, Staff
from rules.sla import with_holidays_written_out
from store.db import transaction
from store.policies import PolicyResolver
from tests.calendar_fixtures import (
    MON_FRI_9_17,
    Sessions,
    add_absence,
    at,
    set_branch_calendar,
    set_working_hours,
)
from tests.factories import Tenant, add_open_callbacks, add_staff, make_tenant, set_callback_policy

MONDAY = date(2026, 3, 9)  # a quiet week in Berlin; the Sunday before is a Berlin holiday (8 March)
AT = at(MONDAY, 10, 0)
CLOSED_TUESDAY = {"start": "2026-03-10", "end": "2026-03-10", "reason": "inventory"}
NOON_TO_EIGHT = {day: [["12:00", "20:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
AFTERNOONS = {"mon": [["13:00", "17:00"]], "tue": [["13:00", "17:00"]]}
TUESDAYS = {"tue": [["09:00", "17:00"]]}
PREFERRED_WINDOW = {"start": "2026-03-09T14:00:00+01:00", "end": "2026-03-09T16:00:00+01:00"}


@dataclass
class Directory:
    tenant: Tenant
    other: Tenant  # another company: its rows are never this one's
    plain: uuid.UUID
    afternoons: uuid.UUID
    away: uuid.UUID
    inactive: uuid.UUID
    busy: uuid.UUID
    garbled: uuid.UUID
    hamburg: uuid.UUID  # on the other branch, named as the preferred staff
    hamburg_unnamed: uuid.UUID
    no_branch: uuid.UUID
    stranger: uuid.UUID  # staff of the other company


async def _set(sessions: Sessions, table: Any, row_id: object, **values: Any) -> None:
    async with transaction(sessions) as session:
        await session.execute(update(table).where(table.id == row_id).values(**values))


async def _callback(
    sessions: Sessions, tenant: Tenant, staff_id: uuid.UUID, status: str, **extra: Any
) -> None:
    async with transaction(sessions) as session:
        session.add(
            CallbackRequest(
                id=uuid.uuid4(),
                company_id=tenant.company_id,
                branch_id=tenant.branch_ids[0],
                phone_number="+4930123456",
                customer_name="Done",
                priority="normal",
                status=status,
                assigned_to=staff_id,
                expires_at=AT + timedelta(hours=24),
                **extra,
            )
        )


async def make_directory(sessions: Sessions) -> Directory:
    tenant = await make_tenant(sessions)
    other = await make_tenant(sessions, name="Andere Praxis")
    berlin, hamburg = tenant.branch_ids
    await set_branch_calendar(sessions, berlin)
    await _set(sessions, Branch, berlin, closures=[CLOSED_TUESDAY])
    await set_branch_calendar(sessions, hamburg, hours=NOON_TO_EIGHT, subdivision="HH")
    await _set(sessions, Branch, hamburg, dial_window_start=time(10), dial_window_end=time(18))
    await _set(sessions, Company, tenant.company_id, dial_window_start=time(9), dial_window_end=time(19))
    await _set(sessions, Service, tenant.service_ids[0], calcom_event_type_id=4711)
    await _set(sessions, Customer, tenant.customer_ids[0], time_zone="Europe/Lisbon")
    await set_callback_policy(sessions, tenant, {"sla_clock": "business_hours"})

    plain = await add_staff(sessions, tenant)
    afternoons = await add_staff(sessions, tenant, services=(0,))
    await set_working_hours(sessions, afternoons, AFTERNOONS)
    away = await add_staff(sessions, tenant, services=(1,))
    last_week = MONDAY - timedelta(days=7)
    await add_absence(
        sessions, tenant, away, at(last_week, 8), at(last_week + timedelta(days=4), 18), "vacation"
    )
    await add_absence(sessions, tenant, away, at(MONDAY, 8), at(MONDAY, 12), "sick")
    await add_absence(
        sessions,
        tenant,
        away,
        at(MONDAY, 0) + timedelta(days=2),
        at(MONDAY, 0) + timedelta(days=4),
        "vacation",
    )
    inactive = await add_staff(sessions, tenant, active=False)
    busy = await add_staff(sessions, tenant, max_open_callbacks=2)
    await add_open_callbacks(sessions, tenant, busy, 2)
    await _callback(sessions, tenant, busy, "completed", completed_at=AT - timedelta(hours=1))
    await _callback(sessions, tenant, busy, "contacted", deleted_at=AT - timedelta(hours=1))
    garbled = await add_staff(sessions, tenant)  # hours that do not parse: read as none (the branch's)
    await set_working_hours(sessions, garbled, {"mon": [["17:00", "09:00"]]})
    hamburg_staff = await add_staff(sessions, tenant, branch=1)
    hamburg_unnamed = await add_staff(sessions, tenant, branch=1)
    no_branch = await add_staff(sessions, tenant)
    await _set(sessions, Staff, no_branch, branch_id=None, working_hours=TUESDAYS)
    stranger = await add_staff(sessions, other)
    return Directory(
        tenant,
        other,
        plain,
        afternoons,
        away,
        inactive,
        busy,
        garbled,
        hamburg_staff,
        hamburg_unnamed,
        no_branch,
        stranger,
    )


@contextmanager
def counting(*engines: AsyncEngine) -> Iterator[list[str]]:
    """The SQL statements sent through `engines` while the block runs."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    for engine in engines:
        event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        for engine in engines:
            event.remove(engine.sync_engine, "before_cursor_execute", record)


@dataclass
class Prepare:
    activities: CallbackActivities
    resolver: PolicyResolver
    engines: tuple[AsyncEngine, AsyncEngine]


def request(tenant: Tenant, **overrides: Any) -> NewCallback:
    values: dict[str, Any] = {
        "company_id": tenant.company_id,
        "branch_id": tenant.branch_ids[0],
        "service_id": tenant.service_ids[0],
        "customer_id": tenant.customer_ids[0],
        "customer_name": "Erika Mustermann",
        "phone_number": "+49 30 1234567",
        "preferred_time_window": PREFERRED_WINDOW,
    }
    return NewCallback(**{**values, **overrides})


def candidate(staff_id: uuid.UUID, branch_id: int | None, **values: Any) -> StaffCandidate:
    return StaffCandidate(id=staff_id, branch_id=branch_id, **values)


def by_id(candidates: list[StaffCandidate]) -> dict[uuid.UUID, StaffCandidate]:
    found = {c.id: c for c in candidates}
    assert len(found) == len(candidates), "a candidate listed twice"
    return found


def branch_staff(d: Directory) -> dict[uuid.UUID, StaffCandidate]:
    """The Berlin branch's staff at AT (Monday 10:00): who works, who is away and until when, how busy."""
    berlin = d.tenant.branch_ids[0]
    return {
        d.plain: candidate(d.plain, berlin),
        d.afternoons: candidate(
            d.afternoons, berlin, linked_to_service=True, on_shift=False, next_on_shift_at=at(MONDAY, 13)
        ),
        d.away: candidate(
            d.away,
            berlin,
            on_shift=False,
            absent=True,
            next_on_shift_at=at(MONDAY, 12),
            away_from=at(MONDAY, 0) + timedelta(days=2),
        ),
        d.inactive: candidate(d.inactive, berlin, active=False),
        d.busy: candidate(d.busy, berlin, open_callbacks=2, max_open_callbacks=2),
        d.garbled: candidate(d.garbled, berlin),
    }


def berlin_calendar() -> BusinessCalendarSpec:
    stored = BusinessCalendarSpec(
        time_zone="Europe/Berlin",
        weekly_hours=WeeklyHours.model_validate(MON_FRI_9_17),
        closures=(Closure.model_validate(CLOSED_TUESDAY),),
        country="DE",
        subdivision="BE",
    )
    return with_holidays_written_out(stored, date(2026, 3, 8))
