"""Who the engine works for: companies, their branches, services, staff and customers, and the API keys
that act for them. Every row below a company carries `company_id`, which is what scopes every query."""

from __future__ import annotations

import uuid
from datetime import datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Time, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.tables.base import ABSENCE_KINDS, API_KEY_ROLES, Base, Timestamps, company_fk, one_of


def _external_id_unique(table: str) -> Index:
    """One row per (company, external id); rows without one never collide."""
    return Index(
        f"{table}_uniq_company_external_id",
        "company_id",
        "external_id",
        unique=True,
        postgresql_where=text("external_id IS NOT NULL"),
    )


class Company(Timestamps, Base):
    __tablename__ = "companies"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    time_zone: Mapped[str] = mapped_column(String(64), server_default="UTC")
    currency: Mapped[str] = mapped_column(String(3), server_default="EUR")
    webhook_url: Mapped[str | None] = mapped_column(String(2048))
    webhook_secret: Mapped[str | None] = mapped_column(String(255))
    # After a rotation the previous secret still signs/verifies until this instant (receivers catch up).
    webhook_secret_previous: Mapped[str | None] = mapped_column(String(255))
    webhook_secret_previous_until: Mapped[datetime | None]
    # The secret Cal.com signs its webhooks to us with (X-Cal-Signature-256).
    calcom_webhook_secret: Mapped[str | None] = mapped_column(String(255))
    # When customers may be called, in their own time zone; NULL = the engine's default (08:00-20:00).
    dial_window_start: Mapped[time | None] = mapped_column(Time)
    dial_window_end: Mapped[time | None] = mapped_column(Time)

    __table_args__ = (
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso4217"),
        CheckConstraint("(dial_window_start IS NULL) = (dial_window_end IS NULL)", name="dial_window_pair"),
    )


class Branch(Timestamps, Base):
    __tablename__ = "branches"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    company_id: Mapped[int] = company_fk()
    name: Mapped[str] = mapped_column(String(255))
    time_zone: Mapped[str] = mapped_column(String(64), server_default="UTC")
    # models/calendars.py WeeklyHours: {"mon": [["09:00", "17:00"]], ...}; {} = no hours given (always open).
    opening_hours: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    # The branch's own closed days, models/calendars.py Closure: [{"start": "2026-12-24", "end": ...}, ...].
    closures: Mapped[list[Any]] = mapped_column(server_default=text("'[]'::jsonb"))
    # Public holidays come from the `holidays` package for this country (ISO 3166-1) and subdivision.
    country: Mapped[str | None] = mapped_column(String(2))
    subdivision: Mapped[str | None] = mapped_column(String(16))
    dial_window_start: Mapped[time | None] = mapped_column(Time)
    dial_window_end: Mapped[time | None] = mapped_column(Time)
    phone_number: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(255))
    # Branch-local wall-clock times; NULL = the engine's default quiet hours, start = end = none at all.
    quiet_hours_start: Mapped[time | None] = mapped_column(Time)
    quiet_hours_end: Mapped[time | None] = mapped_column(Time)

    __table_args__ = (
        CheckConstraint("(quiet_hours_start IS NULL) = (quiet_hours_end IS NULL)", name="quiet_hours_pair"),
        CheckConstraint("(dial_window_start IS NULL) = (dial_window_end IS NULL)", name="dial_window_pair"),
        Index("branches_idx_company", "company_id"),
    )


class Service(Timestamps, Base):
    __tablename__ = "services"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    company_id: Mapped[int] = company_fk()
    branch_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("branches.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    duration_minutes: Mapped[int] = mapped_column(Integer, server_default="30")
    price: Mapped[Decimal] = mapped_column(server_default="0")
    calcom_event_type_id: Mapped[int | None] = mapped_column(BigInteger)
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    # The tenant's own id of the row, what CSV re-imports are keyed by.
    external_id: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        _external_id_unique("services"),
        CheckConstraint("duration_minutes > 0", name="duration_positive"),
        CheckConstraint("price >= 0", name="price_not_negative"),
        Index("services_idx_company", "company_id"),
        Index("services_idx_branch", "branch_id"),
    )


class Staff(Timestamps, Base):
    __tablename__ = "staff"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    company_id: Mapped[int] = company_fk()
    branch_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("branches.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255))
    phone_number: Mapped[str | None] = mapped_column(String(32))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    is_manager: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # The language of the staff member's notifications (de, en).
    locale: Mapped[str] = mapped_column(String(8), server_default="de")
    max_open_callbacks: Mapped[int | None] = mapped_column(Integer)
    # models/calendars.py WeeklyHours in the branch's time zone; NULL = the branch's opening hours.
    working_hours: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    external_id: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        _external_id_unique("staff"),
        CheckConstraint("max_open_callbacks IS NULL OR max_open_callbacks >= 0", name="capacity"),
        Index("staff_idx_company_branch_active", "company_id", "branch_id", "is_active"),
    )


class StaffAbsence(Timestamps, Base):
    """Vacation, sickness and other time off: the staff member is not on shift in [starts_at, ends_at)."""

    __tablename__ = "staff_absences"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    company_id: Mapped[int] = company_fk()
    staff_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(16), server_default="vacation")
    note: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint(one_of("kind", ABSENCE_KINDS), name="kind"),
        Index("staff_absences_idx_staff_period", "staff_id", "starts_at", "ends_at"),
    )


class StaffService(Base):
    __tablename__ = "staff_services"

    staff_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True)
    service_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("services.id", ondelete="CASCADE"), primary_key=True
    )
    company_id: Mapped[int] = company_fk()

    __table_args__ = (Index("staff_services_idx_service", "service_id"),)


class Customer(Timestamps, Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    company_id: Mapped[int] = company_fk()
    name: Mapped[str] = mapped_column(String(255))
    phone_number: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(255))
    locale: Mapped[str] = mapped_column(String(8), server_default="de")
    # The customer's own zone for dial windows; NULL = derived from the phone number's region.
    time_zone: Mapped[str | None] = mapped_column(String(64))
    external_id: Mapped[str | None] = mapped_column(String(255))
    # Set when the personal data was erased (GDPR Art. 17): the row stays for the references to it.
    erased_at: Mapped[datetime | None]

    __table_args__ = (
        _external_id_unique("customers"),
        Index("customers_idx_company", "company_id"),
        Index("customers_idx_company_phone", "company_id", "phone_number"),
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
        CheckConstraint(one_of("role", API_KEY_ROLES), name="role"),
        CheckConstraint("(role = 'super_admin') = (company_id IS NULL)", name="company_unless_super_admin"),
    )
