"""The SLA clock on the branch's hours (issue 15), on Temporal's time-skipping server against PostgreSQL:
business-hours deadlines and warnings, public holidays per country, daylight saving time, and the deadline
shown to ops (SlaDeadline) being the real wall-clock instant. No test waits on the wall clock: each moves
the server's clock to the moment it needs.
"""

from __future__ import annotations

import uuid
from datetime import date, time, timedelta

import holidays
from temporalio.testing import WorkflowEnvironment

from activities.operations import OperationsActivities
from config import Settings
from models import search_attributes
from models.callbacks import ChangePriority, Priority
from models.tables import CallbackRequest
from store.db import transaction
from tests.calendar_fixtures import (
    BERLIN,
    LISBON,
    MON_FRI_9_17,
    Sessions,
    at,
    close_to,
    is_workday,
    last_sunday,
    next_day,
    quiet_week_friday,
    set_branch_calendar,
    skip_to,
)
from tests.callback_harness import escalation_rows, event_rows, new_callback, row, running_worker
from tests.factories import add_staff, make_tenant, set_callback_policy

BUSINESS_HOURS = {"sla_clock": "business_hours"}


async def test_urgent_on_friday_afternoon_breaches_on_monday_morning_with_warnings_in_open_hours(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    env = time_skipping_env
    tenant = await make_tenant(sessions)
    await set_branch_calendar(sessions, tenant.branch_ids[0])
    await set_callback_policy(sessions, tenant, BUSINESS_HOURS)
    first, second = await add_staff(sessions, tenant), await add_staff(sessions, tenant)
    friday = quiet_week_friday(await env.get_current_time())
    monday = friday + timedelta(days=3)
    await skip_to(env, at(friday, 16, 30))
    async with running_worker(env.client, sessions, task_queue) as client:
        state = (await client.create(new_callback(tenant, priority=Priority.URGENT))).state
        assert state.settings.sla_clock.value == "business_hours"
        assert close_to(state.expires_at, at(monday, 10, 30))
        assert state.assigned_to == first  # 16:30 on a Friday: the branch is open, staff on shift
        described = await client.handle(state.workflow_id).describe()
        deadline_attribute = described.typed_search_attributes.get(search_attributes.SLA_DEADLINE)
        assert deadline_attribute is not None
        assert close_to(deadline_attribute, at(monday, 10, 30))
        assert (await row(sessions, state.id)).expires_at == state.expires_at

        await skip_to(env, at(monday, 10, 31))
        escalations = await escalation_rows(sessions, state.id)
        events = await event_rows(sessions, state.id)

    assert [e.escalation_reason for e in escalations] == ["sla_breach"]
    assert close_to(escalations[0].escalated_at, at(monday, 10, 30))
    assert escalations[0].escalated_to == second
    warnings = [e for e in events if e.type == "callback.sla_warning"]
    assert [w.payload["percent"] for w in warnings] == [50, 75]
    assert close_to(warnings[0].occurred_at, at(monday, 9, 30))
    assert close_to(warnings[1].occurred_at, at(monday, 10, 0))
    assert (await row(sessions, state.id)).sla_clock == "business_hours"


async def test_saturday_night_starts_the_clock_at_monday_opening_and_assigns_then(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    env = time_skipping_env
    tenant = await make_tenant(sessions)
    await set_branch_calendar(sessions, tenant.branch_ids[0])
    await set_callback_policy(sessions, tenant, BUSINESS_HOURS)
    first, second = await add_staff(sessions, tenant), await add_staff(sessions, tenant)
    saturday = quiet_week_friday(await env.get_current_time()) + timedelta(days=1)
    monday = saturday + timedelta(days=2)
    await skip_to(env, at(saturday, 23, 0))
    async with running_worker(env.client, sessions, task_queue) as client:
        state = (await client.create(new_callback(tenant, priority=Priority.URGENT))).state
        assert close_to(state.expires_at, at(monday, 11, 0))
        # Nobody is on shift at 23:00 on a Saturday: it waits for Monday's opening, unassigned.
        assert (state.status.value, state.assigned_to) == ("pending", None)
        assert state.assign_at == at(monday, 9)

        await skip_to(env, at(monday, 11, 1))
        escalations = await escalation_rows(sessions, state.id)
        events = await event_rows(sessions, state.id)

    assigned = [e for e in events if e.type == "callback.assigned"]
    assert close_to(assigned[0].occurred_at, at(monday, 9, 0))
    assert assigned[0].payload["staff_id"] == str(first)
    assert len(escalations) == 1
    assert close_to(escalations[0].escalated_at, at(monday, 11, 0))
    assert escalations[0].escalated_to == second
    # No warning at night: 50 % and 75 % of the two open hours are 10:00 and 10:30 on Monday.
    warnings = [e.occurred_at for e in events if e.type == "callback.sla_warning"]
    assert [close_to(w, t) for w, t in zip(warnings, [at(monday, 10), at(monday, 10, 30)], strict=True)] == [
        True,
        True,
    ]


def _unity_day(after_year: int) -> date:
    """The next German Unity Day (3 October) that falls on a weekday."""
    year = after_year
    while date(year, 10, 3).weekday() >= 5:
        year += 1
    return date(year, 10, 3)


async def test_public_holidays_are_skipped_each_branch_by_its_own_country(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    env = time_skipping_env
    tenant = await make_tenant(sessions)
    berlin, lisbon = tenant.branch_ids
    await set_branch_calendar(sessions, berlin)
    await set_branch_calendar(sessions, lisbon, country="PT", subdivision=None, time_zone="Europe/Lisbon")
    await set_callback_policy(sessions, tenant, BUSINESS_HOURS)
    now = await env.get_current_time()
    unity_day = _unity_day(now.year if now.date() < date(now.year, 10, 3) else now.year + 1)
    portuguese_only = next(  # e.g. 5 October, Implantação da República: a holiday in Lisbon, not in Berlin
        day
        for day in sorted(holidays.country_holidays("PT", years=unity_day.year))
        if day > unity_day and day.weekday() < 5 and is_workday(day)
    )

    async with running_worker(env.client, sessions, task_queue) as client:
        await skip_to(env, at(unity_day, 10, 0))  # 09:00 in Lisbon
        in_berlin = (await client.create(new_callback(tenant, priority=Priority.URGENT))).state
        in_lisbon = (
            await client.create(new_callback(tenant, branch_id=lisbon, priority=Priority.URGENT))
        ).state
        # Berlin is closed for the holiday: its clock starts at the next opening.
        after_holiday = next_day(
            at(unity_day, 0) - timedelta(days=1), lambda d: d > unity_day and is_workday(d)
        )
        assert close_to(in_berlin.expires_at, at(after_holiday, 11, 0))
        assert close_to(in_lisbon.expires_at, at(unity_day, 11, 0, LISBON))

        await skip_to(env, at(portuguese_only, 10, 0))
        in_berlin = (await client.create(new_callback(tenant, priority=Priority.URGENT))).state
        in_lisbon = (
            await client.create(new_callback(tenant, branch_id=lisbon, priority=Priority.URGENT))
        ).state
        assert close_to(in_berlin.expires_at, at(portuguese_only, 12, 0))
        assert in_lisbon.expires_at.astimezone(LISBON).date() > portuguese_only
        assert in_lisbon.expires_at.astimezone(LISBON).time().isoformat() == "11:00:00"


async def test_deadlines_across_the_daylight_saving_changes_land_on_the_right_wall_clock(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    env = time_skipping_env
    tenant = await make_tenant(sessions)
    await set_branch_calendar(sessions, tenant.branch_ids[0], hours=MON_FRI_9_17)
    await set_callback_policy(sessions, tenant, BUSINESS_HOURS)
    await add_staff(sessions, tenant)
    await add_staff(sessions, tenant)
    now = await env.get_current_time()
    year = now.year if now.date() < last_sunday(now.year, 3) - timedelta(days=3) else now.year + 1
    while not all(  # not Easter (2027's last Sunday of March is Easter Sunday)
        is_workday(last_sunday(year, month) + timedelta(days=n)) for month in (3, 10) for n in (-2, 1)
    ):
        year += 1
    async with running_worker(env.client, sessions, task_queue) as client:
        # The wall clock shows 66 h from Friday 16:30 to Monday 10:30; really they are 65 h in spring, 67 h
        # in autumn.
        for month, offset_after, real_hours in ((3, timedelta(hours=2), 65), (10, timedelta(hours=1), 67)):
            sunday = last_sunday(year, month)
            friday, monday = sunday - timedelta(days=2), sunday + timedelta(days=1)
            await skip_to(env, at(friday, 16, 30))
            state = (await client.create(new_callback(tenant, priority=Priority.URGENT))).state
            assert close_to(state.expires_at, at(monday, 10, 30))
            assert state.expires_at.astimezone(BERLIN).utcoffset() == offset_after
            assert state.expires_at - state.created_at == timedelta(hours=real_hours)
            await skip_to(env, at(monday, 10, 31))
            escalations = await escalation_rows(sessions, state.id)
            assert len(escalations) == 1
            assert close_to(escalations[0].escalated_at, at(monday, 10, 30))


async def test_a_priority_change_recomputes_on_business_hours_from_creation(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    env = time_skipping_env
    tenant = await make_tenant(sessions)
    await set_branch_calendar(sessions, tenant.branch_ids[0])
    await set_callback_policy(sessions, tenant, BUSINESS_HOURS)
    await add_staff(sessions, tenant)
    friday = quiet_week_friday(await env.get_current_time())
    monday = friday + timedelta(days=3)
    await skip_to(env, at(friday, 16, 0))
    async with running_worker(env.client, sessions, task_queue) as client:
        state = (await client.create(new_callback(tenant))).state
        # 24 open hours from Friday 16:00: 1 on Friday, 8 on Monday, 8 on Tuesday, 7 on Wednesday.
        assert close_to(state.expires_at, at(monday + timedelta(days=2), 16, 0))
        await skip_to(env, at(friday, 18, 0))
        raised = await client.act(state.workflow_id, ChangePriority(priority=Priority.HIGH))
        assert close_to(raised.expires_at, at(monday, 12, 0))  # 4 open hours from Friday 16:00
        events = await event_rows(sessions, state.id)
    changed = [e for e in events if e.type == "callback.priority_changed"]
    assert changed[0].payload["expires_at"] == raised.expires_at.isoformat()


async def test_the_reconciliation_sweep_rebuilds_a_row_on_its_own_clock_with_calendar_and_dial_window(
    sessions: Sessions,
) -> None:
    tenant = await make_tenant(sessions)
    await set_branch_calendar(sessions, tenant.branch_ids[0])
    created = at(date(2027, 12, 20), 10, 0)
    callback_id = uuid.uuid4()
    async with transaction(sessions) as session:
        session.add(
            CallbackRequest(
                id=callback_id,
                company_id=tenant.company_id,
                branch_id=tenant.branch_ids[0],
                phone_number="+4930123456",
                customer_name="Imported Customer",
                priority="urgent",
                status="pending",
                created_at=created,
                expires_at=created + timedelta(hours=2),
                sla_clock="business_hours",  # the policy says calendar now: the row's own clock wins
                dial_time_zone="Europe/Berlin",
                dial_window_start=time(8),
                dial_window_end=time(20),
            )
        )
    operations = OperationsActivities(sessions, Settings().callback_defaults())
    state = await operations.state_from_row(await row(sessions, callback_id))
    assert state.settings.sla_clock.value == "business_hours"
    assert state.dial_window is not None
    assert (state.dial_window.time_zone, state.dial_window.start) == ("Europe/Berlin", time(8))
    assert state.calendar is not None
    assert state.calendar.ignore_public_holidays  # written out, Christmas among them
    assert any(c.start == date(2027, 12, 25) for c in state.calendar.closures)
