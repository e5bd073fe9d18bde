"""Messages of notification delivery: what crosses the workflow → activity borders, and what the store
answers the API with.

Everything here travels through Temporal's pydantic data converter, so it stays free of I/O imports.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.callbacks import ERASED, CallbackEvent, CallbackState, Priority

# Message-IDs, X-Event-Ids and SMS message ids are UUIDv5 in this namespace: the same (event, recipient,
# channel) always gets the same id, on every attempt and in every process.
DELIVERY_NAMESPACE = uuid.UUID("6b1f3c52-8e0e-4d8e-9a53-2a4c1f0d7e11")


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    WEBHOOK = "webhook"
    PUSH = "push"


class RecipientType(StrEnum):
    STAFF = "staff"
    CUSTOMER = "customer"
    WEBHOOK = "webhook"


class Audience(StrEnum):
    """Recipient roles an event of the catalogue names in its `metadata.audience`."""

    ASSIGNEE = "assignee"
    PREVIOUS_ASSIGNEE = "previous_assignee"
    MANAGERS = "managers"
    ASSIGNEE_OR_MANAGERS = "assignee_or_managers"
    CUSTOMER = "customer"
    WEBHOOK = "webhook"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def event_id_for(subject_type: str, subject_id: object, seq: int) -> str:
    return f"{subject_type}:{subject_id}:{seq}"


def delivery_message_id(event_id: str, recipient: str, channel: str) -> uuid.UUID:
    return uuid.uuid5(DELIVERY_NAMESPACE, f"{event_id}|{recipient}|{channel}")


class NotificationSubject(Frozen):
    """The callback or appointment an event is about: enough to find recipients and fill templates,
    captured when the event happened (a later change of the callback does not rewrite old messages)."""

    type: Literal["callback", "appointment"]
    id: str
    company_id: int
    branch_id: int | None = None
    service_id: int | None = None
    priority: Priority = Priority.NORMAL
    status: str | None = None
    assigned_staff_id: uuid.UUID | None = None
    previous_staff_ids: list[uuid.UUID] = Field(default_factory=list)
    customer_id: int | None = None
    customer_name: str | None = None
    customer_phone: str | None = None
    customer_email: str | None = None
    due_at: datetime | None = None


class NotifyEvent(Frozen):
    """Input of NotifyEventWorkflow: one event and its subject."""

    event_id: str
    type: str
    occurred_at: datetime
    actor: str = "system"
    payload: dict[str, Any] = Field(default_factory=dict)
    subject: NotificationSubject

    @classmethod
    def for_callback(cls, event: CallbackEvent, state: CallbackState) -> NotifyEvent:
        request = state.request
        return cls(
            event_id=event_id_for("callback", state.id, event.seq),
            type=event.type,
            occurred_at=event.at,
            actor=event.actor,
            payload=event.payload,
            subject=NotificationSubject(
                type="callback",
                id=str(state.id),
                company_id=request.company_id,
                branch_id=request.branch_id,
                service_id=request.service_id,
                priority=state.priority,
                status=state.status.value,
                assigned_staff_id=state.assigned_to,
                previous_staff_ids=list(state.previous_assignees),
                customer_id=request.customer_id,
                customer_name=None if request.customer_name == ERASED else request.customer_name,
                customer_phone=None if request.phone_number == ERASED else request.phone_number,
                customer_email=request.email,
                due_at=state.expires_at,
            ),
        )


class Recipient(Frozen):
    """Somebody (or some system) a message goes to, with an address per channel they can be reached on."""

    type: RecipientType
    id: str
    name: str | None = None
    locale: str = "de"
    email: str | None = None
    phone: str | None = None
    webhook_url: str | None = None

    @property
    def key(self) -> str:
        return f"{self.type.value}:{self.id}"

    def address(self, channel: Channel) -> str | None:
        if channel is Channel.EMAIL:
            return self.email
        if channel is Channel.SMS:
            return self.phone
        if channel is Channel.WEBHOOK:
            return self.webhook_url
        return None


class ChannelSetting(Frozen):
    """The effective setting of one event on one channel for one recipient, after the hierarchy merge."""

    channel: Channel
    enabled: bool
    fallback_channel: Channel | None = None
    retry_count: int = Field(default=3, ge=0)
    retry_delay_minutes: int = Field(default=5, ge=0)
    template_override: str | None = None
    # Which level supplied each key ("company:7", "staff:…"); "default" = the catalogue and settings.
    sources: dict[str, str] = Field(default_factory=dict)


class PlannedDelivery(Frozen):
    """One message to send: the input of the delivery activity."""

    event: NotifyEvent
    recipient: Recipient
    channel: Channel
    address: str
    retry_count: int = Field(ge=0)
    retry_delay_minutes: int = Field(ge=0)
    template_override: str | None = None
    # None = at once; else the end of the branch's quiet hours.
    not_before: datetime | None = None
    # The most one send on this channel may take (its enforced deadline, from the worker's channel
    # timeouts): the delivery activity's start-to-close and lease are derived from it. None in plans
    # made before it existed.
    send_timeout_seconds: float | None = Field(default=None, gt=0)
    # The same message on the configured fallback channel, sent when this one failed for good.
    fallback: PlannedDelivery | None = None

    @property
    def message_id(self) -> uuid.UUID:
        return delivery_message_id(self.event.event_id, self.recipient.key, self.channel.value)


class AbandonedDelivery(Frozen):
    """A delivery the workflow gives up on for reasons other than the channel (our infrastructure kept
    failing): recorded as failed with `reason`, so no row stays `sending` or `pending` for ever."""

    planned: PlannedDelivery
    reason: str


class DeliveryOutcome(Frozen):
    status: DeliveryStatus
    attempts: int
    # False when the record said it was already sent: this run sent nothing.
    sent_now: bool


# --- what the store answers the API with ---------------------------------------------------------


class CatalogueEntry(Frozen):
    event_type: str
    label: str
    category: str
    default_channels: list[Channel]
    is_system_event: bool
    is_active: bool = True
    audience: list[Audience] = Field(default_factory=list)
    description: str | None = None


class StoredNotificationSetting(Frozen):
    id: int
    company_id: int
    level: str
    entity_id: str
    event_type: str
    channel: Channel
    is_enabled: bool
    fallback_channel: Channel | None
    retry_count: int
    retry_delay_minutes: int
    template_override: str | None


class EffectiveSetting(Frozen):
    event_type: str
    setting: ChannelSetting


class DeliveryRecord(Frozen):
    id: int
    company_id: int
    event_id: str
    event_type: str
    subject_type: str
    subject_id: str
    recipient: str
    recipient_type: RecipientType
    address: str
    channel: Channel
    message_id: uuid.UUID
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    scheduled_for: datetime | None
    sent_at: datetime | None
    created_at: datetime


class NotificationStart(Frozen):
    """One NotifyEventWorkflow to start, under an id derived from its event (so never twice)."""

    workflow_id: str
    event: NotifyEvent


class StartNotifications(Frozen):
    starts: list[NotificationStart]
