"""What every table shares: the declarative base with our naming convention and column types, the value
lists the CHECK constraints allow, and the company foreign key, timestamps and soft delete."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, MetaData, Numeric, func
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
SLA_CLOCKS = ("calendar", "business_hours")
MODIFICATION_TYPES = ("cancel", "reschedule")
CHANNELS = ("email", "sms", "webhook", "push")
API_KEY_ROLES = ("service", "staff", "admin", "super_admin")
APPOINTMENT_STATUSES = ("scheduled", "confirmed", "completed", "cancelled", "no_show")
RECIPIENT_TYPES = ("staff", "customer", "webhook")
DELIVERY_STATUSES = ("pending", "sending", "sent", "failed")
ABSENCE_KINDS = ("vacation", "sick", "other")


def one_of(column: str, values: tuple[str, ...]) -> str:
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


def company_fk() -> Mapped[int]:
    return mapped_column(BigInteger, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False)


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class SoftDelete:
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
