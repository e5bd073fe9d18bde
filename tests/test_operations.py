"""The periodic jobs on a real PostgreSQL and Temporal's time-skipping server: the reconciliation sweep
starts an orphaned row's workflow exactly once (two sweeps at once), rewrites a drifted row, restarts a
terminated callback, counts and skips a workflow that cannot answer its query, and checks a bounded number
of rows per run, the next run carrying on; the retention job purges only old soft-deleted rows."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from models.callbacks import CallbackStatus, Complete, MarkContacted, callback_workflow_id
from models.operations import RetentionConfig, RetentionReport, SweepConfig, SweepReport
from models.tables import CallbackRequest, PolicyConfiguration
from store.db import transaction
from tests.broken_callback import BrokenCallback
from tests.callback_harness import event_rows, new_callback, row, running_worker
from tests.factories import Tenant, make_tenant
from workflows.operations import CallbackReconcileWorkflow, RetentionWorkflow

Sessions = async_sessionmaker[AsyncSession]


async def _imported_row(sessions: Sessions, tenant: Tenant, **values: object) -> uuid.UUID:
    """A row as an import from the old system writes it: no workflow, version 0, an hour old."""
    callback_id = uuid.uuid4()
    created = datetime.now(UTC) - timedelta(hours=1)
    fields: dict[str, object] = {
        "id": callback_id,
        "company_id": tenant.company_id,
        "branch_id": tenant.branch_ids[0],
        "service_id": tenant.service_ids[0],
        "phone_number": "+4930123456",
        "customer_name": "Imported Customer",
        "priority": "normal",
        "status": "assigned",
        "assigned_to": tenant.staff_ids[0],
        "assigned_at": created,
        "created_at": created,
        "expires_at": created + timedelta(hours=24),
        "contact_attempts": 1,
    }
    fields.update(values)
    async with transaction(sessions) as session:
        session.add(CallbackRequest(**fields))
    return callback_id


async def _sweep(env: WorkflowEnvironment, task_queue: str, name: str, page_size: int = 2) -> SweepReport:
    return await env.client.execute_workflow(
        CallbackReconcileWorkflow.run,
        SweepConfig(page_size=page_size),
        id=f"sweep-{name}-{uuid.uuid4().hex[:6]}",
        task_queue=task_queue,
    )


async def test_two_concurrent_sweeps_start_an_orphaned_rows_workflow_once_from_the_rows_state(
    sessions: Sessions, time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    env = time_skipping_env
    tenant = await make_tenant(sessions, staff=1)
    orphan = await _imported_row(sessions, tenant)
    stored = await row(sessions, orphan)
    # Three more open rows with running workflows, so the sweeps page (page size 2) over mixed rows.
    async with running_worker(env.client, sessions, task_queue) as client:
        for _ in range(3):
            await client.create(new_callback(tenant))
        with env.auto_time_skipping_disabled():
            first, second = await asyncio.gather(_sweep(env, task_queue, "a"), _sweep(env, task_queue, "b"))
        assert first.checked == second.checked == 4
        assert first.started + second.started == 1
        assert first.failed == second.failed == 0
        assert first.repersisted == second.repersisted == 0

        described = await env.client.get_workflow_handle(
            callback_workflow_id(tenant.company_id, orphan)
        ).describe()
        assert described.status == WorkflowExecutionStatus.RUNNING
        state = await client.state(callback_workflow_id(tenant.company_id, orphan))
        assert state is not None
        # The SLA clock runs from the row's creation, not from the sweep; the version continues.
        assert state.created_at == stored.created_at
        assert state.expires_at == stored.expires_at
        assert state.version == 0
        assert state.contact_attempts == 1
        assert state.status is CallbackStatus.ASSIGNED

        # The workflow now owns the row: a staff action goes through and is written after version 0.
        contacted = await client.act(callback_workflow_id(tenant.company_id, orphan), MarkContacted())
        assert contacted.version == 1
        assert (await row(sessions, orphan)).status == "contacted"
        assert [e.seq for e in await event_rows(sessions, orphan)] == [1]

        # A third sweep finds nothing left to do.
        with env.auto_time_skipping_disabled():
            again = await _sweep(env, task_queue, "c")
        assert (again.started, again.repersisted, again.failed) == (0, 0, 0)


async def test_the_sweep_rewrites_a_drifted_row_and_restarts_a_terminated_callback(
    sessions: Sessions, time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    env = time_skipping_env
    tenant = await make_tenant(sessions, staff=1)
    async with running_worker(env.client, sessions, task_queue) as client:
        drifted = (await client.create(new_callback(tenant))).state.id
        await client.act(callback_workflow_id(tenant.company_id, drifted), MarkContacted())
        terminated = (await client.create(new_callback(tenant))).state.id
        # A restored backup: the row is one step behind its workflow.
        async with transaction(sessions) as session:
            await session.execute(
                update(CallbackRequest)
                .where(CallbackRequest.id == drifted)
                .values(status="assigned", contacted_at=None, version=1)
            )
        await env.client.get_workflow_handle(callback_workflow_id(tenant.company_id, terminated)).terminate(
            "operator mistake"
        )

        with env.auto_time_skipping_disabled():
            report = await _sweep(env, task_queue, "drift")
        assert (report.checked, report.started, report.repersisted, report.failed) == (2, 1, 1, 0)

        repaired = await row(sessions, drifted)
        assert (repaired.status, repaired.version) == ("contacted", 2)
        assert repaired.contacted_at is not None
        restarted = await env.client.get_workflow_handle(
            callback_workflow_id(tenant.company_id, terminated)
        ).describe()
        assert restarted.status == WorkflowExecutionStatus.RUNNING
        completed = await client.act(
            callback_workflow_id(tenant.company_id, terminated),
            Complete(notes="called back after the restart"),
        )
        assert completed.status is CallbackStatus.COMPLETED
        assert (await row(sessions, terminated)).status == "completed"


async def test_retention_purges_only_old_soft_deleted_rows(
    sessions: Sessions, time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    env = time_skipping_env
    tenant = await make_tenant(sessions, staff=1)
    now = datetime.now(UTC)
    long_ago, recently = now - timedelta(days=100), now - timedelta(days=10)
    old_closed = await _imported_row(sessions, tenant, status="cancelled", deleted_at=long_ago)
    old_closed_2 = await _imported_row(sessions, tenant, status="completed", deleted_at=long_ago)
    recent_closed = await _imported_row(sessions, tenant, status="cancelled", deleted_at=recently)
    live = await _imported_row(sessions, tenant, status="completed")
    # Never happens through the API (delete cancels first); the job must still leave it alone.
    old_open = await _imported_row(sessions, tenant, deleted_at=long_ago)
    async with transaction(sessions) as session:
        for deleted_at in (long_ago, recently, None):
            session.add(
                PolicyConfiguration(
                    company_id=tenant.company_id,
                    configurable_type="company",
                    configurable_id=str(tenant.company_id),
                    policy_type="cancellation",
                    config={"hours_before": 24},
                    deleted_at=deleted_at,
                )
            )
    async with running_worker(env.client, sessions, task_queue):
        report: RetentionReport = await env.client.execute_workflow(
            RetentionWorkflow.run,
            RetentionConfig(retention_days=90, batch_size=1),
            id=f"retention-{uuid.uuid4().hex[:6]}",
            task_queue=task_queue,
        )
    assert report.purged["callback_requests"] == 2
    assert report.purged["policy_configurations"] == 1
    async with sessions() as session:
        left = set(await session.scalars(select(CallbackRequest.id)))
        policies = list(await session.scalars(select(PolicyConfiguration.deleted_at)))
        assert (await session.scalar(text("SELECT count(*) FROM callback_requests"))) == 3
    assert left == {recent_closed, live, old_open}
    assert not {old_closed, old_closed_2} & left
    assert sorted(policies, key=lambda d: (d is None, d or now)) == [recently, None]


async def _cron_result(env: WorkflowEnvironment, workflow_id: str, run_id: str | None) -> SweepReport:
    """The result of one cron run: the test server hands it on to the next run as its last completion
    result, which the history of the run shows."""
    handle = env.client.get_workflow_handle(workflow_id, run_id=run_id)
    for _ in range(100):
        for event in (await handle.fetch_history()).events:
            if event.HasField("workflow_execution_continued_as_new_event_attributes"):
                carried = event.workflow_execution_continued_as_new_event_attributes.last_completion_result
                [report] = await env.client.data_converter.decode(carried.payloads, [SweepReport])
                return cast(SweepReport, report)
        await env.sleep(timedelta(minutes=1))
    raise AssertionError("the first cron run never finished")


def _ordered_ids(count: int) -> list[uuid.UUID]:
    """Fresh ids in the order the sweep pages through them."""
    return sorted(uuid.uuid4() for _ in range(count))


async def test_a_workflow_whose_query_fails_is_counted_and_skipped_and_the_sweep_goes_on(
    sessions: Sessions,
    time_skipping_env: WorkflowEnvironment,
    task_queue: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = time_skipping_env
    tenant = await make_tenant(sessions, staff=1)
    broken_id, orphan_id = _ordered_ids(2)
    broken_workflow = callback_workflow_id(tenant.company_id, broken_id)
    await _imported_row(sessions, tenant, id=broken_id, workflow_id=broken_workflow)
    await _imported_row(sessions, tenant, id=orphan_id)
    async with (
        Worker(env.client, task_queue=f"{task_queue}-broken", workflows=[BrokenCallback]),
        running_worker(env.client, sessions, task_queue),
    ):
        await env.client.start_workflow(
            BrokenCallback.run, id=broken_workflow, task_queue=f"{task_queue}-broken"
        )
        caplog.set_level(logging.WARNING, logger="activities.operations")
        with env.auto_time_skipping_disabled():
            # One row per page: the broken row's page must not stop the next one, in this run or any.
            first = await _sweep(env, task_queue, "broken", page_size=1)
            second = await _sweep(env, task_queue, "broken-again", page_size=1)

    assert (first.checked, first.started, first.failed) == (2, 1, 1)
    assert f"{broken_id}: WorkflowQueryFailedError" in first.problems
    assert (second.checked, second.started, second.failed) == (2, 0, 1)
    started = await env.client.get_workflow_handle(
        callback_workflow_id(tenant.company_id, orphan_id)
    ).describe()
    assert started.status == WorkflowExecutionStatus.RUNNING
    # Logged with the row's id, without the personal data the row or the error could carry.
    assert str(broken_id) in caplog.text
    assert "Imported Customer" not in caplog.text
    assert "cannot answer" not in caplog.text


async def test_a_run_checks_at_most_its_budget_of_rows_and_the_next_run_carries_on(
    sessions: Sessions, time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    env = time_skipping_env
    tenant = await make_tenant(sessions, staff=1)
    ids = _ordered_ids(3)
    for callback_id in ids:
        await _imported_row(sessions, tenant, id=callback_id)

    async def has_workflow(callback_id: uuid.UUID) -> bool:
        handle = env.client.get_workflow_handle(callback_workflow_id(tenant.company_id, callback_id))
        try:
            return (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        except RPCError:
            return False

    async with running_worker(env.client, sessions, task_queue):
        # Scheduled like production (a cron run here, a Schedule there): each run gets the last one's result.
        handle = await env.client.start_workflow(
            CallbackReconcileWorkflow.run,
            SweepConfig(page_size=1, rows_per_run=2),
            id=f"sweep-budget-{uuid.uuid4().hex[:6]}",
            task_queue=task_queue,
            cron_schedule="*/10 * * * *",
        )
        try:
            first = await _cron_result(env, handle.id, handle.first_execution_run_id)
            # The first run stopped after two rows and said where the next one carries on.
            assert (first.checked, first.started, first.next_after) == (2, 2, ids[1])
            # The next run starts after them (from the beginning it would spend its budget on the same
            # two rows again, and the third would never come round).
            for _ in range(100):
                if await has_workflow(ids[2]):
                    break
                await env.sleep(timedelta(minutes=1))
            assert [await has_workflow(callback_id) for callback_id in ids] == [True, True, True]
        finally:
            await handle.terminate("test over")


async def test_the_workflow_of_a_row_written_moments_ago_is_not_queried(
    sessions: Sessions, time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    env = time_skipping_env
    tenant = await make_tenant(sessions, staff=1)
    async with running_worker(env.client, sessions, task_queue) as client:
        drifted = (await client.create(new_callback(tenant))).state.id
        await client.act(callback_workflow_id(tenant.company_id, drifted), MarkContacted())
        async with transaction(sessions) as session:
            await session.execute(
                update(CallbackRequest)
                .where(CallbackRequest.id == drifted)
                .values(status="assigned", version=1)
            )

        async def sweep(settle_minutes: float) -> SweepReport:
            with env.auto_time_skipping_disabled():
                return await env.client.execute_workflow(
                    CallbackReconcileWorkflow.run,
                    SweepConfig(settle_minutes=settle_minutes),
                    id=f"sweep-settle-{uuid.uuid4().hex[:6]}",
                    task_queue=task_queue,
                )

        # Written within the settle time: checked (it has a workflow), its workflow not queried.
        fresh = await sweep(settle_minutes=60)
        assert (fresh.checked, fresh.repersisted, fresh.failed) == (1, 0, 0)
        assert (await row(sessions, drifted)).version == 1
        settled = await sweep(settle_minutes=0)
        assert (settled.checked, settled.repersisted) == (1, 1)
        assert (await row(sessions, drifted)).version == 2
