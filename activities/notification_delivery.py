"""One delivery attempt of one (event, recipient, channel), and the record of a delivery given up.

An attempt first claims the delivery row (created once, attempts + 1, a lease in this attempt's name,
committed before anything goes out) and stops when the row says "sent": a retry after the worker died
between the send and the activity's completion sends nothing again. While another attempt's lease is live
(a timed-out attempt may still be talking to the receiver) it sends nothing either and says so
(DELIVERY_BUSY): the workflow waits for the lease to run out. What no sender can rule out — a crash after
the receiver accepted but before "sent" was written — is left to the receiver, which finds the same
Message-ID / X-Event-Id on the repeat.

Only the channel's failures count against the tenant's retry_count (`failures` on the row). An error of
our own (the database, a bug) gives the row back and fails the attempt with an ordinary exception, which
Temporal retries within the workflow's bound; when that bound is used up the workflow records the
delivery as failed with the reason (`abandon`), so no row stays `sending`.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import names
from activities.notification_config import NotificationConfig
from channels.email import build_email, send_email
from channels.errors import DeliveryError
from channels.sandbox import TemplateRefused, TemplateSandbox, default_sandbox
from channels.sms import send_sms
from channels.templates import context
from channels.webhook import send_webhook
from models.notifications import AbandonedDelivery, Channel, DeliveryOutcome, DeliveryStatus, PlannedDelivery
from rules.notification_timing import attempt_timeout, lease_duration, send_budget
from store import erasure, notification_log
from store import notifications as store
from store.db import transaction
from telemetry import metrics

log = logging.getLogger(__name__)

# "sent" is written right after the send: a database blip there would make the next attempt send the
# message again, so the write is tried a few times before the attempt gives up.
RECORD_SENT_TRIES = (0.2, 1.0, 3.0)


def _owner() -> str:
    """This attempt's name on the lease: one activity execution, one Temporal attempt of it."""
    info = activity.info()
    return f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}#{info.attempt}"


def _temporal_retries_failures() -> bool:
    """Whether Temporal itself retries a DELIVERY_FAILED (workflows from before the lease: their retry
    policy is the tenant's retry_count) rather than the workflow (which lists it as non-retryable)."""
    policy = activity.info().retry_policy
    return policy is not None and names.DELIVERY_FAILED not in (policy.non_retryable_error_types or ())


def _temporal_gives_up() -> bool:
    policy = activity.info().retry_policy
    if policy is None or not policy.maximum_attempts:
        return False
    return activity.info().attempt >= policy.maximum_attempts


class Deliverer:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        config: NotificationConfig,
        sandbox: TemplateSandbox | None = None,
    ) -> None:
        self._sessions = sessions
        self._config = config
        self._sandbox = sandbox

    async def deliver(self, planned: PlannedDelivery) -> DeliveryOutcome:
        owner = _owner()
        start_to_close = activity.info().start_to_close_timeout or attempt_timeout(None)
        async with transaction(self._sessions) as session:
            if await erasure.recipient_erased(session, planned):
                # Erased since it was planned: neither sent nor logged (the log would keep the address).
                activity.logger.info("%s not sent: the customer's data was erased", planned.message_id)
                metrics.NOTIFICATION_DELIVERIES.labels(planned.channel.value, "erased").inc()
                return DeliveryOutcome(status=DeliveryStatus.FAILED, attempts=0, sent_now=False)
            claim = await notification_log.claim_delivery(
                session, planned, owner=owner, lease=lease_duration(start_to_close)
            )
            secret = (
                await store.webhook_secret(session, planned.event.subject.company_id)
                if planned.channel is Channel.WEBHOOK and not (claim.already_sent or claim.busy)
                else None
            )
        channel = planned.channel.value
        if claim.already_sent:
            activity.logger.info("%s already sent, nothing to do", planned.message_id)
            metrics.NOTIFICATION_DELIVERIES.labels(channel, "duplicate").inc()
            return DeliveryOutcome(status=DeliveryStatus.SENT, attempts=claim.attempts, sent_now=False)
        if claim.busy:
            raise self._busy(planned)
        try:
            await self._attempt(planned, secret, send_budget(start_to_close))
        except DeliveryError as error:
            raise await self._failed(planned, error, owner) from None
        except BaseException:
            # Our own error, or the attempt was cancelled: it stopped sending, nothing counts against the
            # channel, and the next attempt need not wait for this one's lease.
            await asyncio.shield(self._release(planned, owner))
            raise
        await self._record_sent(planned)
        metrics.NOTIFICATION_DELIVERIES.labels(channel, "sent").inc()
        return DeliveryOutcome(status=DeliveryStatus.SENT, attempts=claim.attempts, sent_now=True)

    def _busy(self, planned: PlannedDelivery) -> ApplicationError:
        metrics.NOTIFICATION_DELIVERIES.labels(planned.channel.value, "busy").inc()
        activity.logger.info("%s is being sent by another attempt", planned.message_id)
        return ApplicationError(
            f"{planned.message_id} is being sent by another attempt", type=names.DELIVERY_BUSY
        )

    async def _attempt(self, planned: PlannedDelivery, secret: str | None, budget: timedelta) -> None:
        summary = await self._summary(planned)
        seconds = budget.total_seconds()
        try:
            # The channel keeps its own deadline; this one holds when the attempt was given less time.
            async with asyncio.timeout(seconds):
                await self._send(planned, secret, summary)
        except TimeoutError:
            raise DeliveryError(f"not sent within {seconds:g} s", retryable=True) from None

    async def _summary(self, planned: PlannedDelivery) -> str | None:
        """The tenant's override, rendered in the sandbox (channels/sandbox.py): never on this event loop."""
        if not planned.template_override or planned.channel is Channel.WEBHOOK:
            return None
        sandbox = self._sandbox or default_sandbox()
        try:
            return await sandbox.render(planned.template_override, context(planned))
        except TemplateRefused as refused:
            metrics.NOTIFICATION_DELIVERIES.labels(planned.channel.value, "template_refused").inc()
            raise DeliveryError(str(refused), retryable=False, detail=refused.detail) from None

    async def _send(self, planned: PlannedDelivery, secret: str | None, summary: str | None) -> None:
        config = self._config
        if planned.channel is Channel.EMAIL:
            message = build_email(
                planned, sender=config.mail_from, domain=config.message_id_domain, summary=summary
            )
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
                planned,
                gateway_url=config.sms_gateway_url,
                timeout_seconds=config.sms_timeout_seconds,
                summary=summary,
            )
        else:
            raise DeliveryError(f"channel {planned.channel.value} cannot be delivered", retryable=False)

    async def _failed(self, planned: PlannedDelivery, error: DeliveryError, owner: str) -> ApplicationError:
        """Count the channel's failure; the error tells the workflow whether a retry follows."""
        final_anyway = not error.retryable or (_temporal_retries_failures() and _temporal_gives_up())
        async with transaction(self._sessions) as session:
            final = await notification_log.mark_failed(
                session,
                planned,
                error.logged,
                final=final_anyway,
                retry_count=planned.retry_count,
                owner=owner,
            )
        if final is None:  # our lease ran out and another attempt took the row: its outcome counts
            return self._busy(planned)
        channel = planned.channel.value
        metrics.NOTIFICATION_DELIVERIES.labels(channel, "failed" if error.retryable else "refused").inc()
        if not error.retryable:
            kind = names.DELIVERY_REFUSED
        else:
            kind = names.DELIVERY_EXHAUSTED if final else names.DELIVERY_FAILED
        return ApplicationError(str(error), type=kind, non_retryable=kind != names.DELIVERY_FAILED)

    async def _release(self, planned: PlannedDelivery, owner: str) -> None:
        try:
            async with transaction(self._sessions) as session:
                await notification_log.release(session, planned, owner)
        except Exception as error:  # the lease runs out by itself
            log.warning("could not give back %s: %s", planned.message_id, type(error).__name__)

    async def _record_sent(self, planned: PlannedDelivery) -> None:
        for pause in (*RECORD_SENT_TRIES, None):
            try:
                async with transaction(self._sessions) as session:
                    await notification_log.mark_sent(session, planned)
                return
            except Exception as error:
                if pause is None:
                    raise
                log.warning("recording %s as sent failed (%s)", planned.message_id, type(error).__name__)
                await asyncio.sleep(pause)

    async def abandon(self, given_up: AbandonedDelivery) -> None:
        planned = given_up.planned
        async with transaction(self._sessions) as session:
            await notification_log.abandon(session, planned, given_up.reason)
        metrics.NOTIFICATION_DELIVERIES.labels(planned.channel.value, "abandoned").inc()
        activity.logger.warning("%s given up: recorded as failed", planned.message_id)
