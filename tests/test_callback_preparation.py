"""The callback's preparation (activities/callbacks.py `prepare_callback`, `load_staff_candidates`) against
PostgreSQL: references, the staff candidates with their load and shift, the branch calendars and the
customer's dial window, all read in ONE statement (store/callback_preparation.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy.engine import URL
from temporalio.exceptions import ApplicationError

from activities.callbacks import INVALID_REFERENCE, CallbackActivities
from activities.preparation import CallbackPreparer, InvalidReferences
from config import Settings
from models.calendars import Absence, AbsenceKind, Closure, WeeklyHours
from models.callbacks import LoadCandidates, PrepareCallback, PreparedCallback, SlaClock
from models.dial_window import DialWindow, ZoneSource
from store.calendars import StaffSchedule
from store.callback_preparation import read_preparation
from store.db import create_statement_engine
from store.policies import PolicyCache, PolicyResolver
from tests.calendar_fixtures import Sessions, at
from tests.preparation_fixtures import (
    AFTERNOONS,
    AT,
    MONDAY,
    NOON_TO_EIGHT,
    Prepare,
    berlin_calendar,
    branch_staff,
    by_id,
    candidate,
    counting,
    make_directory,
    request,
)


@pytest.fixture
async def prepare(sessions: Sessions, database_url: URL) -> AsyncIterator[Prepare]:
    """The activities as the worker builds them: reads on the autocommit statements engine, policies from
    the listening cache."""
    statements = create_statement_engine(database_url, pool_size=2)
    resolver = PolicyResolver(sessions, PolicyCache())
    await resolver.listen(database_url)
    settings = Settings()
    activities = CallbackActivities(
        sessions,
        settings.callback_defaults(),
        resolver,
        dial_hours=(settings.dial_window_start, settings.dial_window_end),
        statements=statements,
    )
    try:
        yield Prepare(activities, resolver, (statements, sessions.kw["bind"]))
    finally:
        await resolver.close()
        await statements.dispose()


async def test_a_new_callback_is_prepared_from_one_statement(sessions: Sessions, prepare: Prepare) -> None:
    d = await make_directory(sessions)
    command = PrepareCallback(
        callback_id=uuid.uuid4(), request=request(d.tenant, preferred_staff_id=d.hamburg), at=AT
    )
    await prepare.resolver.warm_cache(d.tenant.company_id)

    with counting(*prepare.engines) as statements:
        prepared = await prepare.activities.prepare_callback(command)

    assert len(statements) == 1, statements
    expected = {
        **branch_staff(d),
        # The preferred staff member works on the other branch, on its calendar (from noon).
        d.hamburg: candidate(
            d.hamburg, d.tenant.branch_ids[1], on_shift=False, next_on_shift_at=at(MONDAY, 12)
        ),
    }
    assert by_id(prepared.candidates) == expected
    assert prepared.bookable is True
    assert prepared.settings.sla_clock == SlaClock.BUSINESS_HOURS
    calendar = berlin_calendar()
    assert prepared.calendar == calendar
    assert Closure(start=date(2026, 3, 8), end=date(2026, 3, 8)) in calendar.closures  # Women's Day
    assert Closure(start=date(2026, 4, 3), end=date(2026, 4, 3)) in calendar.closures  # Good Friday
    # The customer's own zone; the company's hours (the branch has none of its own); their window.
    assert prepared.dial_window == DialWindow(
        time_zone="Europe/Lisbon",
        zone_source=ZoneSource.CUSTOMER,
        start=time(9),
        end=time(19),
        not_before=datetime(2026, 3, 9, 13, tzinfo=UTC),
        not_after=datetime(2026, 3, 9, 15, tzinfo=UTC),
    )
    # What the workflow records is what it would have recorded before: times in UTC as the driver gives them.
    assert PreparedCallback.model_validate_json(prepared.model_dump_json()) == prepared
    away = by_id(prepared.candidates)[d.away].away_from
    assert away is not None
    assert away.utcoffset() == timedelta(0)


async def test_without_service_customer_or_preferred_staff(sessions: Sessions, prepare: Prepare) -> None:
    d = await make_directory(sessions)
    bare = request(d.tenant, service_id=None, customer_id=None, preferred_time_window=None)
    prepared = await prepare.activities.prepare_callback(
        PrepareCallback(callback_id=uuid.uuid4(), request=bare, at=AT)
    )

    unlinked = {
        staff_id: c.model_copy(update={"linked_to_service": False}) for staff_id, c in branch_staff(d).items()
    }
    assert by_id(prepared.candidates) == unlinked
    assert prepared.bookable is False
    # The zone of the phone number's region (Berlin's, which is the branch's too).
    assert prepared.dial_window == DialWindow(
        time_zone="Europe/Berlin", zone_source=ZoneSource.PHONE, start=time(9), end=time(19)
    )
    # A service without a Cal.com event type is not bookable.
    other_service = request(d.tenant, service_id=d.tenant.service_ids[1])
    prepared = await prepare.activities.prepare_callback(
        PrepareCallback(callback_id=uuid.uuid4(), request=other_service, at=AT)
    )
    assert prepared.bookable is False
    assert {c.id for c in prepared.candidates if c.linked_to_service} == {d.away}


async def test_the_other_branch_has_its_own_calendar_and_dial_hours(
    sessions: Sessions, prepare: Prepare
) -> None:
    d = await make_directory(sessions)
    hamburg = d.tenant.branch_ids[1]
    prepared = await prepare.activities.prepare_callback(
        PrepareCallback(
            callback_id=uuid.uuid4(),
            request=request(d.tenant, branch_id=hamburg, customer_id=None, preferred_time_window=None),
            at=AT,
        )
    )
    assert by_id(prepared.candidates) == {
        d.hamburg: candidate(d.hamburg, hamburg, on_shift=False, next_on_shift_at=at(MONDAY, 12)),
        d.hamburg_unnamed: candidate(
            d.hamburg_unnamed, hamburg, on_shift=False, next_on_shift_at=at(MONDAY, 12)
        ),
    }
    assert prepared.calendar is not None
    assert prepared.calendar.weekly_hours == WeeklyHours.model_validate(NOON_TO_EIGHT)
    assert prepared.calendar.subdivision == "HH"
    assert Closure(start=date(2026, 3, 8), end=date(2026, 3, 8)) not in prepared.calendar.closures
    assert prepared.dial_window is not None
    assert (prepared.dial_window.start, prepared.dial_window.end) == (time(10), time(18))


@pytest.mark.parametrize("field", ["branch_id", "service_id", "customer_id", "preferred_staff_id"])
async def test_a_reference_to_another_company_is_refused(
    sessions: Sessions, prepare: Prepare, field: str
) -> None:
    d = await make_directory(sessions)
    foreign = {
        "branch_id": d.other.branch_ids[0],
        "service_id": d.other.service_ids[0],
        "customer_id": d.other.customer_ids[0],
        "preferred_staff_id": d.stranger,
    }
    thing = {"branch_id": "branch", "service_id": "service", "customer_id": "customer"}.get(
        field, "preferred staff"
    )
    command = PrepareCallback(
        callback_id=uuid.uuid4(), request=request(d.tenant, **{field: foreign[field]}), at=AT
    )
    with pytest.raises(ApplicationError) as refused:
        await prepare.activities.prepare_callback(command)
    message = f"{field}: no such {thing} in company {d.tenant.company_id}"
    assert (refused.value.type, refused.value.non_retryable) == (INVALID_REFERENCE, True)
    assert refused.value.details == ([message],)
    assert refused.value.message == message


async def test_every_bad_reference_is_named_at_once(sessions: Sessions, prepare: Prepare) -> None:
    d = await make_directory(sessions)
    missing = request(
        d.tenant,
        branch_id=10**12,
        service_id=10**12,
        customer_id=d.other.customer_ids[0],
        preferred_staff_id=uuid.uuid4(),
    )
    with pytest.raises(ApplicationError) as refused:
        await prepare.activities.prepare_callback(
            PrepareCallback(callback_id=uuid.uuid4(), request=missing, at=AT)
        )
    company = d.tenant.company_id
    assert refused.value.details == (
        [
            f"branch_id: no such branch in company {company}",
            f"service_id: no such service in company {company}",
            f"customer_id: no such customer in company {company}",
            f"preferred_staff_id: no such preferred staff in company {company}",
        ],
    )


async def test_staff_candidates_are_loaded_in_one_statement(sessions: Sessions, prepare: Prepare) -> None:
    d = await make_directory(sessions)
    berlin = d.tenant.branch_ids[0]
    query = LoadCandidates(
        company_id=d.tenant.company_id,
        branch_id=berlin,
        service_id=d.tenant.service_ids[0],
        include=[d.hamburg, d.no_branch, d.stranger],
        at=AT,
    )
    with counting(*prepare.engines) as statements:
        candidates = await prepare.activities.load_staff_candidates(query)

    assert len(statements) == 1, statements
    assert by_id(candidates) == {
        **branch_staff(d),
        d.hamburg: candidate(
            d.hamburg, d.tenant.branch_ids[1], on_shift=False, next_on_shift_at=at(MONDAY, 12)
        ),
        # Of no branch: counted in the callback's branch's calendar, whose Tuesday is closed.
        d.no_branch: candidate(
            d.no_branch, None, on_shift=False, next_on_shift_at=at(MONDAY, 9) + timedelta(days=8)
        ),
    }
    # Without anyone named, and without a service.
    plain = await prepare.activities.load_staff_candidates(
        LoadCandidates(company_id=d.tenant.company_id, branch_id=berlin, service_id=None, at=AT)
    )
    assert {c.id for c in plain} == set(branch_staff(d))
    assert not any(c.linked_to_service for c in plain)


async def test_an_absence_not_yet_begun_is_the_next_time_away(sessions: Sessions, prepare: Prepare) -> None:
    d = await make_directory(sessions)
    before = at(MONDAY, 7)
    query = LoadCandidates(
        company_id=d.tenant.company_id, branch_id=d.tenant.branch_ids[0], service_id=None, at=before
    )
    away = by_id(await prepare.activities.load_staff_candidates(query))[d.away]
    # Monday 07:00, before the branch opens: the sick leave from 08:00 is the next time away.
    assert (away.on_shift, away.absent, away.away_from) == (False, False, at(MONDAY, 8))
    assert away.next_on_shift_at == at(MONDAY, 12)


async def test_the_statement_reads_absences_not_over_hours_as_stored_and_every_branch_needed(
    sessions: Sessions, prepare: Prepare
) -> None:
    d = await make_directory(sessions)
    berlin, hamburg = d.tenant.branch_ids
    async with sessions() as session:
        found = await read_preparation(session, request(d.tenant, preferred_staff_id=d.hamburg), at=AT)

    assert (found.errors, found.bookable, found.customer_time_zone) == ([], True, "Europe/Lisbon")
    schedules = found.staffing.schedules
    assert set(schedules) == {c.id for c in found.staffing.candidates}
    # Last week's vacation is over at AT; today's sick leave and Wednesday's vacation are not.
    assert schedules[d.away].absences == (
        Absence(start=at(MONDAY, 8), end=at(MONDAY, 12), kind=AbsenceKind.SICK),
        Absence(
            start=at(MONDAY, 0) + timedelta(days=2),
            end=at(MONDAY, 0) + timedelta(days=4),
            kind=AbsenceKind.VACATION,
        ),
    )
    assert all(a.start.tzinfo is UTC for a in schedules[d.away].absences)
    assert schedules[d.afternoons].working_hours == WeeklyHours.model_validate(AFTERNOONS)
    assert schedules[d.garbled].working_hours is None
    assert schedules[d.plain] == StaffSchedule(branch_id=berlin, working_hours=None, absences=())
    assert schedules[d.hamburg].branch_id == hamburg
    branches = found.staffing.branches
    assert set(branches) == {berlin, hamburg}
    assert branches[berlin].dial_hours == (time(9), time(19))  # the company's
    assert branches[hamburg].dial_hours == (time(10), time(18))  # its own
    assert branches[hamburg].spec.time_zone == "Europe/Berlin"


async def test_the_apis_preparation_is_the_same_one_statement(sessions: Sessions, prepare: Prepare) -> None:
    """The API prepares before it starts the workflow (api/callback_service.py): the same statement, the
    same result as the workflow's prepare step, and its refusal names the field."""
    d = await make_directory(sessions)
    preparer = CallbackPreparer.from_settings(sessions, prepare.resolver, Settings())
    fine = request(d.tenant, preferred_staff_id=d.hamburg)
    await preparer.prepare(fine, at=AT)  # warms the policy cache
    with counting(*prepare.engines) as statements:
        prepared = await preparer.prepare(fine, at=AT)
        with pytest.raises(InvalidReferences) as refused:
            await preparer.prepare(request(d.tenant, customer_id=d.other.customer_ids[0]), at=AT)
    assert len(statements) == 2, statements
    assert prepared == await prepare.activities.prepare_callback(
        PrepareCallback(callback_id=uuid.uuid4(), request=fine, at=AT)
    )
    assert refused.value.errors == [f"customer_id: no such customer in company {d.tenant.company_id}"]
