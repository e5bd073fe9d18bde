"""The fake's calendar: event types with weekly working hours in their own time zone, the bookings, and
the free slots they leave, computed the way Cal.com does (wall-clock steps, the host's bookings block)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from devstack.calcom_fake.wire import bad_request

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass
class EventType:
    """A Cal.com event type. `hours` maps a weekday (0 = Monday) to working intervals in minutes after
    local midnight, e.g. `{0: [(540, 1020)]}` = Monday 09:00–17:00 in `time_zone`."""

    id: int
    slug: str
    length: int = 30
    time_zone: str = "UTC"
    hours: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    host: str = "host"
    slot_interval: int | None = None
    minimum_booking_notice: int = 0
    requires_confirmation: bool = False


def working_hours(days: str, start: str, end: str) -> dict[int, list[tuple[int, int]]]:
    """`working_hours("mon-fri", "09:00", "17:00")`; days as a range or a comma list of `mon`..`sun`."""

    def minutes(text: str) -> int:
        hours, mins = text.split(":")
        return int(hours) * 60 + int(mins)

    if "-" in days:
        first, last = (WEEKDAYS.index(d) for d in days.split("-"))
        selected = list(range(first, last + 1))
    else:
        selected = [WEEKDAYS.index(d) for d in days.split(",")]
    return {day: [(minutes(start), minutes(end))] for day in selected}


@dataclass
class FakeBooking:
    id: int
    uid: str
    event_type: EventType
    start: datetime
    end: datetime
    status: str
    attendee: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    cancellation_reason: str | None = None
    rescheduling_reason: str | None = None
    rescheduled_from_uid: str | None = None
    rescheduled: bool = False
    rescheduled_to_uid: str | None = None
    cancelled_by: str | None = None
    rescheduled_by: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def blocks_time(self) -> bool:
        return self.status in ("accepted", "pending")


def demo_event_types() -> list[EventType]:
    """The event types of the demo tenant (`devstack/demo.py`): Mon–Fri 08:00–18:00."""
    weekdays = working_hours("mon-fri", "08:00", "18:00")
    return [
        EventType(1001, "checkup", 30, "Europe/Berlin", weekdays, host="anna"),
        EventType(1002, "cleaning", 45, "Europe/Berlin", weekdays, host="lena"),
        EventType(1003, "consultation", 20, "Europe/Lisbon", weekdays, host="mateus"),
        EventType(1004, "video-consultation", 15, "Europe/Berlin", weekdays, host="ines"),
    ]


class Calendar:
    def __init__(self, event_types: list[EventType], now: Callable[[], datetime]) -> None:
        self.event_types: dict[int, EventType] = {}
        for event_type in event_types:
            self.add_event_type(event_type)
        self.bookings: dict[str, FakeBooking] = {}
        self.now = now
        self._next_booking_id = 1

    def add_event_type(self, event_type: EventType) -> EventType:
        self.event_types[event_type.id] = event_type
        return event_type

    def free_slots(
        self,
        event_type: EventType,
        start: datetime,
        end: datetime,
        *,
        length: int | None = None,
        exclude_uid: str | None = None,
    ) -> list[datetime]:
        """UTC starts of the free slots in [max(start, now + notice), end]."""
        length = length or event_type.length
        step = timedelta(minutes=event_type.slot_interval or length)
        span = timedelta(minutes=length)
        earliest = max(start, self.now() + timedelta(minutes=event_type.minimum_booking_notice))
        zone = ZoneInfo(event_type.time_zone)
        busy = [
            (booking.start, booking.end)
            for booking in self.bookings.values()
            if booking.blocks_time
            and booking.event_type.host == event_type.host
            and booking.uid != exclude_uid
        ]
        found: list[datetime] = []
        day = earliest.astimezone(zone).date() - timedelta(days=1)
        last_day = end.astimezone(zone).date() + timedelta(days=1)
        while day <= last_day:
            midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
            for open_minute, close_minute in event_type.hours.get(day.weekday(), []):
                local = midnight + timedelta(minutes=open_minute)  # wall-clock arithmetic in `zone`
                close = midnight + timedelta(minutes=close_minute)
                while local + span <= close:
                    utc = local.astimezone(UTC)
                    if earliest <= utc <= end and not any(
                        utc < busy_end and busy_start < utc + span for busy_start, busy_end in busy
                    ):
                        found.append(utc)
                    local += step
            day += timedelta(days=1)
        return sorted(set(found))

    def check_bookable(
        self, event_type: EventType, start: datetime, length: int, exclude_uid: str | None = None
    ) -> None:
        now = self.now()
        if start < now:
            raise bad_request("Attempting to book a meeting in the past.")
        if start < now + timedelta(minutes=event_type.minimum_booking_notice) or start > now + timedelta(
            days=365
        ):
            raise bad_request(
                "The event type can't be booked at the \"start\" time provided. This could be because it's "
                "too soon (violating the minimum booking notice) or too far in the future (outside the event "
                "type's booking window). Try fetching available slots first using the GET /v2/slots endpoint "
                'and then make a booking with "start" time equal to one of the available slots.'
            )
        if start not in self.free_slots(event_type, start, start, length=length, exclude_uid=exclude_uid):
            raise bad_request("User either already has booking at this time or is not available")

    def store_booking(
        self,
        event_type: EventType,
        start: datetime,
        length: int,
        attendee: dict[str, Any],
        *,
        metadata: dict[str, Any] | None = None,
        rescheduled_from: str | None = None,
        reason: str | None = None,
    ) -> FakeBooking:
        booking = FakeBooking(
            id=self._next_booking_id,
            uid=uuid.uuid4().hex[:22],
            event_type=event_type,
            start=start,
            end=start + timedelta(minutes=length),
            status="pending" if event_type.requires_confirmation else "accepted",
            attendee=attendee,
            metadata=metadata or {},
            rescheduled_from_uid=rescheduled_from,
            rescheduling_reason=reason,
        )
        self._next_booking_id += 1
        self.bookings[booking.uid] = booking
        return booking
