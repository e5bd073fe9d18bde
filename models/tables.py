"""The PostgreSQL schema as SQLAlchemy 2.0 typed models (Alembic migrations are generated from these).

Rules that the seed got wrong are fixed here: uniqueness that must ignore soft-deleted rows is a partial
unique index `WHERE deleted_at IS NULL` (a NULL inside a UNIQUE key never collides in PostgreSQL), and index
names the seed reused on several tables are prefixed with their table (index names are per schema).
"""

from __future__ import annotations

import uuid
from datetime import datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    Time,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "%(table_name)s_%(column_0_name)s_foreign",
    "pk": "pk_%(table_name)s",
}

CONFIGURABLE_TYPES = ("company", "branch", "service", "staff")
POLICY_TYPES = ("cancellation", "reschedule", "callback")
PRIORITIES = ("normal", "high", "urgent")
CALLBACK_STATUSES = ("pending", "assigned", "contacted", "completed", "expired", "cancelled")
MODIFICATION_TYPES = ("cancel", "reschedule")
CHANNELS = ("email", "sms", "webhook", "push")
API_KEY_ROLES = ("service", "staff", "admin", "super_admin")
APPOINTMENT_STATUSES = ("scheduled", "confirmed", "completed", "cancelled", "no_show")
RECIPIENT_TYPES = ("staff", "customer", "webhook")
DELIVERY_STATUSES = ("pending", "sending", "sent", "failed")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSONB,
        list[Any]: JSONB,
        Decimal: Numeric(10, 2),
        uuid.UUID: UUID(as_uuid=True),
    }


def _company_fk() -> Mapped[int]:
    return mapped_column(BigInteger, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False)


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class SoftDelete:
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)


# --- tenancy ------------------------------------------------------------------------------------


class Company(Timestamps, Base):
    __tablename__ = "companies"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    time_zone: Mapped[str] = mapped_column(String(64), server_default="UTC")
    currency: Mapped[str] = mapped_column(String(3), server_default="EUR")
    webhook_url: Mapped[str | None] = mapped_column(String(2048))
    webhook_secret: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso4217"),)


class Branch(Timestamps, Base):
    __tablename__ = "branches"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    company_id: Mapped[int] = _company_fk()
    name: Mapped[str] = mapped_column(String(255))
    time_zone: Mapped[str] = mapped_column(String(64), server_default="UTC")
    opening_hours: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    phone_number: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(255))
    # Branch-local wall-clock times; NULL = the engine's default quiet hours, start = end = none at all.
    quiet_hours_start: Mapped[time | None] = mapped_column(Time)
    quiet_hours_end: Mapped[time | None] = mapped_column(Time)

    __table_args__ = (
        CheckConstraint("(quiet_hours_start IS NULL) = (quiet_hours_end IS NULL)", name="quiet_hours_pair"),
        Index("branches_idx_company", "company_id"),
    )


class Service(Timestamps, Base):
    __tablename__ = "services"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    company_id: Mapped[int] = _company_fk()
    branch_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("branches.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    duration_minutes: Mapped[int] = mapped_column(Integer, server_default="30")
    price: Mapped[Decimal] = mapped_column(server_default="0")
    calcom_event_type_id: Mapped[int | None] = mapped_column(BigInteger)
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))

    __table_args__ = (
        CheckConstraint("duration_minutes > 0", name="duration_positive"),
        CheckConstraint("price >= 0", name="price_not_negative"),
        Index("services_idx_company", "company_id"),
        Index("services_idx_branch", "branch_id"),
    )


class Staff(Timestamps, Base):
    __tablename__ = "staff"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    company_id: Mapped[int] = _company_fk()
    branch_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("branches.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255))
    phone_number: Mapped[str | None] = mapped_column(String(32))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    is_manager: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # The language of the staff member's notifications (de, en).
    locale: Mapped[str] = mapped_column(String(8), server_default="de")
    max_open_callbacks: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint("max_open_callbacks IS NULL OR max_open_callbacks >= 0", name="capacity"),
        Index("staff_idx_company_branch_active", "company_id", "branch_id", "is_active"),
    )


class StaffService(Base):
    __tablename__ = "staff_services"

    staff_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True)
    service_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("services.id", ondelete="CASCADE"), primary_key=True
    )
    company_id: Mapped[int] = _company_fk()

    __table_args__ = (Index("staff_services_idx_service", "service_id"),)


class Customer(Timestamps, Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    company_id: Mapped[int] = _company_fk()
    name: Mapped[str] = mapped_column(String(255))
    phone_number: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(255))
    locale: Mapped[str] = mapped_column(String(8), server_default="de")

    __table_args__ = (
        Index("customers_idx_company", "company_id"),
        Index("customers_idx_company_phone", "company_id", "phone_number"),
    )


class Appointment(Timestamps, Base):
    __tablename__ = "appointments"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    company_id: Mapped[int] = _company_fk()
    branch_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("branches.id", ondelete="CASCADE"))
    service_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("services.id", ondelete="SET NULL"))
    staff_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    price: Mapped[Decimal] = mapped_column(server_default="0")
    status: Mapped[str] = mapped_column(String(16), server_default="scheduled")
    calcom_booking_uid: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        CheckConstraint(_in("status", APPOINTMENT_STATUSES), name="status"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        Index("appointments_idx_company_starts", "company_id", "starts_at"),
        Index("appointments_idx_customer", "customer_id"),
        Index("appointments_idx_calcom_booking", "calcom_booking_uid"),
    )


class ApiKey(Timestamps, Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    company_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("companies.id", ondelete="CASCADE"))
    staff_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(128), unique=True)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint(_in("role", API_KEY_ROLES), name="role"),
        CheckConstraint("(role = 'super_admin') = (company_id IS NULL)", name="company_unless_super_admin"),
    )


# --- the seven tables of the seed ----------------------------------------------------------------


class PolicyConfiguration(Timestamps, SoftDelete, Base):
    """A policy of one entity. Trigger `policy_configurations_notify` (migration 0002) NOTIFYs channel
    `policy_changed` on every change, so every process's policy cache drops it (store/settings_cache.py)."""

    __tablename__ = "policy_configurations"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    company_id: Mapped[int] = _company_fk()
    configurable_type: Mapped[str] = mapped_column(String(16))
    configurable_id: Mapped[str] = mapped_column(String(64))
    policy_type: Mapped[str] = mapped_column(String(32))
    config: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    is_override: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    overrides_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("policy_configurations.id", ondelete="SET NULL")
    )

    __table_args__ = (
        CheckConstraint(_in("configurable_type", CONFIGURABLE_TYPES), name="configurable_type"),
        CheckConstraint(_in("policy_type", POLICY_TYPES), name="policy_type"),
        Index(
            "unique_policy_per_entity",
            "company_id",
            "configurable_type",
            "configurable_id",
            "policy_type",
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index("policy_configurations_idx_company", "company_id"),
        Index("idx_polymorphic_config", "company_id", "configurable_type", "configurable_id"),
        Index("idx_policy_type", "company_id", "policy_type"),
        Index("idx_override_chain", "is_override", "overrides_id"),
        Index("policy_configurations_idx_overrides_id", "overrides_id"),
    )


class AppointmentModification(Timestamps, SoftDelete, Base):
    __tablename__ = "appointment_modifications"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    company_id: Mapped[int] = _company_fk()
    appointment_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("appointments.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id", ondelete="CASCADE"))
    modification_type: Mapped[str] = mapped_column(String(16))
    within_policy: Mapped[bool] = mapped_column(Boolean)
    fee_charged: Mapped[Decimal] = mapped_column(server_default="0")
    reason: Mapped[str | None] = mapped_column(Text)
    modified_by_type: Mapped[str | None] = mapped_column(String(32))
    modified_by_id: Mapped[str | None] = mapped_column(String(64))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB)
    # The id of the request that made this change: a retried request records one modification.
    request_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint(_in("modification_type", MODIFICATION_TYPES), name="modification_type"),
        Index(
            "appointment_modifications_unique_request",
            "company_id",
            "request_id",
            unique=True,
            postgresql_where=text("request_id IS NOT NULL"),
        ),
        CheckConstraint("fee_charged >= 0", name="fee_not_negative"),
        Index("appointment_modifications_idx_company", "company_id"),
        Index("idx_customer_mods_rolling", "company_id", "customer_id", "modification_type", "created_at"),
        Index("idx_appointment_history", "company_id", "appointment_id", "created_at"),
        Index("idx_policy_compliance", "company_id", "within_policy", "modification_type"),
        Index("idx_fee_analysis", "company_id", "fee_charged", "created_at"),
        Index("idx_modified_by", "modified_by_type", "modified_by_id"),
        Index("appointment_modifications_idx_appointment_id", "appointment_id"),
        Index("appointment_modifications_idx_customer_id", "customer_id"),
    )


class AppointmentModificationStat(Timestamps, Base):
    __tablename__ = "appointment_modification_stats"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    company_id: Mapped[int] = _company_fk()
    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id", ondelete="CASCADE"))
    stat_type: Mapped[str] = mapped_column(String(32))
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    count: Mapped[int] = mapped_column(Integer, server_default="0")
    calculated_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        CheckConstraint("stat_type IN ('cancel_30d', 'reschedule_30d')", name="stat_type"),
        CheckConstraint("count >= 0", name="count_not_negative"),
        UniqueConstraint("customer_id", "stat_type", "period_start", name="unique_customer_stat_period"),
        Index("appointment_modification_stats_idx_company", "company_id"),
        Index("idx_customer_stat_lookup", "company_id", "customer_id", "stat_type", "period_end"),
    )


class CallbackRequest(Timestamps, SoftDelete, Base):
    """The read model of one callback; its workflow (`callback-<id>`) is the only writer of its state."""

    __tablename__ = "callback_requests"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    company_id: Mapped[int] = _company_fk()
    customer_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="SET NULL")
    )
    branch_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("branches.id", ondelete="CASCADE"))
    service_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("services.id", ondelete="SET NULL"))
    staff_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    phone_number: Mapped[str] = mapped_column(String(32))
    customer_name: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255))
    preferred_time_window: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    priority: Mapped[str] = mapped_column(String(16), server_default="normal")
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    assigned_to: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    notes: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB)
    assigned_at: Mapped[datetime | None]
    contacted_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    expired_at: Mapped[datetime | None]
    expires_at: Mapped[datetime]
    completion_notes: Mapped[str | None] = mapped_column(Text)
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    contact_attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    escalation_count: Mapped[int] = mapped_column(Integer, server_default="0")
    suggested_slots: Mapped[list[Any] | None] = mapped_column(JSONB)
    version: Mapped[int] = mapped_column(Integer, server_default="0")

    __table_args__ = (
        CheckConstraint(_in("priority", PRIORITIES), name="priority"),
        CheckConstraint(_in("status", CALLBACK_STATUSES), name="status"),
        CheckConstraint("contact_attempts >= 0", name="attempts_not_negative"),
        Index("callback_requests_idx_company", "company_id"),
        Index("idx_status_priority_expires", "company_id", "status", "priority", "expires_at"),
        Index("idx_assigned_status", "company_id", "assigned_to", "status"),
        Index("idx_company_customer", "company_id", "customer_id"),
        Index("idx_company_created", "company_id", "created_at"),
        Index("callback_requests_idx_customer_id", "customer_id"),
        Index("callback_requests_idx_service_id", "service_id"),
        Index("callback_requests_idx_staff_id", "staff_id"),
        Index("callback_requests_idx_assigned_to", "assigned_to"),
        Index("callback_requests_idx_branch_id", "branch_id"),
    )


class CallbackEscalation(Timestamps, Base):
    __tablename__ = "callback_escalations"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    company_id: Mapped[int] = _company_fk()
    callback_request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("callback_requests.id", ondelete="CASCADE")
    )
    sequence: Mapped[int] = mapped_column(Integer)
    escalation_reason: Mapped[str] = mapped_column(String(64))
    escalated_from: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    escalated_to: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    escalated_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    resolution_notes: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB)

    __table_args__ = (
        # One row per escalation number: a retried activity or a replayed workflow cannot write it twice.
        UniqueConstraint("callback_request_id", "sequence", name="unique_escalation_sequence"),
        Index("callback_escalations_idx_company", "company_id"),
        Index("callback_escalations_idx_escalated_at", "company_id", "escalated_at"),
        Index("callback_escalations_idx_escalated_from", "escalated_from"),
        Index("callback_escalations_idx_escalated_to", "escalated_to"),
    )


class CallbackEventRow(Base):
    """Append-only audit trail of every callback; `seq` numbers each callback's events from 1."""

    __tablename__ = "callback_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    company_id: Mapped[int] = _company_fk()
    callback_request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("callback_requests.id", ondelete="CASCADE")
    )
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    actor: Mapped[str] = mapped_column(String(128), server_default="system")
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        UniqueConstraint("callback_request_id", "seq", name="unique_callback_event_seq"),
        Index("callback_events_idx_company_type", "company_id", "type", "occurred_at"),
    )


class NotificationConfiguration(Timestamps, SoftDelete, Base):
    """A notification setting of one entity for one event and channel. Trigger
    `notification_configurations_notify` (migration 0004) NOTIFYs channel `notification_settings_changed`
    on every change, so every process's settings cache drops it (store/settings_cache.py)."""

    __tablename__ = "notification_configurations"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    company_id: Mapped[int] = _company_fk()
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
        CheckConstraint(_in("configurable_type", CONFIGURABLE_TYPES), name="configurable_type"),
        CheckConstraint(_in("channel", CHANNELS), name="channel"),
        CheckConstraint(f"fallback_channel IS NULL OR {_in('fallback_channel', CHANNELS)}", name="fallback"),
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
    company_id: Mapped[int] = _company_fk()
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
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    scheduled_for: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint(_in("channel", CHANNELS), name="channel"),
        CheckConstraint(_in("recipient_type", RECIPIENT_TYPES), name="recipient_type"),
        CheckConstraint(_in("status", DELIVERY_STATUSES), name="status"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        UniqueConstraint("event_id", "recipient", "channel", name="unique_delivery_per_event_recipient"),
        Index("notification_deliveries_idx_company_created", "company_id", "created_at"),
        Index("notification_deliveries_idx_company_status", "company_id", "status"),
        Index("notification_deliveries_idx_subject", "company_id", "subject_type", "subject_id"),
    )
