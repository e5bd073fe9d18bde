"""The booking endpoints of `cal-api-version: 2024-08-13`: create (201), get, cancel (200) and reschedule
(201, a new uid; the old booking becomes cancelled). Without that header Cal.com ends up in an old
controller, which answers 500 (Cal.com issue #16924), and so does the fake.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from devstack.calcom_fake.calendar import Calendar, FakeBooking
from devstack.calcom_fake.ratelimit import Gate, RequestRecord
from devstack.calcom_fake.wire import (
    BOOKINGS_VERSION,
    ApiError,
    bad_request,
    invalid,
    js_iso,
    not_found,
    parse_iso,
    valid_zone,
)


def booking_json(booking: FakeBooking) -> dict[str, Any]:
    """A booking as the 2024-08-13 endpoints answer it (the fields our client reads, and the usual rest)."""
    event_type = booking.event_type
    body: dict[str, Any] = {
        "id": booking.id,
        "uid": booking.uid,
        "title": f"{event_type.slug} between {event_type.host} and {booking.attendee.get('name')}",
        "description": "",
        "hosts": [
            {
                "id": 1,
                "name": event_type.host,
                "email": f"{event_type.host}@example.com",
                "timeZone": event_type.time_zone,
            }
        ],
        "status": booking.status,
        "start": js_iso(booking.start),
        "end": js_iso(booking.end),
        "duration": int((booking.end - booking.start).total_seconds() // 60),
        "eventTypeId": event_type.id,
        "eventType": {"id": event_type.id, "slug": event_type.slug},
        "location": "",
        "absentHost": False,
        "createdAt": js_iso(booking.created_at),
        "attendees": [
            {
                "name": booking.attendee.get("name"),
                "email": booking.attendee.get("email"),
                "timeZone": booking.attendee.get("timeZone"),
                "language": booking.attendee.get("language", "en"),
                "absent": False,
            }
        ],
        "guests": [],
        "bookingFieldsResponses": {"name": booking.attendee.get("name")},
        "metadata": booking.metadata,
    }
    if booking.cancellation_reason is not None:
        body["cancellationReason"] = booking.cancellation_reason
    if booking.rescheduling_reason is not None:
        body["reschedulingReason"] = booking.rescheduling_reason
    if booking.rescheduled_from_uid is not None:
        body["rescheduledFromUid"] = booking.rescheduled_from_uid
    if booking.rescheduled:
        body["rescheduled"] = True
    return body


class BookingRoutes:
    def __init__(self, calendar: Calendar, gate: Gate) -> None:
        self._calendar = calendar
        self._gate = gate

    def _guard(self, request: Request, record: RequestRecord, version: str | None) -> None:
        self._gate.guard(request, record)
        if version != BOOKINGS_VERSION:  # the old controller; issue #16924
            raise ApiError(500, "InternalServerErrorException", "Internal server error")

    async def _json(self, request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError as exc:
            raise invalid("Unexpected token in JSON body") from exc
        if not isinstance(body, dict):
            raise invalid("body must be a JSON object")
        return body

    def _utc_start(self, raw: Any) -> datetime:
        if not isinstance(raw, str) or parse_iso(raw) is None:
            raise invalid("start must be a valid ISO 8601 date string")
        if not (raw.endswith("Z") or raw.endswith("+00:00")):
            raise invalid("start must be in UTC timezone, e.g. 2024-08-13T09:00:00Z")
        moment = parse_iso(raw)
        assert moment is not None
        return moment

    async def create(self, request: Request, record: RequestRecord, version: str | None) -> Response:
        self._guard(request, record, version)
        body = await self._json(request)
        start = self._utc_start(body.get("start"))
        event_type_id = body.get("eventTypeId")
        if not isinstance(event_type_id, int) or isinstance(event_type_id, bool):
            raise invalid("eventTypeId must be an integer number")
        attendee = body.get("attendee")
        if not isinstance(attendee, dict):
            raise invalid("attendee must be an object")
        if not isinstance(attendee.get("name"), str) or not attendee["name"].strip():
            raise invalid("attendee.name must be a string")
        if not isinstance(attendee.get("timeZone"), str) or not valid_zone(attendee["timeZone"]):
            raise invalid("attendee.timeZone must be a valid IANA time zone")
        if not attendee.get("email") and not attendee.get("phoneNumber"):
            raise invalid("Either attendee.email or attendee.phoneNumber must be provided")
        metadata = body.get("metadata") or {}
        if (
            not isinstance(metadata, dict)
            or len(metadata) > 50
            or any(len(str(k)) > 40 or not isinstance(v, str) or len(v) > 500 for k, v in metadata.items())
        ):
            raise invalid("metadata: at most 50 keys, keys up to 40 and string values up to 500 characters")
        event_type = self._calendar.event_types.get(event_type_id)
        if event_type is None:
            raise not_found(f"Event type with id {event_type_id} not found.")
        length = body.get("lengthInMinutes") or event_type.length
        if not isinstance(length, int) or length <= 0:
            raise invalid("lengthInMinutes must be a positive integer")
        self._calendar.check_bookable(event_type, start, length)
        booking = self._calendar.store_booking(event_type, start, length, attendee, metadata=metadata)
        return self._gate.ok({"status": "success", "data": booking_json(booking)}, record, status=201)

    def _find_booking(self, request: Request) -> FakeBooking:
        uid = request.path_params["uid"]
        booking = self._calendar.bookings.get(uid)
        if booking is None:
            raise not_found(f"Booking with uid={uid} was not found in the database")
        return booking

    async def get(self, request: Request, record: RequestRecord, version: str | None) -> Response:
        self._guard(request, record, version)
        return self._gate.ok({"status": "success", "data": booking_json(self._find_booking(request))}, record)

    async def cancel(self, request: Request, record: RequestRecord, version: str | None) -> Response:
        self._guard(request, record, version)
        booking = self._find_booking(request)
        body = await self._json(request)
        if booking.status == "cancelled":
            raise bad_request("This booking has already been cancelled.")
        booking.status = "cancelled"
        reason = body.get("cancellationReason")
        booking.cancellation_reason = reason if isinstance(reason, str) else None
        return self._gate.ok({"status": "success", "data": booking_json(booking)}, record)

    async def reschedule(self, request: Request, record: RequestRecord, version: str | None) -> Response:
        self._guard(request, record, version)
        old = self._find_booking(request)
        body = await self._json(request)
        start = self._utc_start(body.get("start"))
        if old.status == "cancelled":
            raise bad_request("Can't reschedule a cancelled booking")
        length = int((old.end - old.start).total_seconds() // 60)
        self._calendar.check_bookable(old.event_type, start, length, exclude_uid=old.uid)
        reason = body.get("reschedulingReason")
        new = self._calendar.store_booking(
            old.event_type,
            start,
            length,
            old.attendee,
            metadata=old.metadata,
            rescheduled_from=old.uid,
            reason=reason if isinstance(reason, str) else None,
        )
        old.status = "cancelled"
        old.rescheduled = True
        return self._gate.ok({"status": "success", "data": booking_json(new)}, record, status=201)
