"""The booking endpoints of `cal-api-version: 2024-08-13`: create (201), get, list (API key only), cancel
(200) and reschedule (201, a new uid; the old booking becomes cancelled). Without that header Cal.com ends
up in an old controller, which answers 500 (Cal.com issue #16924), and so does the fake. Every change
through these routes is also sent as a signed webhook when a subscriber is configured (`webhooks.py`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from devstack.calcom_fake.calendar import Calendar, FakeBooking
from devstack.calcom_fake.ratelimit import Gate, RequestRecord
from devstack.calcom_fake.webhooks import WebhookSender
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
        "updatedAt": js_iso(booking.updated_at),
        "attendees": [_attendee_json(booking.attendee)],
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
    if booking.rescheduled_to_uid is not None:
        body["rescheduledToUid"] = booking.rescheduled_to_uid
    if booking.cancelled_by is not None:
        body["cancelledByEmail"] = booking.cancelled_by
    if booking.rescheduled_by is not None:
        body["rescheduledByEmail"] = booking.rescheduled_by
    return body


def _attendee_json(attendee: dict[str, Any]) -> dict[str, Any]:
    item = {
        "name": attendee.get("name"),
        "email": attendee.get("email"),
        "timeZone": attendee.get("timeZone"),
        "language": attendee.get("language", "en"),
        "absent": False,
    }
    if attendee.get("phoneNumber"):
        item["phoneNumber"] = attendee["phoneNumber"]
    return item


# `GET /v2/bookings`: the query parameters the fake understands (anything else is refused, as the
# ValidationPipe with forbidNonWhitelisted does).
LIST_PARAMS = (
    "status",
    "attendeeEmail",
    "eventTypeId",
    "eventTypeIds",
    "afterStart",
    "beforeEnd",
    "sortStart",
    "take",
    "skip",
)
LIST_STATUSES = ("upcoming", "recurring", "past", "cancelled", "unconfirmed")
MAX_TAKE = 250


def _changed_by(request: Request, booking: FakeBooking) -> str | None:
    """Who Cal.com records as having made a change: the host when their API key calls, else the
    attendee (the booking page's cancel and reschedule links)."""
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return f"{booking.event_type.host}@example.com"
    return booking.attendee.get("email")


class BookingRoutes:
    def __init__(self, calendar: Calendar, gate: Gate, webhooks: WebhookSender) -> None:
        self._calendar = calendar
        self._gate = gate
        self._webhooks = webhooks

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
        self._webhooks.created(booking)
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
        booking.cancelled_by = _changed_by(request, booking)
        booking.updated_at = datetime.now(UTC)
        self._webhooks.cancelled(booking)
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
        by = body.get("rescheduledBy")
        new.rescheduled_by = by if isinstance(by, str) and by else _changed_by(request, old)
        old.status = "cancelled"
        old.rescheduled = True
        old.rescheduled_to_uid = new.uid
        old.updated_at = datetime.now(UTC)
        self._webhooks.rescheduled(old, new)
        return self._gate.ok({"status": "success", "data": booking_json(new)}, record, status=201)

    async def list_bookings(self, request: Request, record: RequestRecord, version: str | None) -> Response:
        """The bookings the key may read, filtered, earliest first, one page at a time (`take`/`skip`)."""
        self._guard(request, record, version)
        if not request.headers.get("authorization", "").lower().startswith("bearer "):
            raise ApiError(401, "UnauthorizedException", "ApiAuthGuard - Invalid Authorization header")
        query = dict(request.query_params)
        for name in query:
            if name not in LIST_PARAMS:
                raise invalid(f"property {name} should not exist")
        found = list(self._calendar.bookings.values())
        found = self._filter(query, found)
        take = self._count(query, "take", 100, 1, MAX_TAKE)
        skip = self._count(query, "skip", 0, 0, 10**9)
        found.sort(key=lambda b: (b.start, b.id), reverse=query.get("sortStart") == "desc")
        page = found[skip : skip + take]
        pages = max(1, -(-len(found) // take))
        pagination = {
            "totalItems": len(found),
            "remainingItems": max(0, len(found) - skip - len(page)),
            "returnedItems": len(page),
            "itemsPerPage": take,
            "currentPage": skip // take + 1,
            "totalPages": pages,
            "hasNextPage": skip + len(page) < len(found),
            "hasPreviousPage": skip > 0,
        }
        return self._gate.ok(
            {"status": "success", "data": [booking_json(b) for b in page], "pagination": pagination}, record
        )

    def _filter(self, query: dict[str, str], found: list[FakeBooking]) -> list[FakeBooking]:
        wanted: set[int] = set()
        for name in ("eventTypeId", "eventTypeIds"):
            for part in query.get(name, "").split(","):
                if part.strip():
                    if not part.strip().isdigit():
                        raise invalid(f"{name} must be an integer number")
                    wanted.add(int(part))
        if wanted:
            found = [b for b in found if b.event_type.id in wanted]
        if "attendeeEmail" in query:
            email = query["attendeeEmail"].lower()
            found = [b for b in found if str(b.attendee.get("email") or "").lower() == email]
        after = self._moment(query, "afterStart")
        if after is not None:
            found = [b for b in found if b.start >= after]
        before = self._moment(query, "beforeEnd")
        if before is not None:
            found = [b for b in found if b.end <= before]
        if "status" in query:
            statuses = [part.strip() for part in query["status"].split(",") if part.strip()]
            if any(status not in LIST_STATUSES for status in statuses):
                raise invalid(
                    f"each value in status must be one of the following values: {', '.join(LIST_STATUSES)}"
                )
            now = self._calendar.now()
            found = [b for b in found if any(self._has_status(b, status, now) for status in statuses)]
        return found

    @staticmethod
    def _moment(query: dict[str, str], name: str) -> datetime | None:
        if name not in query:
            return None
        moment = parse_iso(query[name])
        if moment is None:
            raise invalid(f"{name} must be a valid ISO 8601 date string")
        return moment

    @staticmethod
    def _has_status(booking: FakeBooking, status: str, now: datetime) -> bool:
        if status == "cancelled":
            return booking.status in ("cancelled", "rejected")
        if status == "unconfirmed":
            return booking.status == "pending"
        if status == "past":
            return booking.end <= now and booking.status != "cancelled"
        return booking.end > now and booking.status != "cancelled"  # upcoming, recurring

    @staticmethod
    def _count(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
        raw = query.get(name)
        if raw is None:
            return default
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise invalid(f"{name} must not be less than {low} and not greater than {high}")
        return int(raw)
