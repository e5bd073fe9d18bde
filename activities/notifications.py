"""Notification activities: resolve who hears about an event, and deliver one message.

`deliver_notification` is one (event, recipient, channel). It first claims the delivery record (created
once, attempts + 1, committed before anything goes out) and stops when the record says "sent": a retry
after the worker died between the send and the activity's completion sends nothing again. What no sender
can rule out — a crash after the receiver accepted but before "sent" was written — is left to the
receiver, which finds the same Message-ID / X-Event-Id on the repeat.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from activities import names
from channels.email import SmtpConfig, build_email, send_email
from channels.errors import DeliveryError
from channels.sms import send_sms
from channels.webhook import send_webhook
from config import Settings
from models.notifications import (
    Channel,
    DeliveryOutcome,
    DeliveryStatus,
    NotifyEvent,
    PlannedDelivery,
    StartNotifications,
)
from rules.notifications import RetryDefaults
from store import erasure, notification_log
from store import notifications as store
from store.db import transaction
from store.notification_settings import NotificationSettings
from telemetry import metrics

DELIVERY_REFUSED = "DeliveryRefused"
DELIVERY_FAILED = "DeliveryFailed"


@dataclass(frozen=True)
class NotificationConfig:
    smtp: SmtpConfig
    mail_from: str
    message_id_domain: str
    sms_gateway_url: str
    sms_timeout_seconds: float = 10.0
    webhook_timeout_seconds: float = 10.0
    retry_defaults: RetryDefaults = field(default_factory=RetryDefaults)
    quiet_default: store.QuietDefault | None = field(
        default_factory=lambda: store.QuietDefault(time(22), time(7))
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> NotificationConfig:
        return cls(
            smtp=SmtpConfig.from_url(settings.smtp(), timeout=settings.notify_smtp_timeout_seconds),
            mail_from=settings.notify_mail_from,
            message_id_domain=settings.notify_message_id_domain,
            sms_gateway_url=settings.sms_gateway(),
            sms_timeout_seconds=settings.notify_sms_timeout_seconds,
            webhook_timeout_seconds=settings.notify_webhook_timeout_seconds,
            retry_defaults=RetryDefaults(settings.notify_retry_count, settings.notify_retry_delay_minutes),
            quiet_default=store.QuietDefault(
                settings.notify_quiet_hours_start, settings.notify_quiet_hours_end
            ),
        )


class NotificationActivities:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        config: NotificationConfig,
        settings: NotificationSettings | None = None,
    ) -> None:
        """`settings`: the process's cached notification settings; without them every event reads its
        settings from the database (correct, just one query more)."""
        self._sessions = sessions
        self._config = config
        self._settings = settings if settings is not None else NotificationSettings(sessions)

    @activity.defn(name=names.RESOLVE_NOTIFICATIONS)
    async def resolve_notifications(self, event: NotifyEvent) -> list[PlannedDelivery]:
        async with transaction(self._sessions) as session:
            return await self.plan(session, event)

    async def plan(self, session: AsyncSession, event: NotifyEvent) -> list[PlannedDelivery]:
        """Who hears about `event`, on which channel, when: the one resolution of an event (the outbox
        dispatcher and the start activity hand it to the run they start)."""
        return await store.resolve_deliveries(
            session,
            event,
            defaults=self._config.retry_defaults,
            quiet_default=self._config.quiet_default,
            settings=self._settings,
        )

    @activity.defn(name=names.DELIVER_NOTIFICATION)
    async def deliver_notification(self, planned: PlannedDelivery) -> DeliveryOutcome:
        async with transaction(self._sessions) as session:
            if await erasure.recipient_erased(session, planned):
                # Erased since it was planned: neither sent nor logged (the log would keep the address).
                activity.logger.info("%s not sent: the customer's data was erased", planned.message_id)
                metrics.NOTIFICATION_DELIVERIES.labels(planned.channel.value, "erased").inc()
                return DeliveryOutcome(status=DeliveryStatus.FAILED, attempts=0, sent_now=False)
            claim = await notification_log.claim_delivery(session, planned)
            secret = (
                await store.webhook_secret(session, planned.event.subject.company_id)
                if planned.channel is Channel.WEBHOOK and not claim.already_sent
                else None
            )
        channel = planned.channel.value
        if claim.already_sent:
            activity.logger.info("%s already sent, nothing to do", planned.message_id)
            metrics.NOTIFICATION_DELIVERIES.labels(channel, "duplicate").inc()
            return DeliveryOutcome(status=DeliveryStatus.SENT, attempts=claim.attempts, sent_now=False)
        try:
            await self._send(planned, secret)
        except DeliveryError as error:
            final = not error.retryable or activity.info().attempt > planned.retry_count
            metrics.NOTIFICATION_DELIVERIES.labels(channel, "failed" if error.retryable else "refused").inc()
            async with transaction(self._sessions) as session:
                await notification_log.mark_failed(session, planned, error.logged, final=final)
            raise ApplicationError(
                str(error),
                type=DELIVERY_FAILED if error.retryable else DELIVERY_REFUSED,
                non_retryable=not error.retryable,
            ) from None
        async with transaction(self._sessions) as session:
            await notification_log.mark_sent(session, planned)
        metrics.NOTIFICATION_DELIVERIES.labels(channel, "sent").inc()
        return DeliveryOutcome(status=DeliveryStatus.SENT, attempts=claim.attempts, sent_now=True)

    async def _send(self, planned: PlannedDelivery, secret: str | None) -> None:
        config = self._config
        if planned.channel is Channel.EMAIL:
            message = build_email(planned, sender=config.mail_from, domain=config.message_id_domain)
            await send_email(message, config.smtp)
        elif planned.channel is Channel.WEBHOOK:
            if not secret:
                raise DeliveryError("the company has a webhook URL but no webhook secret", retryable=False)
            await send_webhook(
                planned,
                secret=secret,
                sent_at=datetime.now(UTC),
                timeout_seconds=config.webhook_timeout_seconds,
            )
        elif planned.channel is Channel.SMS:
            await send_sms(
                planned, gateway_url=config.sms_gateway_url, timeout_seconds=config.sms_timeout_seconds
            )
        else:
            raise DeliveryError(f"channel {planned.channel.value} cannot be delivered", retryable=False)

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
        return [self.resolve_notifications, self.deliver_notification, self.start_notifications]
