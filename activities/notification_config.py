"""What the notification activities need to know about the outside world: the SMTP server, the SMS
gateway, the channels' timeouts, retry defaults and quiet hours (from config.Settings)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time

from channels.email import SmtpConfig
from channels.errors import http_deadline
from config import Settings
from models.notifications import Channel, PlannedDelivery
from rules.notifications import RetryDefaults
from store.notification_people import QuietDefault


@dataclass(frozen=True)
class NotificationConfig:
    smtp: SmtpConfig
    mail_from: str
    message_id_domain: str
    sms_gateway_url: str
    sms_timeout_seconds: float = 10.0
    webhook_timeout_seconds: float = 10.0
    retry_defaults: RetryDefaults = field(default_factory=RetryDefaults)
    quiet_default: QuietDefault | None = field(default_factory=lambda: QuietDefault(time(22), time(7)))

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
            quiet_default=QuietDefault(settings.notify_quiet_hours_start, settings.notify_quiet_hours_end),
        )

    def send_deadline(self, channel: Channel) -> float:
        """The most one send on `channel` may take (each channel enforces its own)."""
        if channel is Channel.EMAIL:
            return self.smtp.deadline
        if channel is Channel.SMS:
            return http_deadline(self.sms_timeout_seconds)
        return http_deadline(self.webhook_timeout_seconds)

    def with_deadlines(self, planned: PlannedDelivery) -> PlannedDelivery:
        """The plan with its channel's deadline (and its fallback's), which the workflow derives the
        attempt's start-to-close from: the workflow cannot read the worker's settings itself."""
        fallback = planned.fallback
        return planned.model_copy(
            update={
                "send_timeout_seconds": self.send_deadline(planned.channel),
                "fallback": self.with_deadlines(fallback) if fallback is not None else None,
            }
        )
