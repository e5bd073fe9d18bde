"""Cal.com messages: slots and bookings as they cross the workflow → activity border.

Everything here travels through Temporal's pydantic data converter, so it stays free of I/O imports.
All datetimes are timezone-aware; Cal.com's own wire format lives in `calcom/wire.py`.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_WINDOW_DAYS = 90


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def check_time_zone(value: str) -> str:
    """An IANA zone name (what Cal.com's `@IsTimeZone` accepts)."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}: use an IANA name such as 'Europe/Berlin'") from exc
    return value


class Slot(Frozen):
    """One bookable slot. `day` is Cal.com's date key: the slot's date in the requested time zone."""

    start: AwareDatetime
    end: AwareDatetime | None = None
    day: date
    seats_booked: int | None = None
    seats_remaining: int | None = None
    seats_total: int | None = None
    booking_uid: str | None = None


class FindSlots(Frozen):
    """Activity input of `calcom_find_slots`: the next free slots of a service.

    With `window_start` and `window_end` (e.g. the customer's preferred time window) the slots inside that
    window come back; without them the search starts at `after` (default: now) and walks forward in chunks
    up to `horizon_days`. At most `limit` slots are returned, earliest first.
    """

    service_id: int = Field(gt=0)
    company_id: int | None = Field(default=None, gt=0)
    time_zone: str | None = None
    after: AwareDatetime | None = None
    window_start: AwareDatetime | None = None
    window_end: AwareDatetime | None = None
    horizon_days: int = Field(default=14, ge=1, le=MAX_WINDOW_DAYS)
    limit: int = Field(default=3, ge=1, le=100)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else check_time_zone(value)

    @model_validator(mode="after")
    def _window(self) -> FindSlots:
        if (self.window_start is None) != (self.window_end is None):
            raise ValueError("window_start and window_end go together")
        if self.window_start is not None and self.window_end is not None:
            if self.window_end <= self.window_start:
                raise ValueError("window_end must be after window_start")
            if (self.window_end - self.window_start).total_seconds() > MAX_WINDOW_DAYS * 86_400:
                raise ValueError(f"windows longer than {MAX_WINDOW_DAYS} days are refused")
        return self


class FoundSlots(Frozen):
    """Activity result of `calcom_find_slots`. `slots` is empty when nothing is free; `note` says why
    nothing was searched at all (e.g. the service has no Cal.com event type)."""

    service_id: int
    event_type_id: int | None
    time_zone: str
    searched_from: AwareDatetime
    searched_until: AwareDatetime
    slots: list[Slot] = Field(default_factory=list)
    note: str | None = None

    @property
    def first(self) -> Slot | None:
        return self.slots[0] if self.slots else None


class Attendee(Frozen):
    name: str = Field(min_length=1, max_length=255)
    email: str | None = Field(default=None, max_length=255)
    phone_number: str | None = Field(default=None, max_length=32)
    time_zone: str
    language: str | None = Field(default=None, max_length=10)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_time_zone(value)

    @model_validator(mode="after")
    def _contact(self) -> Attendee:
        if not self.email and not self.phone_number:
            raise ValueError("an attendee needs an email or a phone number")
        return self


class CreateBooking(Frozen):
    event_type_id: int = Field(gt=0)
    start: AwareDatetime
    attendee: Attendee
    length_in_minutes: int | None = Field(default=None, gt=0)
    metadata: dict[str, str] = Field(default_factory=dict)

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, str]) -> dict[str, str]:
        # Cal.com's limits: at most 50 keys, keys up to 40 characters, values up to 500 characters.
        if len(value) > 50:
            raise ValueError("at most 50 metadata keys")
        for key, item in value.items():
            if len(key) > 40 or len(item) > 500:
                raise ValueError("metadata keys are at most 40 and values at most 500 characters")
        return value


class CancelBooking(Frozen):
    """`read_back_first`: the cancel may already have happened (a run resumed after its answer was lost):
    read the booking back before sending it. Retried attempts always read back first."""

    uid: str = Field(min_length=1)
    reason: str | None = Field(default=None, max_length=1000)
    read_back_first: bool = False


class RescheduleBooking(Frozen):
    """`read_back_first`: as for `CancelBooking`; a rescheduled booking is found by following the old
    booking's `rescheduledToUid`, never by sending the reschedule again on the old uid."""

    uid: str = Field(min_length=1)
    start: AwareDatetime
    reason: str | None = Field(default=None, max_length=1000)
    rescheduled_by: str | None = Field(default=None, max_length=255)
    read_back_first: bool = False


class BookingStatus(StrEnum):
    ACCEPTED = "accepted"
    PENDING = "pending"  # the event type requires confirmation: valid, not yet confirmed
    CANCELLED = "cancelled"
    REJECTED = "rejected"


class Booking(BaseModel):
    """A Cal.com booking (API v2 2024-08-13), the fields the engine uses."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: int
    uid: str
    status: BookingStatus
    start: AwareDatetime
    end: AwareDatetime
    duration: int | None = None
    event_type_id: int | None = None
    title: str | None = None
    cancellation_reason: str | None = None
    rescheduling_reason: str | None = None
    rescheduled_from_uid: str | None = None
    # Set on a booking that was rescheduled: the uid of the booking that replaced it (the old one is
    # cancelled). Reading a booking back after a lost answer follows it (activities/calcom.py).
    rescheduled_to_uid: str | None = None


class ServiceCalendar(Frozen):
    """What the slot finder needs to know about a service: its Cal.com event type and home time zone
    (the branch's zone, else the company's)."""

    service_id: int
    company_id: int
    event_type_id: int | None
    duration_minutes: int
    time_zone: str


class BookingAttendee(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str | None = None
    email: str | None = None
    phone_number: str | None = None
    time_zone: str | None = None
    language: str | None = None


class ListedBooking(Booking):
    """A booking of `GET /v2/bookings` with what reconciliation needs besides: who booked it, who hosts
    it, when it last changed and how it is linked to its reschedule. Carries personal data: it stays
    inside the activity that lists it (activities/calcom_sync.py)."""

    attendees: list[BookingAttendee] = Field(default_factory=list)
    host_email: str | None = None
    created_at: AwareDatetime | None = None
    updated_at: AwareDatetime | None = None
    rescheduled: bool = False
    cancelled_by_email: str | None = None
    rescheduled_by_email: str | None = None


class BookingsPage(BaseModel):
    model_config = ConfigDict(frozen=True)

    bookings: list[ListedBooking]
    has_more: bool
