"""Every notification ends `sent` or `failed` with its reason, on real PostgreSQL, Temporal's time-skipping
server, a real SMTP server, the fake SMS gateway and a real webhook receiver: an attempt that starts
while another still sends waits for that one's lease; an error of our own neither loses a message nor uses
up the tenant's retries, and when it outlasts its bound the row says so; the fallback channel takes over
from a channel that failed for good; a runaway template override fails its own message and stalls
nobody."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities import names
from activities.notifications import NotificationActivities, NotificationConfig
from channels.sandbox import TemplateSandbox
from config import Settings
from models.callbacks import CallbackEvent, Priority
from models.notifications import Channel, DeliveryOutcome, DeliveryStatus, NotifyEvent, PlannedDelivery
from models.tables import Staff
from rules.notification_timing import attempt_timeout, lease_duration
from store.db import create_engine, transaction
from tests.notify_fixtures import (
    People,
    WebhookReceiver,
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
from workflows.notifications import INFRA_RETRY, NotifyEventWorkflow

Sessions = async_sessionmaker[AsyncSession]
STAFF_MAILS = ["alice@praxis.example", "bob@praxis.example", "mia@praxis.example"]


@pytest.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of this test alone: the shared one's open workflows of earlier tests have
    timers that would make its clock jump while an activity of ours runs."""
    async with time_skipping_server() as own:
        yield own


@pytest.fixture
async def broken_sessions(database_url: URL) -> AsyncIterator[Sessions]:
    """Sessions of a database that is not there (nothing listens on the port): every query fails the way
    a database blip does."""
    engine = create_engine(database_url.set(host="127.0.0.1", port=1), pool_size=1)
    try:
        yield async_sessionmaker(engine, expire_on_commit=False)
    finally:
        await engine.dispose()


async def _escalation(env: WorkflowEnvironment, people: People) -> NotifyEvent:
    now = await env.get_current_time()
    return NotifyEvent.for_callback(
        escalation(people, now), callback_state(people, priority=Priority.URGENT, at=now)
    )


def test_an_attempt_outlasts_its_channels_deadline_and_its_lease_outlasts_the_attempt() -> None:
    config = NotificationConfig.from_settings(Settings())
    # One SMTP send may take several of its per-step timeouts: more than the old 60 s start-to-close.
    assert config.smtp.deadline > config.smtp.timeout
    assert config.send_deadline(Channel.EMAIL) > 60
    for channel in (Channel.EMAIL, Channel.SMS, Channel.WEBHOOK):
        deadline = timedelta(seconds=config.send_deadline(channel))
        attempt = attempt_timeout(deadline.total_seconds())
        assert attempt > deadline
        assert lease_duration(attempt) > attempt


async def test_an_attempt_that_starts_while_another_still_sends_does_not_send_again(
    sessions: Sessions,
) -> None:
    async with outside_world(WebhookReceiver(hang=True)) as world:
        people = await notify_tenant(sessions, world.hook_url)
        activities = NotificationActivities(
            sessions, NotificationConfig.from_settings(world.settings("unused"))
        )
        at = datetime.now(UTC)
        contacted = CallbackEvent(seq=3, type="callback.contacted", at=at)
        [planned] = await activities.resolve_notifications(
            NotifyEvent.for_callback(contacted, callback_state(people, at=at))
        )
        assert planned.send_timeout_seconds is not None
        timeout = attempt_timeout(planned.send_timeout_seconds)

        def attempt(number: int) -> ActivityEnvironment:
            """Temporal's attempt `number` of one delivery activity, under the workflow's start-to-close."""
            environment = ActivityEnvironment()
            environment.info = dataclasses.replace(
                environment.info, attempt=number, start_to_close_timeout=timeout
            )
            return environment

        first = asyncio.create_task(attempt(1).run(activities.deliver_notification, planned))
        await world.hook.arrived.wait()  # the first attempt is talking to the receiver, which hangs
        # Temporal gave up on it (a timeout) and retries: the retry finds the lease and sends nothing.
        with pytest.raises(ApplicationError) as busy:
            await attempt(2).run(activities.deliver_notification, planned)
        assert busy.value.type == names.DELIVERY_BUSY
        [row] = await deliveries(sessions, people.tenant.company_id)
        assert row.status == "sending"
        assert row.lease_owner is not None
        assert row.lease_owner.endswith("#1")
        assert row.lease_until is not None
        assert row.lease_until - row.updated_at > timeout  # the lease outlives the attempt

        world.hook.release.set()
        sent = await first
        again = await attempt(3).run(activities.deliver_notification, planned)
    assert (sent.status, sent.sent_now) == (DeliveryStatus.SENT, True)
    assert (again.status, again.sent_now) == (DeliveryStatus.SENT, False)
    assert len(world.hook.received) == 1
    [row] = await deliveries(sessions, people.tenant.company_id)
    assert (row.status, row.attempts, row.lease_owner) == ("sent", 1, None)


async def test_with_no_retries_a_database_blip_neither_loses_the_message_nor_uses_a_retry(
    env: WorkflowEnvironment, sessions: Sessions, broken_sessions: Sessions, task_queue: str
) -> None:
    async with outside_world() as world:
        people = await notify_tenant(sessions)
        await set_notification(sessions, people, channel="email", retry_count=0, retry_delay_minutes=0)
        settings = world.settings(task_queue)
        config = NotificationConfig.from_settings(settings)
        real = NotificationActivities(sessions, config)
        blipping = NotificationActivities(broken_sessions, config)

        @activity.defn(name=names.DELIVER_NOTIFICATION)
        async def database_blips_once(planned: PlannedDelivery) -> DeliveryOutcome:
            """The first attempt meets a database that is gone for a moment; the next one finds it back."""
            if activity.info().attempt == 1:
                return await blipping.deliver_notification(planned)
            return await real.deliver_notification(planned)

        async with notify_worker(
            env.client,
            sessions,
            settings,
            activities=[real.resolve_notifications, database_blips_once, real.abandon_delivery],
        ):
            outcomes = await run_notify(env, await _escalation(env, people), task_queue)

    assert [o.status for o in outcomes] == [DeliveryStatus.SENT] * 3
    assert sorted(m["To"] for m in world.mail.messages) == STAFF_MAILS
    rows = await deliveries(sessions, people.tenant.company_id)
    assert [(r.status, r.attempts, r.failures) for r in rows] == [("sent", 1, 0)] * 3


async def test_errors_of_our_own_that_outlast_their_retries_end_the_row_failed_with_the_reason(
    env: WorkflowEnvironment, sessions: Sessions, broken_sessions: Sessions, task_queue: str
) -> None:
    async with outside_world() as world:
        people = await notify_tenant(sessions)
        settings = world.settings(task_queue)
        config = NotificationConfig.from_settings(settings)
        real = NotificationActivities(sessions, config)
        down = NotificationActivities(broken_sessions, config)
        async with notify_worker(
            env.client,
            sessions,
            settings,
            activities=[real.resolve_notifications, down.deliver_notification, real.abandon_delivery],
        ):
            outcomes = await run_notify(env, await _escalation(env, people), task_queue)

    assert [o.status for o in outcomes] == [DeliveryStatus.FAILED] * 3
    assert world.mail.messages == []
    rows = await deliveries(sessions, people.tenant.company_id)
    assert len(rows) == 3
    for row in rows:
        assert (row.status, row.failures) == ("failed", 0)
        assert row.last_error is not None
        assert row.last_error.startswith("given up, repeated errors of our own")


async def test_the_fallback_channel_takes_over_when_the_primary_channel_failed_for_good(
    env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    async with outside_world() as world:
        people = await notify_tenant(sessions)
        await set_notification(
            sessions, people, channel="email", fallback_channel="sms", retry_count=1, retry_delay_minutes=1
        )
        # Nothing listens there: every mail fails, retryably.
        settings = world.settings(task_queue).model_copy(update={"smtp_url": "smtp://127.0.0.1:1"})
        async with notify_worker(env.client, sessions, settings):
            outcomes = await run_notify(env, await _escalation(env, people), task_queue)

    assert [o.status for o in outcomes] == [DeliveryStatus.SENT] * 3
    assert len(world.sms.messages) == 3
    assert all(
        m["text"].startswith("Der Rückruf") or m["text"].startswith("The callback")
        for m in world.sms.messages
    )
    rows = await deliveries(sessions, people.tenant.company_id)
    by_channel = {channel: [r for r in rows if r.channel == channel] for channel in ("email", "sms")}
    assert [(r.status, r.attempts, r.failures) for r in by_channel["email"]] == [("failed", 2, 2)] * 3
    assert all("SMTP unavailable" in (r.last_error or "") for r in by_channel["email"])
    assert [r.status for r in by_channel["sms"]] == ["sent"] * 3


async def test_a_runaway_template_override_fails_its_own_message_and_stalls_nobody(
    env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    runaway = "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}"
    async with outside_world() as world:
        people = await notify_tenant(sessions)
        await set_notification(
            sessions,
            people,
            level="staff",
            entity_id=people.alice,
            channel="email",
            template_override=runaway,
        )
        await set_notification(
            sessions,
            people,
            level="staff",
            entity_id=people.bob,
            channel="email",
            template_override="Bitte {{ customer_name }} anrufen.",
        )
        settings = world.settings(task_queue)
        sandbox = TemplateSandbox(timeout_seconds=1.0)
        activities = NotificationActivities(
            sessions, NotificationConfig.from_settings(settings), sandbox=sandbox
        )
        longest_stall = 0.0
        running = True

        async def watch_the_event_loop() -> None:
            """How long this process's event loop (the worker's) was kept from running a 20 ms timer."""
            nonlocal longest_stall
            loop = asyncio.get_running_loop()
            while running:
                before = loop.time()
                await asyncio.sleep(0.02)
                longest_stall = max(longest_stall, loop.time() - before - 0.02)

        watcher = asyncio.create_task(watch_the_event_loop())
        try:
            async with Worker(
                env.client,
                task_queue=task_queue,
                workflows=[NotifyEventWorkflow],
                activities=activities.all(),
                graceful_shutdown_timeout=timedelta(seconds=1),
            ):
                outcomes = await run_notify(env, await _escalation(env, people), task_queue)
        finally:
            running = False
            await watcher
            await sandbox.close()

    assert sorted(o.status for o in outcomes) == [
        DeliveryStatus.FAILED,
        DeliveryStatus.SENT,
        DeliveryStatus.SENT,
    ]
    # Run in this process, the runaway template would have held the loop for as long as it ran (until the
    # 1 s limit); a stall shorter than that is the machine's load (two cores, the child spinning on one).
    assert longest_stall < sandbox.timeout_seconds
    assert sorted(m["To"] for m in world.mail.messages) == STAFF_MAILS[1:]
    [to_bob] = world.mail.to("bob@praxis.example")
    assert "Bitte Erika Mustermann anrufen." in to_bob.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    rows = {r.recipient: r for r in await deliveries(sessions, people.tenant.company_id)}
    alice = rows[f"staff:{people.alice}"]
    assert (alice.status, alice.attempts, alice.failures) == ("failed", 1, 1)
    assert alice.last_error is not None
    assert "took longer than 1 s" in alice.last_error


async def test_a_claimed_message_that_fails_on_our_side_is_given_back_each_time_and_then_given_up(
    env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    async with outside_world() as world:
        people = await notify_tenant(sessions)
        # An address no mail can be built for: our error after the row was claimed, not the channel's.
        async with transaction(sessions) as session:
            await session.execute(
                update(Staff).where(Staff.id == people.alice).values(email="alice@praxis.example\nBcc: x@y")
            )
        async with notify_worker(env.client, sessions, world.settings(task_queue)):
            outcomes = await run_notify(env, await _escalation(env, people), task_queue)

    assert sorted(o.status for o in outcomes) == [
        DeliveryStatus.FAILED,
        DeliveryStatus.SENT,
        DeliveryStatus.SENT,
    ]
    rows = {r.recipient: r for r in await deliveries(sessions, people.tenant.company_id)}
    alice = rows[f"staff:{people.alice}"]
    # Every one of Temporal's attempts could claim it (each gave it back), none counted against the channel.
    assert (alice.status, alice.attempts, alice.failures) == ("failed", INFRA_RETRY.maximum_attempts, 0)
    assert alice.lease_owner is None
    assert alice.last_error is not None
    assert alice.last_error.startswith("given up, repeated errors of our own")
    assert sorted(m["To"] for m in world.mail.messages) == STAFF_MAILS[1:]
