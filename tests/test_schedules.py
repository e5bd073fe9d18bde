"""The Schedules on the Temporal dev server (the time-skipping server has no Schedules): created once and
updated in place, SKIP overlap and a catch-up window each, and the sweep run from its schedule repairs
both directions — an open row without a workflow, and a running workflow whose row is gone."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, ScheduleOverlapPolicy, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from activities.operations import running_callbacks
from config import Settings
from models.callbacks import Cancel, callback_workflow_id
from models.operations import SweepReport
from models.tables import CallbackRequest
from starter.schedules import RECONCILE_SCHEDULE_ID, ensure_schedules
from store.db import transaction
from tests.callback_harness import new_callback, row, running_worker
from tests.factories import make_tenant

Sessions = async_sessionmaker[AsyncSession]
WAIT_LIMIT_SECONDS = 60.0


async def _eventually_listed(client: Client, task_queue: str, workflow_id: str) -> None:
    """Visibility is eventually consistent: wait until the workflow shows in the list the sweep reads."""
    deadline = asyncio.get_running_loop().time() + WAIT_LIMIT_SECONDS
    while not [e async for e in client.list_workflows(running_callbacks(task_queue)) if e.id == workflow_id]:
        assert asyncio.get_running_loop().time() < deadline, f"{workflow_id} never became visible"
        await asyncio.sleep(0.2)


async def _triggered_run(client: Client, schedule_id: str) -> str:
    handle = client.get_schedule_handle(schedule_id)
    await handle.trigger()
    deadline = asyncio.get_running_loop().time() + WAIT_LIMIT_SECONDS
    while not (described := await handle.describe()).info.recent_actions:
        assert asyncio.get_running_loop().time() < deadline, "the triggered run never started"
        await asyncio.sleep(0.2)
    return described.info.recent_actions[-1].action.workflow_id


@pytest.mark.devserver
async def test_schedules_are_created_once_and_the_scheduled_sweep_repairs_both_directions(
    sessions: Sessions, dev_env: WorkflowEnvironment, task_queue: str
) -> None:
    client = dev_env.client
    settings = Settings(
        task_queue=task_queue,
        reconcile_catchup_minutes=7,
        retention_catchup_hours=2,
        calcom_sync_catchup_minutes=20,
    )
    prefix = f"{task_queue}-"
    first = await ensure_schedules(client, settings, prefix=prefix)
    second = await ensure_schedules(client, settings, prefix=prefix)
    try:
        assert [created for _, created in first] == [True, True, True, True]
        assert [created for _, created in second] == [False, False, False, False]
        windows = {}
        for item, _ in second:
            described = await client.get_schedule_handle(item.schedule_id).describe()
            assert described.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
            windows[item.schedule_id.removeprefix(prefix)] = described.schedule.policy.catchup_window
        assert windows == {
            "policy-stats-refresh": timedelta(minutes=10),
            "callbacks-reconcile": timedelta(minutes=7),
            "callbacks-retention": timedelta(hours=2),
            "calcom-bookings-sync": timedelta(minutes=20),
        }

        tenant = await make_tenant(sessions, staff=1)
        async with running_worker(client, sessions, task_queue) as callbacks:
            lost = (await callbacks.create(new_callback(tenant))).state.id
            async with transaction(sessions) as session:
                await session.execute(delete(CallbackRequest).where(CallbackRequest.id == lost))
            orphan = uuid.uuid4()
            created = datetime.now(UTC) - timedelta(minutes=5)
            async with transaction(sessions) as session:
                session.add(
                    CallbackRequest(
                        id=orphan,
                        company_id=tenant.company_id,
                        branch_id=tenant.branch_ids[0],
                        phone_number="+4930123456",
                        customer_name="Imported",
                        priority="high",
                        status="pending",
                        created_at=created,
                        expires_at=created + timedelta(hours=4),
                    )
                )
            await _eventually_listed(client, task_queue, callback_workflow_id(tenant.company_id, lost))

            run_id = await _triggered_run(client, prefix + RECONCILE_SCHEDULE_ID)
            report = await client.get_workflow_handle(run_id, result_type=SweepReport).result()
            assert (report.started, report.repersisted, report.failed) == (1, 1, 0), report.problems

            restored = await row(sessions, lost)
            assert (restored.status, restored.version) == ("assigned", 1)
            started = await client.get_workflow_handle(
                callback_workflow_id(tenant.company_id, orphan)
            ).describe()
            assert started.status == WorkflowExecutionStatus.RUNNING
            await callbacks.act(callback_workflow_id(tenant.company_id, orphan), Cancel(reason="test over"))
            await callbacks.act(callback_workflow_id(tenant.company_id, lost), Cancel(reason="test over"))
    finally:
        for item, _ in first:
            await client.get_schedule_handle(item.schedule_id).delete()
