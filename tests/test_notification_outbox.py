"""The notification outbox: a callback step's notifiable events are written with the step and started by
the worker's dispatcher, resolved once (the run does not resolve again), and rows a dead dispatcher left
are started by the next worker; a row never holds the customer's contact data."""

from __future__ import annotations

import asyncio
from datetime import datetime, time
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from activities import names
from config import Settings
from models.callbacks import ERASED, CallbackEvent, CallbackState
from models.notifications import NotifyEvent
from models.tables import Branch, CallbackRequest, NotificationOutbox
from models.workflow_ids import notify_workflow_id, tenant_workflow_id
from starter.client import CallbackClient
from store import notification_outbox
from store.callback_writes import write_step
from store.db import transaction
from tests.callback_harness import new_callback
from tests.factories import Tenant, add_staff, make_tenant
from tests.notify_fixtures import outside_world
from worker import build_worker

Sessions = async_sessionmaker[AsyncSession]
EMAIL = "erika@example.org"


async def _no_quiet_hours(sessions: Sessions, tenant: Tenant) -> None:
    async with transaction(sessions) as session:  # the mail goes out whenever the suite runs
        await session.execute(
            update(Branch)
            .where(Branch.id == tenant.branch_ids[0])
            .values(quiet_hours_start=time(0), quiet_hours_end=time(0))
        )


async def _finished(env: WorkflowEnvironment, workflow_id: str) -> WorkflowHandle[Any, Any]:
    """The run, once the dispatcher started it (a few milliseconds after the step) and it finished."""
    handle = env.client.get_workflow_handle(workflow_id)
    for _ in range(200):
        try:
            await handle.describe()
            break
        except RPCError as missing:
            if missing.status != RPCStatusCode.NOT_FOUND:
                raise
            await asyncio.sleep(0.05)
    await handle.result()
    return handle


async def test_a_step_notifies_through_the_outbox_resolved_once(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    env = time_skipping_env
    tenant = await make_tenant(sessions)
    await add_staff(sessions, tenant, services=(0,))
    await _no_quiet_hours(sessions, tenant)
    async with outside_world() as world, build_worker(env.client, world.settings(task_queue), sessions):
        client = CallbackClient(env.client, task_queue)
        state = (await client.create(new_callback(tenant, email=EMAIL))).state
        run = await _finished(
            env, tenant_workflow_id(tenant.company_id, notify_workflow_id("callback", state.id, 1))
        )
        history = await run.fetch_history()
        async with sessions() as session:
            left = await notification_outbox.pending(session, tenant.company_id)

    assert len(world.mail.to(EMAIL)) == 1
    # The dispatcher resolved the deliveries and handed them over: the run resolved nothing itself.
    types = [event.event_type for event in history.events]
    local_activities = [
        event
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and event.marker_recorded_event_attributes.marker_name == "core_local_activity"
    ]
    scheduled = [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert local_activities == []
    assert names.RESOLVE_NOTIFICATIONS not in scheduled
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED in types
    assert left == 0


async def _leave_row(sessions: Sessions, state: CallbackState, workflow_id: str, at: datetime) -> None:
    """A step written, with its outbox row, by a worker that died before its dispatcher drained it."""
    event = CallbackEvent(seq=state.event_count + 1, type="callback.created", at=at)
    async with transaction(sessions) as session:
        await write_step(
            session,
            state.model_copy(update={"version": state.version + 1, "event_count": event.seq}),
            workflow_id=state.workflow_id,
            escalation=None,
            events=[event],
            outbox=notification_outbox.outbox_rows(
                [(workflow_id, event.seq, NotifyEvent.for_callback(event, state))]
            ),
        )
        row = await session.scalar(
            select(NotificationOutbox).where(NotificationOutbox.workflow_id == workflow_id)
        )
    assert row is not None
    # What the row keeps: no name, number or address of the customer.
    assert "Mustermann" not in str(row.event)
    assert EMAIL not in str(row.event)


async def test_rows_a_dead_dispatcher_left_are_started_by_the_next_worker(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    env = time_skipping_env
    tenant = await make_tenant(sessions)
    await add_staff(sessions, tenant, services=(0,))
    await _no_quiet_hours(sessions, tenant)
    left_behind = tenant_workflow_id(tenant.company_id, "notify-callback-left-behind")
    async with outside_world() as world:
        async with build_worker(env.client, world.settings(task_queue), sessions):
            client = CallbackClient(env.client, task_queue)
            state = (await client.create(new_callback(tenant, email=EMAIL))).state
            await _finished(
                env, tenant_workflow_id(tenant.company_id, notify_workflow_id("callback", state.id, 1))
            )
        await _leave_row(sessions, state, left_behind, await env.get_current_time())
        async with build_worker(env.client, world.settings(task_queue), sessions):
            await _finished(env, left_behind)
        async with sessions() as session:
            assert await notification_outbox.pending(session, tenant.company_id) == 0
    assert len(world.mail.to(EMAIL)) == 2


async def test_a_claim_reads_the_contact_data_as_it_is_now(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    """Erased between the step and the drain: the run gets nobody's data."""
    env = time_skipping_env
    tenant = await make_tenant(sessions)
    await add_staff(sessions, tenant, services=(0,))
    async with build_worker(env.client, Settings(task_queue=task_queue), sessions):
        state = (await CallbackClient(env.client, task_queue).create(new_callback(tenant, email=EMAIL))).state
    await _leave_row(sessions, state, "notify-callback-erased", await env.get_current_time())
    async with transaction(sessions) as session:
        await session.execute(
            update(CallbackRequest)
            .where(CallbackRequest.id == state.id)
            .values(customer_name=ERASED, phone_number=ERASED, email=None)
        )
    async with transaction(sessions) as session:
        claimed = await notification_outbox.claim(session, limit=1000, lease_seconds=60)
    [item] = [item for item in claimed if item.workflow_id == "notify-callback-erased"]
    subject = item.event.subject
    assert (subject.customer_name, subject.customer_phone, subject.customer_email) == (None, None, None)
    assert item.event.subject.id == str(state.id)
