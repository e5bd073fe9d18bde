"""NotifyEventWorkflow: delivers the notifications of one event, detached from the callback lifecycle.

The callback workflow has one started per event (`notify()` below: a local activity starts them as
workflows of their own, not children) and moves on: a slow or dead receiver, a retry schedule of
minutes, or quiet hours that hold a message until morning never delay a staff action or the SLA clock.
Quiet hours are a durable timer, so a message held at 22:30 goes out at the end of the quiet hours even
if every worker restarts in between.

Since `notify-lease-v1`, each message is a loop here rather than one activity with the tenant's retry
policy: Temporal retries only errors of our own (bounded, INFRA_RETRY), the channel's failures are
retried after the tenant's delay as many times as the tenant allows, an attempt that finds another one's
lease waits for it to run out, the fallback channel takes over when the message failed for good, and a
message given up for our own errors is recorded as failed (never left `sending`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities import names
    from models.callbacks import CallbackEvent, CallbackState
    from models.notifications import (
        AbandonedDelivery,
        DeliveryOutcome,
        DeliveryStatus,
        NotificationStart,
        NotifyEvent,
        PlannedDelivery,
        StartNotifications,
    )
    from models.workflow_ids import notify_workflow_id, notify_workflow_id_under
    from rules.notification_timing import attempt_timeout, lease_duration
    from rules.notifications import events_to_notify

RESOLVE_TIMEOUT = timedelta(seconds=15)
RESOLVE_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)
# Workflows from before `notify-lease-v1`: one start-to-close for every channel.
DELIVERY_TIMEOUT = timedelta(seconds=60)
LEASE_PATCH = "notify-lease-v1"
# Errors of our own (the database, a lost worker, a timed-out attempt): retried by Temporal, a bounded
# number of times (about 4 minutes), never counted against the tenant's retry_count. The channel's own
# outcomes are the workflow's to handle.
INFRA_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=8,
    non_retryable_error_types=[
        names.DELIVERY_REFUSED,
        names.DELIVERY_FAILED,
        names.DELIVERY_EXHAUSTED,
        names.DELIVERY_BUSY,
    ],
)
# Waiting out another attempt's lease more often than this means something else keeps the row.
MAX_LEASE_WAITS = 3
# Recording a delivery as given up waits for the database as long as a day.
ABANDON_TIMEOUT = timedelta(seconds=15)
ABANDON_WITHIN = timedelta(days=1)
ABANDON_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(minutes=5)
)


def under_own_tenant(base_id: str) -> str:
    """A notification run's id under the company of the workflow that starts it (models/workflow_ids.py)."""
    return notify_workflow_id_under(workflow.info().workflow_id, base_id)


def retry_delay(planned: PlannedDelivery) -> timedelta:
    """The configured delay between retries (at least a second)."""
    return max(timedelta(minutes=planned.retry_delay_minutes), timedelta(seconds=1))


def delivery_retry(planned: PlannedDelivery) -> RetryPolicy:
    """Before `notify-lease-v1`: the configured number of retries, spaced by the configured delay."""
    delay = retry_delay(planned)
    return RetryPolicy(
        initial_interval=delay,
        backoff_coefficient=1.0,
        maximum_interval=delay,
        maximum_attempts=planned.retry_count + 1,
        non_retryable_error_types=["DeliveryRefused"],
    )


@workflow.defn
class NotifyEventWorkflow:
    @workflow.run
    async def run(
        self, event: NotifyEvent, planned: list[PlannedDelivery] | None = None
    ) -> list[DeliveryOutcome]:
        """`planned`: the deliveries as whoever started the run resolved them (the outbox dispatcher and
        the start activity resolve to decide whether a run is needed at all: resolving again here would
        only repeat their queries). Runs started without them resolve first, as before."""
        if planned is None:
            planned = await workflow.execute_local_activity(
                names.RESOLVE_NOTIFICATIONS,
                event,
                result_type=list[PlannedDelivery],
                start_to_close_timeout=RESOLVE_TIMEOUT,
                retry_policy=RESOLVE_RETRY,
            )
        return list(await asyncio.gather(*(self._deliver(delivery) for delivery in planned)))

    async def _deliver(self, planned: PlannedDelivery) -> DeliveryOutcome:
        if planned.not_before is not None:
            wait = planned.not_before - workflow.now()
            if wait > timedelta(0):
                await workflow.sleep(wait)
        if workflow.patched(LEASE_PATCH):
            return await _with_fallback(planned)
        try:
            outcome: DeliveryOutcome = await workflow.execute_activity(
                names.DELIVER_NOTIFICATION,
                planned,
                result_type=DeliveryOutcome,
                start_to_close_timeout=DELIVERY_TIMEOUT,
                retry_policy=delivery_retry(planned),
            )
        except ActivityError as error:
            # Recorded as failed by the activity; one failed recipient must not fail the others.
            workflow.logger.warning("notification %s failed: %s", planned.message_id, error.cause or error)
            return DeliveryOutcome(status=DeliveryStatus.FAILED, attempts=0, sent_now=False)
        return outcome


FAILED = DeliveryOutcome(status=DeliveryStatus.FAILED, attempts=0, sent_now=False)


async def _with_fallback(planned: PlannedDelivery) -> DeliveryOutcome:
    """The message on its channel; when that failed for good, on the configured fallback channel."""
    outcome = await _on_channel(planned)
    if outcome.status is not DeliveryStatus.FAILED or planned.fallback is None:
        return outcome
    workflow.logger.info(
        "notification %s failed on %s, falling back to %s",
        planned.message_id,
        planned.channel.value,
        planned.fallback.channel.value,
    )
    return await _on_channel(planned.fallback)


def _failure_type(error: ActivityError) -> str | None:
    cause = error.cause
    return cause.type if isinstance(cause, ApplicationError) else None


async def _on_channel(planned: PlannedDelivery) -> DeliveryOutcome:
    """One message on one channel until it is sent or failed for good (recorded by the activity), or
    given up for our own errors (recorded here)."""
    timeout = attempt_timeout(planned.send_timeout_seconds)
    failures = lease_waits = 0
    while True:
        try:
            outcome: DeliveryOutcome = await workflow.execute_activity(
                names.DELIVER_NOTIFICATION,
                planned,
                result_type=DeliveryOutcome,
                start_to_close_timeout=timeout,
                retry_policy=INFRA_RETRY,
            )
            return outcome
        except ActivityError as error:
            kind = _failure_type(error)
            if kind == names.DELIVERY_FAILED and failures < planned.retry_count:
                failures += 1
                await workflow.sleep(retry_delay(planned))
                continue
            if kind == names.DELIVERY_BUSY and lease_waits < MAX_LEASE_WAITS:
                lease_waits += 1
                await workflow.sleep(lease_duration(timeout))
                continue
            if kind in (names.DELIVERY_REFUSED, names.DELIVERY_EXHAUSTED):
                workflow.logger.warning("notification %s failed: %s", planned.message_id, kind)
                return FAILED
            cause = error.cause or error
            why = "retries used up" if kind == names.DELIVERY_FAILED else "repeated errors of our own"
            await _abandon(planned, f"given up, {why}: {type(cause).__name__}: {cause}")
            return FAILED


async def _abandon(planned: PlannedDelivery, reason: str) -> None:
    """Record the message as failed with `reason` (the cause's text goes to the delivery log only)."""
    workflow.logger.warning("notification %s given up", planned.message_id)
    try:
        await workflow.execute_activity(
            names.ABANDON_DELIVERY,
            AbandonedDelivery(planned=planned, reason=reason),
            start_to_close_timeout=ABANDON_TIMEOUT,
            schedule_to_close_timeout=ABANDON_WITHIN,
            retry_policy=ABANDON_RETRY,
        )
    except ActivityError:
        workflow.logger.error("notification %s could not be recorded as given up", planned.message_id)


START_TIMEOUT = timedelta(seconds=15)


async def notify(events: Sequence[CallbackEvent], state: CallbackState) -> None:
    """Start one NotifyEventWorkflow per event of a persisted callback step.

    Call it from the callback workflow after the step is in PostgreSQL. The workflows are independent
    (not children): they outlive the callback and never hold it up, and their ids are deterministic, so a
    replayed or reset callback workflow cannot notify twice.
    """
    await _start(
        [
            NotificationStart(
                workflow_id=under_own_tenant(notify_workflow_id("callback", state.id, event.seq)),
                event=NotifyEvent.for_callback(event, state),
            )
            for event in events_to_notify(events)
        ]
    )


async def notify_event(event: NotifyEvent, workflow_id: str) -> None:
    """The same for any event (e.g. an appointment change): the caller chooses a deterministic id (put
    under the caller's company like the callbacks' runs)."""
    await _start([NotificationStart(workflow_id=under_own_tenant(workflow_id), event=event)])


async def _start(starts: list[NotificationStart]) -> None:
    if not starts:
        return
    await workflow.execute_local_activity(
        names.START_NOTIFICATIONS,
        StartNotifications(starts=starts),
        start_to_close_timeout=START_TIMEOUT,
        retry_policy=RESOLVE_RETRY,
    )
