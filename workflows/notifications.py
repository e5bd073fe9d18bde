"""NotifyEventWorkflow: delivers the notifications of one event, detached from the callback lifecycle.

The callback workflow has one started per event (`notify()` below: a local activity starts them as
workflows of their own, not children) and moves on: a slow or dead receiver, a retry schedule of
minutes, or quiet hours that hold a message until morning never delay a staff action or the SLA clock.
Quiet hours are a durable timer, so a message held at 22:30 goes out at the end of the quiet hours even
if every worker restarts in between.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities import names
    from models.callbacks import CallbackEvent, CallbackState
    from models.notifications import (
        DeliveryOutcome,
        DeliveryStatus,
        NotificationStart,
        NotifyEvent,
        PlannedDelivery,
        StartNotifications,
    )
    from models.workflow_ids import notify_workflow_id, notify_workflow_id_under
    from rules.notifications import events_to_notify

RESOLVE_TIMEOUT = timedelta(seconds=15)
RESOLVE_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)
# Above the SMTP (30 s) and HTTP (10 s) timeouts of one send.
DELIVERY_TIMEOUT = timedelta(seconds=60)


def under_own_tenant(base_id: str) -> str:
    """A notification run's id under the company of the workflow that starts it (models/workflow_ids.py)."""
    return notify_workflow_id_under(workflow.info().workflow_id, base_id)


def delivery_retry(planned: PlannedDelivery) -> RetryPolicy:
    """The configured number of retries, spaced by the configured delay (at least a second)."""
    delay = max(timedelta(minutes=planned.retry_delay_minutes), timedelta(seconds=1))
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
