"""Notification activities: resolve who hears about an event, deliver one message
(activities/notification_delivery.py), record a delivery given up, and start the notification workflows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities import names
from activities.notification_config import NotificationConfig
from activities.notification_delivery import Deliverer
from channels.sandbox import TemplateSandbox
from models.notifications import (
    AbandonedDelivery,
    DeliveryOutcome,
    NotifyEvent,
    PlannedDelivery,
    StartNotifications,
)
from store import notifications as store
from store.db import transaction
from store.notification_settings import NotificationSettings

__all__ = ["NotificationActivities", "NotificationConfig"]


class NotificationActivities:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        config: NotificationConfig,
        settings: NotificationSettings | None = None,
        sandbox: TemplateSandbox | None = None,
    ) -> None:
        """`settings`: the process's cached notification settings; without them every event reads its
        settings from the database (correct, just one query more). `sandbox`: where tenant templates
        render (default: the process's own, channels/sandbox.py)."""
        self._sessions = sessions
        self._config = config
        self._settings = settings if settings is not None else NotificationSettings(sessions)
        self._deliverer = Deliverer(sessions, config, sandbox)

    @activity.defn(name=names.RESOLVE_NOTIFICATIONS)
    async def resolve_notifications(self, event: NotifyEvent) -> list[PlannedDelivery]:
        async with transaction(self._sessions) as session:
            return await self.plan(session, event)

    async def plan(self, session: AsyncSession, event: NotifyEvent) -> list[PlannedDelivery]:
        """Who hears about `event`, on which channel, when, with the channel's deadlines: the one
        resolution of an event (the start activity hands it to the run it starts)."""
        [planned] = await self.plan_batch(session, [event])
        return planned

    async def plan_batch(
        self, session: AsyncSession, events: Sequence[NotifyEvent]
    ) -> list[list[PlannedDelivery]]:
        """`plan` of each event, in order, read together (the outbox dispatcher's claimed batch): a
        batch costs a few queries whatever its size."""
        plans = await store.resolve_batch(
            session,
            events,
            defaults=self._config.retry_defaults,
            quiet_default=self._config.quiet_default,
            settings=self._settings,
        )
        return [[self._config.with_deadlines(delivery) for delivery in planned] for planned in plans]

    @activity.defn(name=names.DELIVER_NOTIFICATION)
    async def deliver_notification(self, planned: PlannedDelivery) -> DeliveryOutcome:
        return await self._deliverer.deliver(planned)

    @activity.defn(name=names.ABANDON_DELIVERY)
    async def abandon_delivery(self, given_up: AbandonedDelivery) -> None:
        await self._deliverer.abandon(given_up)

    @activity.defn(name=names.START_NOTIFICATIONS)
    async def start_notifications(self, batch: StartNotifications) -> int:
        """Start each event's NotifyEventWorkflow as a workflow of its own, not a child: it must outlive
        and never hold up the lifecycle that emitted the event. Events nobody is to hear about start
        nothing (most events, where no channel is configured). Ids are deterministic, so a retried
        activity or a replayed workflow finds them started and starts nothing twice. Returns how many
        this call started."""
        client = activity.client()
        started = 0
        for start in batch.starts:
            planned = await self.resolve_notifications(start.event)
            if not planned:
                continue  # nobody to tell on any channel: a workflow would only find that out again
            try:
                await client.start_workflow(
                    names.NOTIFY_EVENT_WORKFLOW,
                    args=[start.event, planned],
                    id=start.workflow_id,
                    task_queue=activity.info().task_queue,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                )
                started += 1
            except WorkflowAlreadyStartedError:
                activity.logger.info("notifications of %s already started", start.workflow_id)
        return started

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.resolve_notifications,
            self.deliver_notification,
            self.abandon_delivery,
            self.start_notifications,
        ]
