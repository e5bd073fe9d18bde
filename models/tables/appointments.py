"""Appointments and what customers change about them: the modification log the policies count and charge
fees by, and its per-customer rolling counts."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.tables.base import (
    APPOINTMENT_STATUSES,
    MODIFICATION_TYPES,
    Base,
    SoftDelete,
    Timestamps,
    company_fk,
    one_of,
)


class Appointment(Timestamps, Base):
    __tablename__ = "appointments"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    company_id: Mapped[int] = company_fk()
    branch_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("branches.id", ondelete="CASCADE"))
    service_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("services.id", ondelete="SET NULL"))
    staff_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    price: Mapped[Decimal] = mapped_column(server_default="0")
    status: Mapped[str] = mapped_column(String(16), server_default="scheduled")
    calcom_booking_uid: Mapped[str | None] = mapped_column(String(255))
    # When Cal.com last changed this booking, as its webhook said: an older event never moves it back.
    calcom_changed_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint(one_of("status", APPOINTMENT_STATUSES), name="status"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        Index("appointments_idx_company_starts", "company_id", "starts_at"),
        Index("appointments_idx_customer", "customer_id"),
        Index("appointments_idx_calcom_booking", "calcom_booking_uid"),
    )


class AppointmentModification(Timestamps, SoftDelete, Base):
    __tablename__ = "appointment_modifications"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    company_id: Mapped[int] = company_fk()
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
        CheckConstraint(one_of("modification_type", MODIFICATION_TYPES), name="modification_type"),
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
    company_id: Mapped[int] = company_fk()
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


class AppointmentChangeRequestRow(Timestamps, Base):
    """One cancel or reschedule request of `AppointmentWorkflow`, written before Cal.com is called.

    Pending (`outcome` NULL) it holds its place in the quota (a second request counts it) and tells a
    resumed run that Cal.com may already have acted; settled, its `outcome` is the answer to every retry
    of the same request id. `plan` is the decision made at `requested_at` (no personal data)."""

    __tablename__ = "appointment_change_requests"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    company_id: Mapped[int] = company_fk()
    request_id: Mapped[str] = mapped_column(String(64))
    # No foreign key: a request for an appointment that does not exist is answered (and kept) too.
    appointment_id: Mapped[int] = mapped_column(BigInteger)
    customer_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="CASCADE")
    )
    modification_type: Mapped[str] = mapped_column(String(16))
    # sha256 of what makes the request (models/appointments.py): a reused id with another one is refused.
    fingerprint: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(String(255))
    requested_at: Mapped[datetime]
    # SQL NULL for None (not JSON `null`): "pending" is `outcome IS NULL`.
    plan: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    workflow_id: Mapped[str | None] = mapped_column(String(255))
    settled_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint(one_of("modification_type", MODIFICATION_TYPES), name="modification_type"),
        UniqueConstraint("company_id", "request_id", name="appointment_change_requests_unique_request"),
        Index(
            "appointment_change_requests_idx_pending_customer",
            "company_id",
            "customer_id",
            "modification_type",
            postgresql_where=text("outcome IS NULL"),
        ),
        Index(
            "appointment_change_requests_idx_pending_appointment",
            "company_id",
            "appointment_id",
            postgresql_where=text("outcome IS NULL"),
        ),
        Index("appointment_change_requests_idx_customer_id", "customer_id"),
    )
