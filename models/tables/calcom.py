"""What the engine keeps of Cal.com's bookings beside the appointments: every booking uid an appointment was
known by (a reschedule in Cal.com makes a new uid; a late event for the old one must still find it), and
the log of the webhooks received (the audit trail, and the guard against processing a redelivery twice);
and the request budget of each API key, which every process spends together.

None holds personal data (attendee names and addresses go to `customers` only) nor an API key.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from models.tables.base import Base, company_fk


class CalcomBookingUid(Base):
    """One Cal.com booking uid of an appointment (the current one and every one it was rescheduled from)."""

    __tablename__ = "calcom_booking_uids"

    company_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True
    )
    uid: Mapped[str] = mapped_column(String(255), primary_key=True)
    appointment_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("appointments.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (Index("calcom_booking_uids_idx_appointment", "appointment_id"),)


class CalcomWebhookDelivery(Base):
    """One signed webhook Cal.com delivered, and what it came to. A redelivery (same trigger, booking uid
    and `createdAt`) finds its row and changes nothing."""

    __tablename__ = "calcom_webhook_deliveries"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    company_id: Mapped[int] = company_fk()
    trigger_event: Mapped[str] = mapped_column(String(64))
    booking_uid: Mapped[str | None] = mapped_column(String(255))
    # The envelope's `createdAt`: when Cal.com generated the event.
    event_at: Mapped[datetime | None]
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(String(500))
    appointment_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("appointments.id", ondelete="SET NULL")
    )
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        Index(
            "calcom_webhook_deliveries_unique_event",
            "company_id",
            "trigger_event",
            "booking_uid",
            "event_at",
            unique=True,
        ),
        Index("calcom_webhook_deliveries_idx_company_received", "company_id", "received_at"),
    )


class CalcomRateBudget(Base):
    """One Cal.com API key's request budget, shared by every process that uses the key (Cal.com counts
    per key, so per-process budgets together overspend it). Kept under a hash of the key (with the Cal.com
    URL), never the key itself. The columns are `rules.calcom_budget.BudgetState`; `store/calcom_budget.py`
    changes them under a row lock, on the database's clock."""

    __tablename__ = "calcom_rate_budgets"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_limit: Mapped[int | None]
    remaining: Mapped[int | None]
    reset_at: Mapped[datetime | None]
    blocked_until: Mapped[datetime | None]
    block_source: Mapped[str | None] = mapped_column(String(16))
    last_sent_at: Mapped[datetime | None]
    sent: Mapped[int] = mapped_column(BigInteger, server_default="0")
    window_first_ticket: Mapped[int] = mapped_column(BigInteger, server_default="0")
    last_observed_ticket: Mapped[int] = mapped_column(BigInteger, server_default="-1")
    probe_ticket: Mapped[int | None] = mapped_column(BigInteger)
    probe_until: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
