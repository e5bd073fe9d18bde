"""A callback the API opens (starter/opening.py): its first step is in PostgreSQL before its workflow
starts, the workflow begins from that stored state (no create Update, no local activity, no marker), a
second request with the same key joins it, and a start lost after the write is repaired by the
reconciliation sweep."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from activities.opening import CallbackOpener
from activities.preparation import CallbackPreparer
from activities.step_writer import StepWriter
from config import Settings
from models import search_attributes
from models.callbacks import CallbackStatus, MarkContacted, callback_workflow_id
from models.operations import SweepConfig
from starter.client import CallbackClient, callback_id_for
from starter.opening import open_callback
from store.policies import PolicyResolver
from tests.callback_harness import escalation_rows, event_rows, new_callback, row, running_worker
from tests.factories import add_staff, make_tenant
from workflows.operations import CallbackReconcileWorkflow

Sessions = async_sessionmaker[AsyncSession]


def _edge(sessions: Sessions) -> tuple[CallbackPreparer, CallbackOpener]:
    preparer = CallbackPreparer.from_settings(sessions, PolicyResolver(sessions), Settings())
    return preparer, CallbackOpener(preparer, StepWriter(sessions))


async def test_an_opened_callback_is_stored_and_started_before_any_worker_runs(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    env = time_skipping_env
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant, services=(0,))
    preparer, opener = _edge(sessions)
    now = await env.get_current_time()
    request = new_callback(tenant)
    prepared = await preparer.prepare(request, at=now)

    # No worker polls the task queue: the answer needs none.
    created = await open_callback(opener, CallbackClient(env.client, task_queue), request, prepared)
    state = created.state
    assert created.created
    assert (state.status, state.assigned_to, state.version, state.created_at) == (
        CallbackStatus.ASSIGNED,
        staff,
        1,
        now,
    )
    stored = await row(sessions, state.id)
    assert (stored.status, stored.assigned_to, stored.version) == ("assigned", staff, 1)
    assert stored.workflow_id == state.workflow_id
    assert [e.type for e in await event_rows(sessions, state.id)] == ["callback.created", "callback.assigned"]
    handle = env.client.get_workflow_handle(state.workflow_id)
    described = await handle.describe()
    assert described.status == WorkflowExecutionStatus.RUNNING
    shown = search_attributes.known_from(described.typed_search_attributes)
    assert shown == {update.key.name: update.value for update in search_attributes.updates_for(state)}

    async with running_worker(env.client, sessions, task_queue) as client:
        # The run holds the stored state as it is and keeps its SLA clock: 24 h later it escalates.
        assert await client.state(state.workflow_id) == state
        await env.sleep(timedelta(hours=24, minutes=1))
        escalated = await client.state(state.workflow_id)
        assert escalated is not None
        assert len(escalated.escalations) == 1
        assert [e.escalation_reason for e in await escalation_rows(sessions, state.id)] == ["sla_breach"]

    history = await handle.fetch_history()
    kinds = [event.event_type for event in history.events]
    first_task = kinds[: kinds.index(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) + 2]
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED not in kinds
    assert EventType.EVENT_TYPE_MARKER_RECORDED not in first_task  # no write of its own to open it
    assert first_task[-1] == EventType.EVENT_TYPE_TIMER_STARTED


async def test_a_second_request_with_the_same_key_joins_the_first(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    tenant = await make_tenant(sessions)
    await add_staff(sessions, tenant, services=(0,))
    preparer, opener = _edge(sessions)
    async with running_worker(time_skipping_env.client, sessions, task_queue) as client:
        request = new_callback(tenant)
        now = await time_skipping_env.get_current_time()
        first = await open_callback(opener, client, request, await preparer.prepare(request, at=now), "k-1")
        again = await open_callback(opener, client, request, await preparer.prepare(request, at=now), "k-1")

    assert first.created
    assert not again.created
    assert again.state == first.state
    assert first.state.id == callback_id_for(tenant.company_id, "k-1")
    assert (await row(sessions, first.state.id)).version == 1


async def test_a_start_lost_after_the_write_is_repaired_by_the_sweep(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    env = time_skipping_env
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant, services=(0,))
    preparer, opener = _edge(sessions)
    request = new_callback(tenant)
    callback_id = uuid.uuid4()
    workflow_id = callback_workflow_id(tenant.company_id, callback_id)
    prepared = await preparer.prepare(request, at=await env.get_current_time())
    # The API wrote the first step, then lost Temporal before its start went through.
    opened = await opener.open(callback_id, request, prepared, workflow_id)
    assert opened.written

    async with running_worker(env.client, sessions, task_queue) as client:
        with env.auto_time_skipping_disabled():
            report = await env.client.execute_workflow(
                CallbackReconcileWorkflow.run,
                SweepConfig(page_size=10),
                id=f"sweep-{callback_id}",
                task_queue=task_queue,
            )
        assert report.started == 1
        state = await client.state(workflow_id)
        assert state is not None
        assert (state.status, state.assigned_to, state.version) == (CallbackStatus.ASSIGNED, staff, 1)
        assert state.expires_at == opened.state.expires_at  # the SLA clock of the write, not the sweep's
        contacted = await client.act(workflow_id, MarkContacted())
    assert contacted.version == 2
    assert (await row(sessions, callback_id)).status == "contacted"
