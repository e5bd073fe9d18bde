"""Webhook deliveries against a real HTTP receiver on loopback that checks the signature: a receiver that
answers 500 twice gets the event once, on the third attempt, under one event id; a client error is not
retried and is logged as failed; a receiver that never answers does not hold up the callback; the
webhook secret never enters the workflow history. Temporal's time-skipping server, real PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from models.callbacks import CallbackEvent
from models.notifications import (
    DeliveryStatus,
    NotifyEvent,
)
from tests.notify_fixtures import (
    SECRET,
    WebhookReceiver,
    callback_state,
    deliveries,
    notify_tenant,
    notify_worker,
    outside_world,
    run_notify,
    set_notification,
)
from tests.notify_parent import Step, StepThatNotifies
from tests.temporal_servers import time_skipping_server
from workflows.notifications import NotifyEventWorkflow, notify_workflow_id

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of this test alone: the shared one's open workflows of earlier tests have
    timers that would make its clock jump while an activity of ours runs."""
    async with time_skipping_server() as own:
        yield own


async def test_a_receiver_answering_500_twice_then_200_gets_it_once_after_three_attempts(
    env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    async with outside_world(WebhookReceiver(script=[500, 500])) as world:
        people = await notify_tenant(sessions, world.hook_url)
        now = await env.get_current_time()
        state = callback_state(people, at=now)
        await set_notification(
            sessions,
            people,
            level="company",
            entity_id=people.tenant.company_id,
            event_type="callback.contacted",
            channel="webhook",
            retry_count=3,
            retry_delay_minutes=1,
        )
        contacted = CallbackEvent(
            seq=3, type="callback.contacted", payload={"staff_id": str(people.bob)}, at=now
        )
        async with notify_worker(env.client, sessions, world.settings(task_queue)):
            [outcome] = await run_notify(env, NotifyEvent.for_callback(contacted, state), task_queue)

        assert outcome.status is DeliveryStatus.SENT
        assert outcome.attempts == 3
        assert len(world.hook.received) == 3
        assert all(r.signature_ok for r in world.hook.received)
        assert len(set(world.hook.event_ids())) == 1  # one X-Event-Id for all three attempts
        [row] = await deliveries(sessions, people.tenant.company_id)
        assert (row.status, row.attempts, str(row.message_id)) == ("sent", 3, world.hook.event_ids()[0])


async def test_a_client_error_is_not_retried_and_is_logged_as_failed(
    env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    async with outside_world(WebhookReceiver(script=[410])) as world:
        people = await notify_tenant(sessions, world.hook_url)
        now = await env.get_current_time()
        contacted = CallbackEvent(seq=3, type="callback.contacted", at=now)
        event = NotifyEvent.for_callback(contacted, callback_state(people, at=now))
        async with notify_worker(env.client, sessions, world.settings(task_queue)):
            [outcome] = await run_notify(env, event, task_queue)
        assert outcome.status is DeliveryStatus.FAILED
        assert len(world.hook.received) == 1
        [row] = await deliveries(sessions, people.tenant.company_id)
        assert (row.status, row.attempts) == ("failed", 1)
        assert row.last_error is not None
        assert "410" in row.last_error


async def test_a_receiver_that_never_answers_does_not_block_the_callback_lifecycle(
    env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    async with outside_world(WebhookReceiver(hang=True)) as world:
        people = await notify_tenant(sessions, world.hook_url)
        now = await env.get_current_time()
        state = callback_state(people, at=now)
        contacted = CallbackEvent(seq=3, type="callback.contacted", at=now)
        async with notify_worker(
            env.client, sessions, world.settings(task_queue), workflows=[StepThatNotifies]
        ):
            result = await env.client.execute_workflow(
                StepThatNotifies.run,
                Step(events=[contacted], state=state),
                id=f"step-{state.id}",
                task_queue=task_queue,
            )
            assert result == "lifecycle went on"
            await world.hook.arrived.wait()  # the webhook is in flight, and its receiver hangs
            child = env.client.get_workflow_handle(notify_workflow_id("callback", state.id, 3))
            assert (await child.describe()).status == WorkflowExecutionStatus.RUNNING
            # The same step notified again (a replayed or reset workflow) starts nothing new.
            again = await env.client.execute_workflow(
                StepThatNotifies.run,
                Step(events=[contacted], state=state),
                id=f"step-again-{state.id}",
                task_queue=task_queue,
            )
            assert again == "lifecycle went on"
            await child.terminate("test over")
            world.hook.release.set()
        assert len(world.hook.received) == 1


async def test_the_webhook_secret_never_enters_the_workflow_history(
    env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    async with outside_world() as world:
        people = await notify_tenant(sessions, world.hook_url)
        now = await env.get_current_time()
        event = NotifyEvent.for_callback(
            CallbackEvent(seq=3, type="callback.contacted", at=now), callback_state(people, at=now)
        )
        async with notify_worker(env.client, sessions, world.settings(task_queue)):
            handle = await env.client.start_workflow(
                NotifyEventWorkflow.run, event, id=f"notify-secret-{event.event_id}", task_queue=task_queue
            )
            await handle.result()
        history = (await handle.fetch_history()).to_json()
        assert SECRET not in history
        assert world.hook.received[0].signature_ok
