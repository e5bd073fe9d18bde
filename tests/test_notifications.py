"""Notification delivery end to end: Temporal's time-skipping server, real PostgreSQL, a real SMTP server
on loopback, a real HTTP webhook receiver that checks the HMAC, and the fake SMS gateway (webhook receivers
that fail, hang or must not learn the secret: test_notification_webhooks.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities import names
from models.callbacks import CallbackEvent, Priority
from models.notifications import (
    DeliveryOutcome,
    DeliveryStatus,
    NotifyEvent,
    PlannedDelivery,
    delivery_message_id,
)
from models.tables import Branch
from store.db import transaction
from tests.notify_fixtures import (
    callback_state,
    deliveries,
    escalation,
    notify_tenant,
    notify_worker,
    outside_world,
    run_notify,
    set_notification,
)
from tests.temporal_servers import time_skipping_server
from worker import build_worker
from workflows.notifications import NotifyEventWorkflow

Sessions = async_sessionmaker[AsyncSession]
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of this test alone: the shared one's open workflows of earlier tests have
    timers that would make its clock jump while an activity of ours runs."""
    async with time_skipping_server() as own:
        yield own


async def test_an_escalation_mails_the_new_assignee_and_posts_a_signed_webhook(
    env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    async with outside_world() as world:
        people = await notify_tenant(sessions, world.hook_url)
        now = await env.get_current_time()
        state = callback_state(people, priority=Priority.URGENT, at=now)
        event = NotifyEvent.for_callback(escalation(people, now), state)
        # The production worker: NotifyEventWorkflow and the notification activities are registered.
        async with build_worker(env.client, world.settings(task_queue), sessions):
            outcomes = await run_notify(env, event, task_queue)

        assert [o.status for o in outcomes] == [DeliveryStatus.SENT] * 4
        [to_bob] = world.mail.to("bob@praxis.example")
        assert to_bob["Subject"] == "Callback escalated: Erika Mustermann"
        assert "sla_breach" in to_bob.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        bob_key = f"staff:{people.bob}"
        assert (
            to_bob["Message-ID"]
            == f"<{delivery_message_id(event.event_id, bob_key, 'email')}@callbacks.test>"
        )
        [to_alice] = world.mail.to("alice@praxis.example")  # the previous assignee, in German
        assert to_alice["Subject"] == "Rückruf eskaliert: Erika Mustermann"
        [to_manager] = world.mail.to("mia@praxis.example")  # the branch's manager hears of it too
        assert to_manager["Subject"] == "Rückruf eskaliert: Erika Mustermann"
        assert len(world.mail.messages) == 3

        [hook] = world.hook.received
        assert hook.signature_ok
        assert hook.json["type"] == "callback.escalated"
        assert hook.json["data"]["escalated_to"] == str(people.bob)
        assert hook.json["timestamp"] == int(world.hook.timestamps()[0])
        hook_key = f"webhook:{people.tenant.company_id}"
        assert world.hook.event_ids() == [str(delivery_message_id(event.event_id, hook_key, "webhook"))]
        assert hook.json["id"] == world.hook.event_ids()[0]

        rows = await deliveries(sessions, people.tenant.company_id)
        assert {(r.recipient, r.channel, r.status, r.attempts) for r in rows} == {
            (f"staff:{people.alice}", "email", "sent", 1),
            (bob_key, "email", "sent", 1),
            (f"staff:{people.manager}", "email", "sent", 1),
            (f"webhook:{people.tenant.company_id}", "webhook", "sent", 1),
        }
        assert all(r.sent_at is not None for r in rows)


async def test_hierarchy_staff_off_beats_company_on_fallback_and_disabled_event(
    env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    async with outside_world() as world:
        people = await notify_tenant(sessions, world.hook_url)
        tenant = people.tenant
        now = await env.get_current_time()
        state = callback_state(people, priority=Priority.URGENT, at=now)
        # The company wants mails for escalations; Bob switched mail off for himself; Alice's branch
        # has no mail for escalations either, but falls back to SMS.
        base = {"event_type": "callback.escalated", "channel": "email"}
        await set_notification(
            sessions, people, level="company", entity_id=tenant.company_id, is_enabled=True, **base
        )
        await set_notification(
            sessions, people, level="staff", entity_id=people.bob, is_enabled=False, **base
        )
        await set_notification(
            sessions,
            people,
            level="staff",
            entity_id=people.alice,
            is_enabled=False,
            fallback_channel="sms",
            **base,
        )
        # Completions are switched off altogether.
        await set_notification(
            sessions,
            people,
            level="company",
            entity_id=tenant.company_id,
            event_type="callback.completed",
            channel="webhook",
            is_enabled=False,
        )
        async with notify_worker(env.client, sessions, world.settings(task_queue)):
            await run_notify(env, NotifyEvent.for_callback(escalation(people, now), state), task_queue)
            completed = CallbackEvent(seq=8, type="callback.completed", payload={"notes": "ok"}, at=now)
            assert await run_notify(env, NotifyEvent.for_callback(completed, state), task_queue) == []

        # Only the manager, who set nothing, gets the mail the company level asks for.
        assert [m["To"] for m in world.mail.messages] == ["mia@praxis.example"]
        [sms] = world.sms.messages
        assert sms["text"].startswith("Der Rückruf für Erika Mustermann wurde eskaliert")
        assert [r.json["type"] for r in world.hook.received] == ["callback.escalated"]
        rows = await deliveries(sessions, tenant.company_id)
        assert {(r.recipient, r.channel) for r in rows} == {
            (f"staff:{people.alice}", "sms"),
            (f"staff:{people.manager}", "email"),
            (f"webhook:{tenant.company_id}", "webhook"),
        }


async def _next_local(env: WorkflowEnvironment, wall: time) -> datetime:
    """Move the test server's clock to the next `wall` o'clock in Berlin; returns the new now."""
    now = await env.get_current_time()
    local = now.astimezone(BERLIN)
    target = datetime.combine(local.date(), wall, tzinfo=BERLIN)
    if target <= local:
        target = datetime.combine(local.date() + timedelta(days=1), wall, tzinfo=BERLIN)
    await env.sleep(target - now)
    return await env.get_current_time()


async def _timers(handle: WorkflowHandle[Any, Any]) -> list[timedelta]:
    return [
        event.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
        for event in (await handle.fetch_history()).events
        if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED
    ]


async def _until_timer_started(handle: WorkflowHandle[Any, Any]) -> list[timedelta]:
    for _ in range(500):
        timers = await _timers(handle)
        if timers:
            return timers
        await asyncio.sleep(0.02)
    raise AssertionError("the workflow never started its quiet-hours timer")


async def test_quiet_hours_hold_a_normal_warning_until_morning_and_let_an_urgent_one_through(
    env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    async with outside_world() as world:
        people = await notify_tenant(sessions)  # no webhook: only people are involved
        async with transaction(sessions) as session:
            await session.execute(
                update(Branch)
                .where(Branch.id == people.tenant.branch_ids[0])
                .values(quiet_hours_start=time(22), quiet_hours_end=time(7))
            )
        at = await _next_local(env, time(22, 30))
        local = at.astimezone(BERLIN)
        morning = datetime.combine(local.date() + timedelta(days=1), time(7), tzinfo=BERLIN)

        def warning(priority: Priority, seq: int) -> NotifyEvent:
            state = callback_state(people, priority=priority, at=at)
            event = CallbackEvent(
                seq=seq, type="callback.sla_warning", payload={"percent": 75}, actor="sla-clock", at=at
            )
            return NotifyEvent.for_callback(event, state)

        async with notify_worker(env.client, sessions, world.settings(task_queue)):
            normal = warning(Priority.NORMAL, 1)
            held = await env.client.start_workflow(
                NotifyEventWorkflow.run, normal, id=f"notify-quiet-{normal.event_id}", task_queue=task_queue
            )
            [timer] = await _until_timer_started(held)
            assert abs(timer - (morning - at)) < timedelta(seconds=5)  # held until 07:00 branch time
            assert world.mail.messages == []

            urgent = warning(Priority.URGENT, 2)
            [sent] = await run_notify(env, urgent, task_queue)
            assert sent.status is DeliveryStatus.SENT
            urgent_handle = env.client.get_workflow_handle(f"notify-test-{urgent.event_id}")
            assert await _timers(urgent_handle) == []  # the urgent one did not wait

            [released] = await held.result()
            assert released.status is DeliveryStatus.SENT

        assert len(world.mail.to("bob@praxis.example")) == 2
        rows = {r.event_id: r for r in await deliveries(sessions, people.tenant.company_id)}
        assert rows[normal.event_id].scheduled_for == morning
        assert rows[urgent.event_id].scheduled_for is None
        assert {r.status for r in rows.values()} == {"sent"}


async def test_a_retry_after_the_send_was_recorded_sends_nothing_again(
    env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    async with outside_world() as world:
        people = await notify_tenant(sessions)
        now = await env.get_current_time()
        state = callback_state(people, priority=Priority.URGENT, at=now)
        await set_notification(
            sessions,
            people,
            level="company",
            entity_id=people.tenant.company_id,
            event_type="callback.escalated",
            channel="email",
            retry_delay_minutes=0,
        )
        settings = world.settings(task_queue)
        async with notify_worker(env.client, sessions, settings) as real:

            @activity.defn(name=names.DELIVER_NOTIFICATION)
            async def dies_after_sending(planned: PlannedDelivery) -> DeliveryOutcome:
                """The real delivery, then the worker is 'lost' before the completion reaches Temporal."""
                outcome = await real.deliver_notification(planned)
                if activity.info().attempt == 1:
                    raise RuntimeError("worker lost between the send and the activity's completion")
                return outcome

            async with notify_worker(
                env.client,
                sessions,
                settings.model_copy(update={"task_queue": f"{task_queue}-crash"}),
                activities=[real.resolve_notifications, dies_after_sending],
            ):
                event = NotifyEvent.for_callback(escalation(people, now), state)
                outcomes = await run_notify(env, event, f"{task_queue}-crash")

        # Each delivery ran twice (the retry saw "sent" and stopped); each mail went out once.
        assert [o.sent_now for o in outcomes] == [False, False, False]
        assert sorted(m["To"] for m in world.mail.messages) == [
            "alice@praxis.example",
            "bob@praxis.example",
            "mia@praxis.example",
        ]
        rows = await deliveries(sessions, people.tenant.company_id)
        assert [(r.status, r.attempts) for r in rows] == [("sent", 1)] * 3
        assert {m["Message-ID"] for m in world.mail.messages} == {
            f"<{r.message_id}@callbacks.test>" for r in rows
        }
