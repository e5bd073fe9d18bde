"""Cal.com bookings coming in: one change of one booking, as a webhook or the bookings list reports it
(rules/calcom_bookings.py reads both into `BookingEvent`), and the reports of the reconciliation job.

`BookingEvent` never crosses into Temporal (it carries the attendee's name and addresses): activities
build it, apply it and return counts only.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BookingChange(StrEnum):
    """What happened to the booking (Cal.com's triggers, and the list's statuses, mapped onto these)."""

    BOOKED = "booked"  # BOOKING_CREATED, BOOKING_PAID; an accepted booking in the list
    REQUESTED = "requested"  # BOOKING_REQUESTED, BOOKING_PAYMENT_INITIATED; a pending one
    RESCHEDULED = "rescheduled"  # BOOKING_RESCHEDULED: `uid` is the new booking, `previous_uid` the old
    CANCELLED = "cancelled"  # BOOKING_CANCELLED
    REJECTED = "rejected"  # BOOKING_REJECTED: the host declined a requested booking
    ENDED = "ended"  # MEETING_ENDED
    NO_SHOW = "no_show"  # BOOKING_NO_SHOW_UPDATED
    SUPERSEDED = "superseded"  # the list's old booking of a reschedule (cancelled, `rescheduled`)


class BookingPerson(Frozen):
    name: str | None = None
    email: str | None = None
    phone: str | None = None  # E.164, or None when absent or not a valid number
    time_zone: str | None = None
    locale: str | None = None


class BookingEvent(Frozen):
    trigger: str
    change: BookingChange
    # When Cal.com made the change: the webhook's `createdAt`, or the listed booking's `updatedAt`.
    occurred_at: AwareDatetime
    uid: str = Field(min_length=1, max_length=255)
    previous_uid: str | None = Field(default=None, max_length=255)
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    event_type_id: int | None = None
    accepted: bool = True  # ACCEPTED (not PENDING: awaiting the host's confirmation or a payment)
    attendee: BookingPerson | None = None
    organizer_email: str | None = None
    # Who made the change (cancelledBy / rescheduledBy): an email, compared with the organizer's.
    changed_by: str | None = None
    reason: str | None = None
    no_show: bool | None = None
    source: Literal["webhook", "reconcile"] = "webhook"

    @property
    def by_host(self) -> bool:
        """The organizer made the change (then it does not count against the customer's quota)."""
        return (
            self.changed_by is not None
            and self.organizer_email is not None
            and self.changed_by.strip().lower() == self.organizer_email.strip().lower()
        )


class SyncBookings(Frozen):
    """Activity input: reconcile one company's Cal.com bookings starting in [after, before)."""

    company_id: int = Field(gt=0)
    after: AwareDatetime
    before: AwareDatetime


class BookingSyncConfig(Frozen):
    """The schedule's argument: how many days back and ahead of now to reconcile."""

    days: int = Field(default=7, ge=1, le=90)


class SyncReport(BaseModel):
    """What one company's reconciliation found: bookings seen, and what each came to."""

    model_config = ConfigDict(extra="forbid")

    company_id: int
    seen: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    ignored: int = 0
    failed: int = 0
    problems: list[str] = Field(default_factory=list)

    def count(self, outcome: str) -> None:
        self.seen += 1
        if outcome in ("created", "updated", "unchanged", "ignored"):
            setattr(self, outcome, getattr(self, outcome) + 1)
