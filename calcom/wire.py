"""Cal.com API v2 on the wire: the `cal-api-version` of each endpoint, the parameter forms Cal.com's
strict validation accepts, the booking payload, and reading its answers into our models. Pure (no I/O), so
the client (`calcom/client.py`) and the benchmarks share it and the tests check it without a server.

Slots use `2024-09-04` and bookings `2024-08-13`: the only versions whose behaviour the client is written
for (the fake in `devstack/calcom_fake/` reproduces both).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from calcom.errors import CalcomProtocolError
from models.calcom import (
    Booking,
    BookingAttendee,
    BookingsPage,
    BookingStatus,
    CreateBooking,
    ListedBooking,
    Slot,
)

SLOTS_VERSION = "2024-09-04"
BOOKINGS_VERSION = "2024-08-13"


def utc_param(moment: datetime) -> str:
    """A full UTC ISO datetime with milliseconds, the form Cal.com's strict `IsDateString` accepts."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: Cal.com times must be timezone-aware")
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def end_param(end: datetime) -> str:
    """Cal.com moves an `end` at exactly 00:00:00 UTC to 23:59:59 of that day: send 1 ms earlier instead,
    so a window ending at midnight does not silently grow by a day."""
    utc = end.astimezone(UTC)
    if (utc.hour, utc.minute, utc.second) == (0, 0, 0) and utc.microsecond < 1000:
        utc = utc.replace(microsecond=0) - timedelta(milliseconds=1)
    return utc_param(utc)


class _WireSlot(BaseModel):
    """One item of `data[date]` in the 2024-09-04 answer; unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    start: AwareDatetime
    end: AwareDatetime | None = None
    seats_booked: int | None = Field(default=None, alias="seatsBooked")
    seats_remaining: int | None = Field(default=None, alias="seatsRemaining")
    seats_total: int | None = Field(default=None, alias="seatsTotal")
    booking_uid: str | None = Field(default=None, alias="bookingUid")


def parse_slots(body: Any) -> list[Slot]:
    """`{"status":"success","data":{"YYYY-MM-DD":[{start,end,...}]}}` → slots sorted by start.
    `data: {}` (or an empty list) means no availability."""
    if not isinstance(body, dict) or "data" not in body:
        raise CalcomProtocolError("slots answer without `data`")
    if body.get("status") not in (None, "success"):
        raise CalcomProtocolError(f"slots answer with status {body.get('status')!r}")
    data = body["data"]
    if data in ({}, [], None):
        return []
    if not isinstance(data, dict):
        raise CalcomProtocolError(f"slots `data` is a {type(data).__name__}, expected an object of dates")
    slots: list[Slot] = []
    try:
        for key, items in data.items():
            day = date.fromisoformat(key)
            if not isinstance(items, list):
                raise CalcomProtocolError(f"slots of {key} are not a list")
            for item in items:
                wire = _WireSlot.model_validate(item)
                slots.append(
                    Slot(
                        start=wire.start,
                        end=wire.end,
                        day=day,
                        seats_booked=wire.seats_booked,
                        seats_remaining=wire.seats_remaining,
                        seats_total=wire.seats_total,
                        booking_uid=wire.booking_uid,
                    )
                )
    except (ValidationError, ValueError) as exc:
        raise CalcomProtocolError(f"unreadable slots answer: {exc}") from exc
    slots.sort(key=lambda slot: (slot.start, slot.day))
    return slots


def parse_booking(body: Any) -> Booking:
    """The `data` of a 2024-08-13 booking answer (one booking) → `Booking`; extra fields ignored."""
    data = body.get("data") if isinstance(body, dict) else None
    if isinstance(data, list) and data:  # recurring bookings come back as a list: the first occurrence
        data = data[0]
    if not isinstance(data, dict):
        raise CalcomProtocolError("booking answer without a booking in `data`")
    fields = _booking_fields(data)
    try:
        return Booking(**fields)
    except ValidationError as exc:
        raise CalcomProtocolError(f"unreadable booking answer: {exc}") from exc


def _booking_fields(data: dict[str, Any]) -> dict[str, Any]:
    event_type = data.get("eventType")
    event_type_id = data.get("eventTypeId")
    if event_type_id is None and isinstance(event_type, dict):
        event_type_id = event_type.get("id")
    try:
        fields = {
            "id": data["id"],
            "uid": data["uid"],
            "status": BookingStatus(str(data["status"]).lower()),
            "start": data["start"],
            "end": data["end"],
            "duration": data.get("duration"),
            "event_type_id": event_type_id,
            "title": data.get("title"),
            "cancellation_reason": data.get("cancellationReason"),
            "rescheduling_reason": data.get("reschedulingReason"),
            "rescheduled_from_uid": data.get("rescheduledFromUid"),
            "rescheduled_to_uid": data.get("rescheduledToUid"),
        }
        return fields
    except (KeyError, ValueError) as exc:
        raise CalcomProtocolError(f"unreadable booking answer: {exc}") from exc


def _listed_booking(data: Any) -> ListedBooking:
    if not isinstance(data, dict):
        raise CalcomProtocolError("bookings list item is not an object")
    fields = _booking_fields(data)
    hosts = data.get("hosts")
    host = hosts[0] if isinstance(hosts, list) and hosts and isinstance(hosts[0], dict) else {}
    listed = data.get("attendees")
    attendees = listed if isinstance(listed, list) else []
    try:
        return ListedBooking(
            **fields,
            attendees=[
                BookingAttendee(
                    name=item.get("name"),
                    email=item.get("email"),
                    phone_number=item.get("phoneNumber"),
                    time_zone=item.get("timeZone"),
                    language=item.get("language") if isinstance(item.get("language"), str) else None,
                )
                for item in attendees
                if isinstance(item, dict)
            ],
            host_email=host.get("email"),
            created_at=data.get("createdAt"),
            updated_at=data.get("updatedAt"),
            rescheduled=bool(data.get("rescheduled")),
            cancelled_by_email=data.get("cancelledByEmail"),
            rescheduled_by_email=data.get("rescheduledByEmail"),
        )
    except ValidationError as exc:
        raise CalcomProtocolError(f"unreadable booking in the list: {exc}") from exc


def parse_bookings_page(body: Any, *, take: int) -> BookingsPage:
    """`GET /v2/bookings`: `data` is a list of bookings; `pagination.hasNextPage` says whether more follow
    (without a pagination object: a full page means there may be more)."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise CalcomProtocolError("bookings list answer without a list in `data`")
    pagination = body.get("pagination")
    if isinstance(pagination, dict) and isinstance(pagination.get("hasNextPage"), bool):
        has_more = pagination["hasNextPage"]
    else:
        has_more = len(data) >= take
    return BookingsPage(bookings=[_listed_booking(item) for item in data], has_more=has_more)


def booking_payload(booking: CreateBooking) -> dict[str, Any]:
    """The body of `POST /v2/bookings`: optional fields only when set (Cal.com validates what it gets)."""
    attendee: dict[str, Any] = {"name": booking.attendee.name, "timeZone": booking.attendee.time_zone}
    if booking.attendee.email:
        attendee["email"] = booking.attendee.email
    if booking.attendee.phone_number:
        attendee["phoneNumber"] = booking.attendee.phone_number
    if booking.attendee.language:
        attendee["language"] = booking.attendee.language
    payload: dict[str, Any] = {
        "start": utc_param(booking.start),
        "eventTypeId": booking.event_type_id,
        "attendee": attendee,
    }
    if booking.length_in_minutes:
        payload["lengthInMinutes"] = booking.length_in_minutes
    if booking.metadata:
        payload["metadata"] = booking.metadata
    return payload
