"""Notification settings per company, branch, service or staff member, the catalogue of events, and the
delivery log that also guards against sending one message twice."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.tables.base import (
    CHANNELS,
    CONFIGURABLE_TYPES,
    DELIVERY_STATUSES,
    RECIPIENT_TYPES,
    Base,
    SoftDelete,
    Timestamps,
    company_fk,
    one_of,
)


class NotificationConfiguration(Timestamps, SoftDelete, Base):
    """A notification setting of one entity for one event and channel. Trigger
    `notification_configurations_notify` (migration 0004) NOTIFYs channel `notification_settings_changed`
    on every change, so every process's settings cache drops it (store/settings_cache.py)."""

    __tablename__ = "notification_configurations"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    company_id: Mapped[int] = company_fk()
    configurable_type: Mapped[str] = mapped_column(String(16))
    configurable_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    fallback_channel: Mapped[str | None] = mapped_column(String(16))
    is_enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    retry_count: Mapped[int] = mapped_column(Integer, server_default="3")
    retry_delay_minutes: Mapped[int] = mapped_column(Integer, server_default="5")
    template_override: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB)

    __table_args__ = (
        CheckConstraint(one_of("configurable_type", CONFIGURABLE_TYPES), name="configurable_type"),
        CheckConstraint(one_of("channel", CHANNELS), name="channel"),
        CheckConstraint(
            f"fallback_channel IS NULL OR {one_of('fallback_channel', CHANNELS)}", name="fallback"
        ),
        CheckConstraint("retry_count >= 0 AND retry_delay_minutes >= 0", name="retry_not_negative"),
        Index(
            "notif_config_unique_constraint",
            "company_id",
            "configurable_type",
            "configurable_id",
            "event_type",
            "channel",
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index("notif_config_company_idx", "company_id"),
        Index(
            "notif_config_lookup_idx",
            "company_id",
            "configurable_type",
            "configurable_id",
            "event_type",
            "channel",
        ),
        Index("notif_config_event_enabled_idx", "company_id", "event_type", "is_enabled"),
        Index("notif_config_polymorphic_idx", "configurable_type", "configurable_id"),
    )


class NotificationEventMapping(Timestamps, SoftDelete, Base):
    __tablename__ = "notification_event_mappings"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_type: Mapped[str] = mapped_column(String(64))
    event_label: Mapped[str] = mapped_column(String(255))
    event_category: Mapped[str] = mapped_column(String(32))
    default_channels: Mapped[list[Any]] = mapped_column(server_default=text("'[]'::jsonb"))
    description: Mapped[str | None] = mapped_column(Text)
    is_system_event: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB)

    __table_args__ = (
        Index(
            "notification_event_mappings_event_type_unique",
            "event_type",
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index("notification_event_mappings_idx_event_category", "event_category"),
        Index("notification_event_mappings_idx_is_system_event", "is_system_event"),
    )


class NotificationDelivery(Timestamps, Base):
    """One message of one event to one recipient on one channel: the delivery log, and the guard that
    keeps a retried activity or a re-run workflow from sending it again (unique event, recipient, channel).
    """

    __tablename__ = "notification_deliveries"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    company_id: Mapped[int] = company_fk()
    event_id: Mapped[str] = mapped_column(String(128))
    event_type: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(128))
    recipient_type: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(2048))
    channel: Mapped[str] = mapped_column(String(16))
    # Stable per (event, recipient, channel): the Message-ID of a mail, X-Event-Id of a webhook.
    message_id: Mapped[uuid.UUID]
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    # Sends started (claims); `failures`: of them, the ones the channel failed (what the tenant's
    # retry_count is counted against: our own errors never use it up).
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    failures: Mapped[int] = mapped_column(Integer, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    scheduled_for: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    # The attempt that is sending (`sending` rows) and until when it may: another attempt takes the row
    # only after `lease_until` (store/notification_lease.py).
    lease_owner: Mapped[str | None] = mapped_column(String(256))
    lease_until: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint(one_of("channel", CHANNELS), name="channel"),
        CheckConstraint(one_of("recipient_type", RECIPIENT_TYPES), name="recipient_type"),
        CheckConstraint(one_of("status", DELIVERY_STATUSES), name="status"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        CheckConstraint("failures >= 0", name="failures_not_negative"),
        UniqueConstraint("event_id", "recipient", "channel", name="unique_delivery_per_event_recipient"),
        Index("notification_deliveries_idx_company_created", "company_id", "created_at"),
        Index("notification_deliveries_idx_company_status", "company_id", "status"),
        Index("notification_deliveries_idx_subject", "company_id", "subject_type", "subject_id"),
    )
