"""Who the engine works for: companies, their branches, services, staff and customers, and the API keys
that act for them. Every row below a company carries `company_id`, which is what scopes every query."""

from __future__ import annotations

import uuid
from datetime import datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Time, text
from sqlalchemy.orm import Mapped, mapped_column

from models.tables.base import API_KEY_ROLES, Base, Timestamps, company_fk, one_of


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
    company_id: Mapped[int] = company_fk()
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
    company_id: Mapped[int] = company_fk()
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

    __table_args__ = (
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
