"""The appointment policy's jobs on Temporal: the stats refresh workflow, its Temporal Schedule (created
once, updated in place) and the check activity a workflow asks."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy.engine import URL
from temporalio.client import ScheduleOverlapPolicy
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.policies import PolicyActivities
from models.policies import CheckAppointmentChange, StatsRefreshed
from starter.schedules import ensure_stats_schedule
from store.policies import PolicyResolver
from tests.appointment_records import (
    CANCEL,
    Sessions,
    add_appointment,
    company_policy,
    db_now,
    record,
    stats_rows,
)
from tests.factories import make_tenant
from workflows.policy_stats import PolicyStatsRefreshWorkflow


@pytest.fixture
async def resolver(sessions: Sessions, database_url: URL) -> AsyncIterator[PolicyResolver]:
    resolver = PolicyResolver(sessions)
    await resolver.listen(database_url)
    try:
        yield resolver
    finally:
        await resolver.close()


@pytest.mark.devserver
async def test_the_refresh_workflow_recounts_the_stats(
    sessions: Sessions, dev_env: WorkflowEnvironment, task_queue: str
) -> None:
    tenant = await make_tenant(sessions, staff=1)
    now = await db_now(sessions)
    appointment = await add_appointment(sessions, tenant, now + timedelta(days=3))
    await record(sessions, tenant, appointment)
    activities = PolicyActivities(sessions, PolicyResolver(sessions))
    async with Worker(
        dev_env.client,
        task_queue=task_queue,
        workflows=[PolicyStatsRefreshWorkflow],
        activities=activities.all(),
    ):
        result = await dev_env.client.execute_workflow(
            PolicyStatsRefreshWorkflow.run, id=f"stats-{uuid.uuid4()}", task_queue=task_queue
        )
    assert isinstance(result, StatsRefreshed)
    assert result.rows == 1
    assert await stats_rows(sessions) == [(tenant.company_id, tenant.customer_ids[0], "cancel_30d", 1)]


async def test_the_check_activity_answers_for_a_workflow(
    sessions: Sessions, resolver: PolicyResolver
) -> None:
    tenant = await make_tenant(sessions, staff=1)
    await company_policy(sessions, tenant, "cancellation", {"fee_percentage": 12.5})
    now = await db_now(sessions)
    appointment = await add_appointment(sessions, tenant, now + timedelta(days=3), price="99.99")
    activities = PolicyActivities(sessions, resolver)
    result = await ActivityEnvironment().run(
        activities.check_appointment_change,
        CheckAppointmentChange(
            appointment_id=appointment, company_id=tenant.company_id, change=CANCEL, now=now
        ),
    )
    assert result.allowed
    assert result.fee == Decimal("12.50")
    assert result.sources["fee_percentage"].level == "company"


@pytest.mark.devserver
async def test_the_schedule_is_created_once_updated_in_place_and_runs_the_refresh(
    sessions: Sessions, dev_env: WorkflowEnvironment, task_queue: str
) -> None:
    client = dev_env.client
    schedule_id = f"stats-{uuid.uuid4().hex[:8]}"
    await ensure_stats_schedule(
        client,
        task_queue=task_queue,
        interval=timedelta(hours=1),
        schedule_id=schedule_id,
        workflow_id=schedule_id,
    )
    await ensure_stats_schedule(
        client,
        task_queue=task_queue,
        interval=timedelta(minutes=30),
        catchup_window=timedelta(minutes=5),
        schedule_id=schedule_id,
        workflow_id=schedule_id,
    )
    handle = client.get_schedule_handle(schedule_id)
    try:
        ids = [listed.id async for listed in await client.list_schedules() if listed.id == schedule_id]
        assert ids == [schedule_id]
        described = await handle.describe()
        assert described.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
        assert described.schedule.policy.catchup_window == timedelta(minutes=5)
        assert [i.every for i in described.schedule.spec.intervals] == [timedelta(minutes=30)]

        tenant = await make_tenant(sessions, staff=1)
        now = await db_now(sessions)
        appointment = await add_appointment(sessions, tenant, now + timedelta(days=3))
        await record(sessions, tenant, appointment)
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[PolicyStatsRefreshWorkflow],
            activities=PolicyActivities(sessions, PolicyResolver(sessions)).all(),
        ):
            await handle.trigger()
            for _ in itertools.count():  # until the triggered run shows up (bounded by the suite's timeout)
                described = await handle.describe()
                if described.info.recent_actions:
                    break
                await asyncio.sleep(0.05)
            started = described.info.recent_actions[0].action
            workflow_id = started.workflow_id  # type: ignore[attr-defined]
            result = await client.get_workflow_handle_for(
                PolicyStatsRefreshWorkflow.run, workflow_id
            ).result()
        assert result.rows == 1
    finally:
        await handle.delete()
