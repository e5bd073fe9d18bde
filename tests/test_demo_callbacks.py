"""The live demo of `make dev`: demo callbacks in every state under minute-scale SLAs, created once, and
within five (skipped) minutes the SLA clock warns, escalates and reassigns."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from config import Settings
from devstack.calcom_fake import FakeCalcom, serve_fake
from devstack.demo import demo_calcom_webhook, seed_demo
from devstack.demo_callbacks import seed_demo_callbacks
from models.callbacks import CallbackStatus, Priority
from tests.api_fixtures import Sessions
from tests.callback_harness import running_worker


async def test_demo_callbacks_in_every_state_then_warnings_escalations_and_reassignment(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    assert await seed_demo(sessions)
    # The switch: nothing is created (no worker is even needed).
    off = Settings(task_queue=task_queue, demo_callbacks=False)
    assert (await seed_demo_callbacks(sessions, time_skipping_env.client, off)).created == []
    async with (
        serve_fake(FakeCalcom()) as calcom_url,  # the demo's event types: slot suggestions are found
        running_worker(time_skipping_env.client, sessions, task_queue, calcom_base_url=calcom_url) as client,
    ):
        settings = Settings(task_queue=task_queue)
        demo = await seed_demo_callbacks(sessions, time_skipping_env.client, settings)
        assert len(demo.created) == 7
        *live, imported = demo.created
        states = {callback_id: await client.state(callback_id) for callback_id in live}
        expired = await client.handle(imported).result()
        statuses = [state.status for state in states.values() if state is not None] + [expired.status]
        assert set(statuses) == set(CallbackStatus)
        assert expired.escalation_count == 2

        urgent = next(s for s in states.values() if s is not None and s.priority is Priority.URGENT)
        assert urgent.expires_at - urgent.created_at == timedelta(minutes=3)
        first_assignee = urgent.assigned_to
        assert first_assignee is not None

        await time_skipping_env.sleep(timedelta(minutes=5, seconds=10))
        later = await client.state(urgent.workflow_id)
        assert later is not None
        assert later.warnings_sent == [50, 75]
        assert later.escalation_count == 2
        assert first_assignee in later.previous_assignees
        assert later.assigned_to not in (None, first_assignee)
        pending = next(s for s in states.values() if s is not None and s.status is CallbackStatus.PENDING)
        waiting = await client.state(pending.workflow_id)
        assert waiting is not None
        assert waiting.warnings_sent == [50]  # at 5 of its 10 minutes

        # Once: a restart creates nothing new.
        assert (await seed_demo_callbacks(sessions, time_skipping_env.client, settings)).created == []
    company_id, secret = await demo_calcom_webhook(sessions)
    assert company_id > 0
    assert len(secret) >= 24
