"""Staff on shift (issue 15): auto-assignment and escalation pick only staff on shift; with nobody on
shift the callback waits for the next one; an assignee whose absence begins hands the callback on. On
the time-skipping server against PostgreSQL; the clock moves to a quiet Monday in Berlin."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio.testing import WorkflowEnvironment

from models.callbacks import Priority
from tests.calendar_fixtures import (
    Sessions,
    add_absence,
    at,
    close_to,
    quiet_week_friday,
    set_branch_calendar,
    set_working_hours,
    skip_to,
)
from tests.callback_harness import escalation_rows, event_rows, new_callback, running_worker
from tests.factories import add_staff, make_tenant, set_callback_policy

AFTERNOONS = {"mon": [["13:00", "17:00"]], "tue": [["13:00", "17:00"]]}


async def test_the_only_colleague_on_shift_is_on_vacation_so_the_escalation_waits_for_the_next_shift(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    env = time_skipping_env
    tenant = await make_tenant(sessions)
    await set_branch_calendar(sessions, tenant.branch_ids[0])
    await set_callback_policy(sessions, tenant, {"sla_clock": "business_hours"})
    assignee = await add_staff(sessions, tenant)
    on_vacation = await add_staff(sessions, tenant)  # the branch's hours, but away all Monday
    afternoons = await add_staff(sessions, tenant)  # works from 13:00
    await set_working_hours(sessions, afternoons, AFTERNOONS)
    monday = quiet_week_friday(await env.get_current_time()) + timedelta(days=3)
    await add_absence(
        sessions, tenant, on_vacation, at(monday, 0), at(monday + timedelta(days=1), 0), "vacation"
    )
    await skip_to(env, at(monday, 9, 0))
    async with running_worker(env.client, sessions, task_queue) as client:
        state = (
            await client.create(new_callback(tenant, priority=Priority.URGENT, preferred_staff_id=assignee))
        ).state
        assert state.assigned_to == assignee
        assert close_to(state.expires_at, at(monday, 11, 0))

        await skip_to(env, at(monday, 11, 1))
        assert await escalation_rows(sessions, state.id) == []  # nobody else on shift at 11:00
        waiting = await client.state(state.workflow_id)
        assert waiting is not None
        assert waiting.escalation_waits_until == at(monday, 13, 0)

        await skip_to(env, at(monday, 13, 1))
        escalations = await escalation_rows(sessions, state.id)
        events = await event_rows(sessions, state.id)

    assert [(e.escalated_from, e.escalated_to) for e in escalations] == [(assignee, afternoons)]
    assert close_to(escalations[0].escalated_at, at(monday, 13, 0))
    waited = [e for e in events if e.type == "callback.waiting_for_staff"]
    assert [(w.payload["reason"], datetime.fromisoformat(w.payload["until"])) for w in waited] == [
        ("escalation", at(monday, 13, 0))
    ]
    assert close_to(waited[0].occurred_at, at(monday, 11, 0))
    assert str(on_vacation) not in [
        e.payload.get("staff_id") for e in events if e.type == "callback.assigned"
    ]


async def test_an_assignee_whose_absence_begins_hands_the_callback_to_a_colleague_on_shift(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    env = time_skipping_env
    tenant = await make_tenant(sessions)
    await set_branch_calendar(sessions, tenant.branch_ids[0])
    falls_ill, colleague = await add_staff(sessions, tenant), await add_staff(sessions, tenant)
    monday = quiet_week_friday(await env.get_current_time()) + timedelta(days=3)
    await add_absence(sessions, tenant, falls_ill, at(monday, 10, 0), at(monday, 17, 0), "sick")
    await skip_to(env, at(monday, 9, 0))
    async with running_worker(env.client, sessions, task_queue) as client:
        # Calendar mode: shifts apply whatever the SLA clock counts.
        state = (await client.create(new_callback(tenant, preferred_staff_id=falls_ill))).state
        assert (state.assigned_to, state.assignee_away_at) == (falls_ill, at(monday, 10, 0))
        await skip_to(env, at(monday, 10, 1))
        after = await client.state(state.workflow_id)
        events = await event_rows(sessions, state.id)

    assert after is not None
    assert (after.assigned_to, after.previous_assignees, after.escalation_count) == (
        colleague,
        [falls_ill],
        0,
    )
    handed = [e for e in events if e.type in ("callback.handed_over", "callback.assigned")][1:]
    assert [e.type for e in handed] == ["callback.handed_over", "callback.assigned"]
    assert all(close_to(e.occurred_at, at(monday, 10, 0)) for e in handed)
    assert handed[1].payload == {"staff_id": str(colleague), "previous_staff_id": str(falls_ill)}


async def test_nobody_on_shift_at_night_keeps_a_calendar_mode_breach_for_the_morning(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    env = time_skipping_env
    tenant = await make_tenant(sessions)
    await set_branch_calendar(sessions, tenant.branch_ids[0])
    first, second = await add_staff(sessions, tenant), await add_staff(sessions, tenant)
    monday = quiet_week_friday(await env.get_current_time()) + timedelta(days=3)
    await skip_to(env, at(monday, 16, 0))
    async with running_worker(env.client, sessions, task_queue) as client:
        state = (await client.create(new_callback(tenant, priority=Priority.URGENT))).state
        assert state.assigned_to == first
        assert close_to(state.expires_at, at(monday, 18, 0))  # calendar mode: two real hours
        await skip_to(env, at(monday + timedelta(days=1), 9, 1))
        escalations = await escalation_rows(sessions, state.id)
    assert [e.escalated_to for e in escalations] == [second]
    assert close_to(escalations[0].escalated_at, at(monday + timedelta(days=1), 9, 0))
