"""A row deleted by SQL under a running callback (outside the API) never wedges it: the write that finds
the reference dead is not retried, the workflow drops the reference, records `callback.reference_dropped`
and goes on. Before, the next write violated a foreign key and was retried forever (the staff action hung
and the worker could not shut down)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from models.callbacks import CallbackStatus, ChangePriority, MarkContacted, Priority
from models.tables import Branch, Customer, Staff
from store.db import transaction
from tests.callback_harness import event_rows, new_callback, row, running_worker
from tests.factories import add_staff, make_tenant

Sessions = async_sessionmaker[AsyncSession]
# Generous for a loaded 2-core machine; a wedged write never answers at all.
ANSWER_WITHIN_SECONDS = 1.0


async def test_a_customer_deleted_by_sql_is_dropped_and_the_next_staff_action_answers_at_once(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    tenant = await make_tenant(sessions)
    await add_staff(sessions, tenant, services=(0,))
    customer = tenant.customer_ids[0]
    async with running_worker(time_skipping_env.client, sessions, task_queue) as client:
        state = (await client.create(new_callback(tenant, customer_id=customer))).state
        async with transaction(sessions) as session:
            await session.execute(delete(Customer).where(Customer.id == customer))

        started = time.monotonic()
        async with asyncio.timeout(ANSWER_WITHIN_SECONDS):
            after = await client.act(state.workflow_id, MarkContacted())
        assert time.monotonic() - started < ANSWER_WITHIN_SECONDS

        assert after.status == CallbackStatus.CONTACTED
        assert after.request.customer_id is None
        stored = await row(sessions, state.id)
        assert (stored.status, stored.customer_id, stored.version) == ("contacted", None, after.version)
        events = await event_rows(sessions, state.id)
        assert [e.type for e in events][-2:] == ["callback.contacted", "callback.reference_dropped"]
        assert events[-1].payload == {"references": ["customer_id"], "staff_ids": []}
        # The SLA clock goes on: the breach escalates as usual.
        await time_skipping_env.sleep(timedelta(hours=25))
        assert (await client.state(state.workflow_id)).escalation_count == 1  # type: ignore[union-attr]


async def test_a_deleted_assignee_leaves_the_callback_pending_for_the_sla_clock(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    tenant = await make_tenant(sessions)
    gone = await add_staff(sessions, tenant, services=(0,))
    async with running_worker(time_skipping_env.client, sessions, task_queue) as client:
        state = (await client.create(new_callback(tenant, priority=Priority.HIGH))).state
        assert state.assigned_to == gone
        async with transaction(sessions) as session:
            await session.execute(delete(Staff).where(Staff.id == gone))
        async with asyncio.timeout(ANSWER_WITHIN_SECONDS * 5):
            after = await client.act(state.workflow_id, ChangePriority(priority=Priority.URGENT))
        assert (after.status, after.assigned_to, after.priority) == (
            CallbackStatus.PENDING,
            None,
            Priority.URGENT,
        )
        stored = await row(sessions, state.id)
        assert (stored.status, stored.assigned_to, stored.priority) == ("pending", None, "urgent")
        dropped = (await event_rows(sessions, state.id))[-1]
        assert dropped.type == "callback.reference_dropped"
        assert dropped.payload == {"references": ["assigned_to"], "staff_ids": [str(gone)]}

        # A new colleague arrives; the breach escalates to them.
        colleague = await add_staff(sessions, tenant)
        await time_skipping_env.sleep(timedelta(hours=2, minutes=1))
        escalated = await client.state(state.workflow_id)
        assert escalated is not None
        assert (escalated.escalation_count, escalated.assigned_to) == (1, colleague)


async def test_a_deleted_branch_ends_the_callback_instead_of_retrying_for_ever(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    tenant = await make_tenant(sessions)
    await add_staff(sessions, tenant, services=(0,))
    async with running_worker(time_skipping_env.client, sessions, task_queue) as client:
        state = (await client.create(new_callback(tenant))).state
        async with transaction(sessions) as session:  # the callback's row goes with it (CASCADE)
            await session.execute(delete(Branch).where(Branch.id == tenant.branch_ids[0]))
        async with asyncio.timeout(ANSWER_WITHIN_SECONDS * 5):
            after = await client.act(state.workflow_id, MarkContacted())
            final = await client.handle(state.workflow_id).result()
        assert after.status == CallbackStatus.CANCELLED
        assert (final.status, final.cancel_reason) == (
            CallbackStatus.CANCELLED,
            "the callback's branch was deleted",
        )
