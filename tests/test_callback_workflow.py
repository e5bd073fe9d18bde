"""The callback lifecycle on Temporal's time-skipping server against real PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from activities.preparation import CallbackPreparer
from config import Settings
from devstack.calcom_fake import FakeCalcom, serve_fake
from models.callbacks import (
    AttemptOutcome,
    CallbackStatus,
    Cancel,
    ChangePriority,
    Priority,
    RecordAttempt,
)
from models.tables import Service
from starter.client import CallbackError
from store.db import transaction
from store.policies import PolicyResolver
from tests.callback_harness import escalation_rows, event_rows, new_callback, row, running_worker
from tests.factories import add_open_callbacks, add_staff, make_tenant

Sessions = async_sessionmaker[AsyncSession]


def hours_after(start: datetime, moments: list[datetime]) -> list[float]:
    """Offsets in hours, to the second: timers fire a few milliseconds after their deadline."""
    return [round((moment - start).total_seconds() / 3600, 3) for moment in moments]


async def test_create_assigns_and_persists_before_returning(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant, services=(0,))
    async with running_worker(time_skipping_env.client, sessions, task_queue) as client:
        result = await client.create(new_callback(tenant))
        assert result.created
        state = result.state
        assert state.status == CallbackStatus.ASSIGNED
        assert state.assigned_to == staff
        assert state.expires_at - state.created_at == timedelta(hours=24)
        stored = await row(sessions, state.id)
        assert stored.status == "assigned"
        assert stored.assigned_to == staff
        assert stored.phone_number == "+49301234567"
        assert [e.type for e in await event_rows(sessions, state.id)] == [
            "callback.created",
            "callback.assigned",
        ]
        # Nobody has an address or a webhook here: no notification workflow is started for nothing.
        with pytest.raises(RPCError) as missing:
            await time_skipping_env.client.get_workflow_handle(
                f"c{tenant.company_id}.notify-callback-{state.id}-1"
            ).describe()
        assert missing.value.status == RPCStatusCode.NOT_FOUND


async def test_a_callback_its_starter_prepared_decides_without_a_prepare_step(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    """The API prepares a new callback before it starts the workflow (activities/preparation.py): the run
    then writes its first step at once (one local activity instead of two), to the same result."""
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant, services=(0,))
    preparer = CallbackPreparer.from_settings(sessions, PolicyResolver(sessions), Settings())
    async with running_worker(time_skipping_env.client, sessions, task_queue) as client:
        request = new_callback(tenant)
        prepared = await preparer.prepare(request, at=datetime.now(UTC))
        by_starter = (await client.create(request, prepared=prepared)).state
        by_itself = (await client.create(new_callback(tenant))).state
        markers = []
        for state in (by_starter, by_itself):
            history = await client.handle(state.workflow_id).fetch_history()
            markers.append(sum(e.HasField("marker_recorded_event_attributes") for e in history.events))
            assert (state.status, state.assigned_to, state.version) == (CallbackStatus.ASSIGNED, staff, 1)
            assert (await row(sessions, state.id)).assigned_to == staff
        assert markers == [1, 2]  # the write alone; the prepare step and the write


async def test_normal_callback_nobody_completes_escalates_on_the_cooldown_and_expires(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    tenant = await make_tenant(sessions)
    staff = [await add_staff(sessions, tenant) for _ in range(3)]
    async with running_worker(time_skipping_env.client, sessions, task_queue) as client:
        state = (await client.create(new_callback(tenant))).state
        await time_skipping_env.sleep(timedelta(hours=37))
        final = await client.handle(state.workflow_id).result()

    created = final.created_at
    assert final.status == CallbackStatus.EXPIRED
    assert final.expired_at is not None
    assert hours_after(created, [final.expired_at]) == [36]
    escalations = await escalation_rows(sessions, state.id)
    assert hours_after(created, [e.escalated_at for e in escalations]) == [24, 28, 32]
    assert {e.escalation_reason for e in escalations} == {"sla_breach"}
    for escalation in escalations:
        assert escalation.escalated_to is not None
        assert escalation.escalated_to != escalation.escalated_from
        assert escalation.escalated_to in staff
    # The second escalation avoids the first assignee while a fresh colleague is free.
    assert escalations[1].escalated_to not in (state.assigned_to, escalations[0].escalated_to)

    events = await event_rows(sessions, state.id)
    warnings = [e for e in events if e.type == "callback.sla_warning"]
    assert [w.payload["percent"] for w in warnings] == [50, 75]
    assert hours_after(created, [w.occurred_at for w in warnings]) == [12, 18]
    stored = await row(sessions, state.id)
    assert (stored.status, stored.escalation_count, stored.expired_at) == ("expired", 3, final.expired_at)


async def test_urgent_callback_breaches_after_two_hours(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    tenant = await make_tenant(sessions, staff=2)
    async with running_worker(time_skipping_env.client, sessions, task_queue) as client:
        state = (await client.create(new_callback(tenant, priority=Priority.URGENT))).state
        await time_skipping_env.sleep(timedelta(hours=2, minutes=1))
        escalations = await escalation_rows(sessions, state.id)
        assert hours_after(state.created_at, [e.escalated_at for e in escalations]) == [2]
        assert (await row(sessions, state.id)).escalation_count == 1


async def test_raising_priority_moves_the_deadline_retroactively(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    tenant = await make_tenant(sessions, staff=2)
    async with running_worker(time_skipping_env.client, sessions, task_queue) as client:
        state = (await client.create(new_callback(tenant))).state
        await time_skipping_env.sleep(timedelta(hours=1))
        raised = await client.act(state.workflow_id, ChangePriority(priority=Priority.URGENT))
        assert raised.expires_at == state.created_at + timedelta(hours=2)
        assert (await row(sessions, state.id)).expires_at == raised.expires_at
        await time_skipping_env.sleep(timedelta(hours=1, minutes=1))
        escalations = await escalation_rows(sessions, state.id)
        assert hours_after(state.created_at, [e.escalated_at for e in escalations]) == [2]


async def test_three_failed_attempts_escalate(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    tenant = await make_tenant(sessions, staff=2)
    async with running_worker(time_skipping_env.client, sessions, task_queue) as client:
        state = (await client.create(new_callback(tenant))).state
        first_assignee = state.assigned_to
        for outcome in (AttemptOutcome.NO_ANSWER, AttemptOutcome.BUSY):
            after = await client.act(state.workflow_id, RecordAttempt(outcome=outcome))
            assert after.escalation_count == 0
        after = await client.act(state.workflow_id, RecordAttempt(outcome=AttemptOutcome.VOICEMAIL))
        assert after.contact_attempts == 3
        escalations = await escalation_rows(sessions, state.id)
        assert [(e.sequence, e.escalation_reason) for e in escalations] == [(1, "multiple_attempts_failed")]
        assert escalations[0].escalated_from == first_assignee
        assert after.assigned_to == escalations[0].escalated_to != first_assignee
        stored = await row(sessions, state.id)
        assert (stored.contact_attempts, stored.escalation_count) == (3, 1)
        outcomes = [e.payload["outcome"] for e in await event_rows(sessions, state.id) if "attempt" in e.type]
        assert outcomes == ["no_answer", "busy", "voicemail"]


async def test_auto_assignment_order(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    tenant = await make_tenant(sessions)
    idle = await add_staff(sessions, tenant)  # branch staff, no service link, no work
    expert_busy = await add_staff(sessions, tenant, services=(0,))
    expert_less_busy = await add_staff(sessions, tenant, services=(0,))
    expert_tied = await add_staff(sessions, tenant, services=(0,))
    inactive_preferred = await add_staff(sessions, tenant, active=False, services=(0,))
    other_branch = await add_staff(sessions, tenant, branch=1)
    await add_open_callbacks(sessions, tenant, expert_busy, 3)
    await add_open_callbacks(sessions, tenant, expert_less_busy, 1)
    await add_open_callbacks(sessions, tenant, expert_tied, 1)
    async with running_worker(time_skipping_env.client, sessions, task_queue) as client:
        # 1. An active preferred staff member wins, even from another branch and without a service link.
        preferred = await client.create(new_callback(tenant, preferred_staff_id=other_branch))
        assert preferred.state.assigned_to == other_branch
        # 2. An inactive preferred one is skipped: the service expert with the fewest open callbacks,
        #    ties broken by the lowest id.
        skipped = await client.create(new_callback(tenant, preferred_staff_id=inactive_preferred))
        assert skipped.state.assigned_to == min(expert_less_busy, expert_tied) == expert_less_busy
        # 3. Without a service, the least-loaded active staff member of the branch.
        no_service = await client.create(new_callback(tenant, service_id=None))
        assert no_service.state.assigned_to == idle
        assert idle not in (expert_busy, inactive_preferred)


async def test_without_active_staff_the_callback_stays_pending_and_still_escalates_and_expires(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    tenant = await make_tenant(sessions)
    await add_staff(sessions, tenant, active=False)
    async with running_worker(time_skipping_env.client, sessions, task_queue) as client:
        state = (await client.create(new_callback(tenant, priority=Priority.HIGH))).state
        assert (state.status, state.assigned_to) == (CallbackStatus.PENDING, None)
        await time_skipping_env.sleep(timedelta(hours=17))
        final = await client.handle(state.workflow_id).result()
    assert final.status == CallbackStatus.EXPIRED
    escalations = await escalation_rows(sessions, state.id)
    assert hours_after(state.created_at, [e.escalated_at for e in escalations]) == [4, 8, 12]
    assert all(e.escalated_to is None for e in escalations)
    assert final.expired_at is not None
    assert hours_after(state.created_at, [final.expired_at]) == [16]


async def test_same_idempotency_key_returns_the_same_callback_and_starts_one_workflow(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    tenant = await make_tenant(sessions, staff=1)
    async with running_worker(time_skipping_env.client, sessions, task_queue) as client:
        first = await client.create(new_callback(tenant), idempotency_key="call-4711")
        again = await client.create(new_callback(tenant), idempotency_key="call-4711")
        other = await client.create(new_callback(tenant), idempotency_key="call-4712")
        assert (first.created, again.created, other.created) == (True, False, True)
        assert again.state.id == first.state.id != other.state.id
        # One workflow run: the second call attached to the first run instead of starting another.
        description = await client.handle(first.state.workflow_id).describe()
        assert description.run_id == (await client.handle(first.state.workflow_id).describe()).run_id
        history = await client.handle(first.state.workflow_id).fetch_history()
        starts = [e for e in history.events if e.HasField("workflow_execution_started_event_attributes")]
        assert len(starts) == 1
        async with sessions() as session:
            from sqlalchemy import func, select

            from models.tables import CallbackRequest

            assert await session.scalar(select(func.count()).select_from(CallbackRequest)) == 2

        # Once finished, the same key still answers with the same (finished) callback.
        await client.act(first.state.workflow_id, Cancel(reason="customer withdrew"))
        await client.handle(first.state.workflow_id).result()
        after_end = await client.create(new_callback(tenant), idempotency_key="call-4711")
        assert (after_end.created, after_end.state.id, after_end.state.status) == (
            False,
            first.state.id,
            CallbackStatus.CANCELLED,
        )


async def test_a_reference_to_another_companys_branch_is_refused(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    tenant = await make_tenant(sessions, staff=1)
    other = await make_tenant(sessions, name="Other")
    async with running_worker(time_skipping_env.client, sessions, task_queue) as client:
        with pytest.raises(CallbackError) as refused:
            await client.create(new_callback(tenant, branch_id=other.branch_ids[0]))
        assert refused.value.kind == "InvalidCallback"
        assert "branch_id: no such branch" in str(refused.value)
    async with sessions() as session:
        from sqlalchemy import func, select

        from models.tables import CallbackRequest

        assert await session.scalar(select(func.count()).select_from(CallbackRequest)) == 0


async def test_free_slots_in_the_preferred_window_are_attached_after_creation(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    tenant = await make_tenant(sessions, staff=1)
    async with transaction(sessions) as session:
        await session.execute(
            update(Service).where(Service.id == tenant.service_ids[0]).values(calcom_event_type_id=1001)
        )
    berlin = ZoneInfo("Europe/Berlin")
    day = (datetime.now(berlin) + timedelta(days=7)).date()
    while day.weekday() != 2:  # a Wednesday: the demo event type's working hours are on weekdays
        day += timedelta(days=1)
    start = datetime.combine(day, time(10, 0), berlin)
    window = {"start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat()}
    async with (
        serve_fake(FakeCalcom()) as calcom_url,
        running_worker(
            time_skipping_env.client,
            sessions,
            task_queue,
            calcom_base_url=calcom_url,
            calcom_api_key="cal_test",
        ) as client,
    ):
        created = await client.create(new_callback(tenant, preferred_time_window=window))
        assert created.state.suggested_slots is None  # creation does not wait for Cal.com
        state = created.state
        for _ in range(200):  # bounded: the lookup runs right after creation
            state = await client.state(created.state.workflow_id) or state
            if state.suggested_slots is not None:
                break
            await asyncio.sleep(0.02)
    assert state.suggested_slots, "no slots suggested"
    assert all(start <= slot.start < start + timedelta(hours=2) for slot in state.suggested_slots)
    stored = await row(sessions, state.id)
    assert stored.suggested_slots is not None
    assert stored.suggested_slots == [slot.model_dump(mode="json") for slot in state.suggested_slots]
    assert "callback.slots_suggested" in [e.type for e in await event_rows(sessions, state.id)]
