"""The callback read model, its escalations and its audit trail. The workflow is the only writer of a
callback's state; these rows are what the API, the console and the sweeps read."""

from __future__ import annotations

import uuid
from datetime import datetime, time
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Time,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.tables.base import (
    CALLBACK_STATUSES,
    PRIORITIES,
    SLA_CLOCKS,
    Base,
    SoftDelete,
    Timestamps,
    company_fk,
    one_of,
)


class CallbackRequest(Timestamps, SoftDelete, Base):
    """The read model of one callback; its workflow (`c<company>.callback-<id>`, or `callback-<id>` for
    callbacks started before tenant workflow ids) is the only writer of its state."""

    __tablename__ = "callback_requests"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    company_id: Mapped[int] = company_fk()
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
    # The clock its SLA runs on (rules/sla.py): `expires_at` is always the wall-clock deadline of that clock.
    sla_clock: Mapped[str] = mapped_column(String(16), server_default="calendar")
    # When the customer may be called (models/dial_window.py): allowed hours in their zone, and their
    # preferred window while it lasts. NULL for callbacks made before dial windows (no restriction known).
    dial_time_zone: Mapped[str | None] = mapped_column(String(64))
    dial_window_start: Mapped[time | None] = mapped_column(Time)
    dial_window_end: Mapped[time | None] = mapped_column(Time)
    dial_not_before: Mapped[datetime | None]
    dial_not_after: Mapped[datetime | None]
    # The workflow that writes this row, as it wrote it; NULL for rows written before the column existed,
    # whose workflow is `callback-<id>` (models/callbacks.py: stored_callback_workflow_id).
    workflow_id: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        CheckConstraint(one_of("priority", PRIORITIES), name="priority"),
        CheckConstraint(one_of("sla_clock", SLA_CLOCKS), name="sla_clock"),
        CheckConstraint(one_of("status", CALLBACK_STATUSES), name="status"),
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
    company_id: Mapped[int] = company_fk()
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
    company_id: Mapped[int] = company_fk()
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
