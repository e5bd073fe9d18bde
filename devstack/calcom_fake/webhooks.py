"""The fake's webhooks: when a booking is created, cancelled or rescheduled through its API, it POSTs the
event to the configured subscriber URL the way Cal.com does (shared/calcom-api.md §6): the envelope
`{triggerEvent, createdAt, payload}`, the booking payload with its uppercase status, the reschedule and
cancel extras, `Content-Type: application/json` and `X-Cal-Signature-256` = hex HMAC-SHA256 of the raw body
(`no-secret-provided` without a secret).

Delivery is asynchronous and best-effort, like Cal.com's: the API answer never waits for it and a failed
delivery is only recorded. Tests can pause delivery (`paused`: the events are recorded as dropped, as a
lost webhook would be) and wait for the sends in flight (`drain`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from devstack.calcom_fake.calendar import FakeBooking
from devstack.calcom_fake.wire import js_iso

NO_SECRET = "no-secret-provided"


@dataclass
class WebhookSubscription:
    url: str | None = None
    secret: str | None = None
    paused: bool = False


@dataclass
class SentWebhook:
    trigger: str
    uid: str
    body: bytes
    status: int | None = None  # the subscriber's answer; None while in flight, dropped or failed
    error: str | None = None
    dropped: bool = False


def _utc(moment: datetime) -> str:
    """Cal.com's payload times: UTC, no milliseconds (`2024-08-13T09:00:00Z`)."""
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%S}Z"


def _offset_minutes(zone: str | None, at: datetime) -> int:
    try:
        offset = at.astimezone(ZoneInfo(zone or "UTC")).utcoffset()
    except (KeyError, ValueError):
        return 0
    return int(offset.total_seconds() // 60) if offset else 0


def booking_payload(booking: FakeBooking) -> dict[str, Any]:
    """The `payload` of a booking webhook (the CalendarEvent Cal.com sends, with its usual fields)."""
    event_type = booking.event_type
    attendee = booking.attendee
    name = attendee.get("name") or ""
    first, _, last = name.partition(" ")
    person: dict[str, Any] = {
        "email": attendee.get("email") or "",
        "name": name,
        "firstName": first,
        "lastName": last,
        "timeZone": attendee.get("timeZone"),
        "language": {"locale": attendee.get("language", "en")},
        "utcOffset": _offset_minutes(attendee.get("timeZone"), booking.start),
    }
    responses: dict[str, Any] = {
        "name": {"label": "your_name", "value": name},
        "email": {"label": "email_address", "value": attendee.get("email") or ""},
    }
    if attendee.get("phoneNumber"):
        person["phoneNumber"] = attendee["phoneNumber"]
        responses["attendeePhoneNumber"] = {"label": "phone_number", "value": attendee["phoneNumber"]}
    return {
        "type": event_type.slug,
        "title": f"{event_type.slug} between {event_type.host} and {name}",
        "description": "",
        "additionalNotes": "",
        "customInputs": {},
        "startTime": _utc(booking.start),
        "endTime": _utc(booking.end),
        "organizer": {
            "id": 1,
            "name": event_type.host,
            "email": f"{event_type.host}@example.com",
            "username": event_type.host,
            "timeZone": event_type.time_zone,
            "language": {"locale": "en"},
            "timeFormat": "h:mma",
            "utcOffset": _offset_minutes(event_type.time_zone, booking.start),
        },
        "responses": responses,
        "userFieldsResponses": {},
        "attendees": [person],
        "location": "",
        "destinationCalendar": None,
        "hideCalendarNotes": False,
        "requiresConfirmation": event_type.requires_confirmation,
        "eventTypeId": event_type.id,
        "seatsShowAttendees": True,
        "seatsPerTimeSlot": None,
        "uid": booking.uid,
        "bookingId": booking.id,
        "eventTitle": event_type.slug,
        "eventDescription": "",
        "price": 0,
        "currency": "usd",
        "length": int((booking.end - booking.start).total_seconds() // 60),
        "status": booking.status.upper(),
        "metadata": {"videoCallUrl": f"https://cal.example/video/{booking.uid}"},
    }


class WebhookSender:
    def __init__(self, subscription: WebhookSubscription, now: Callable[[], datetime]) -> None:
        self.subscription = subscription
        self.sent: list[SentWebhook] = []
        self._now = now
        self._tasks: set[asyncio.Task[None]] = set()

    def created(self, booking: FakeBooking) -> None:
        trigger = "BOOKING_REQUESTED" if booking.status == "pending" else "BOOKING_CREATED"
        self._emit(trigger, booking, booking_payload(booking))

    def cancelled(self, booking: FakeBooking) -> None:
        payload = booking_payload(booking)
        payload["cancellationReason"] = booking.cancellation_reason or ""
        payload["cancelledBy"] = booking.cancelled_by
        self._emit("BOOKING_CANCELLED", booking, payload)

    def rescheduled(self, old: FakeBooking, new: FakeBooking) -> None:
        """Sent for the new booking; `rescheduleUid` names the old one (Cal.com sends no cancellation)."""
        payload = booking_payload(new)
        payload.update(
            rescheduleId=old.id,
            rescheduleUid=old.uid,
            rescheduleStartTime=_utc(old.start),
            rescheduleEndTime=_utc(old.end),
            rescheduledBy=new.rescheduled_by,
        )
        self._emit("BOOKING_RESCHEDULED", new, payload)

    def _emit(self, trigger: str, booking: FakeBooking, payload: dict[str, Any]) -> None:
        url = self.subscription.url
        if not url:
            return
        body = json.dumps(
            {"triggerEvent": trigger, "createdAt": js_iso(self._now()), "payload": payload}
        ).encode()
        record = SentWebhook(trigger, booking.uid, body)
        self.sent.append(record)
        if self.subscription.paused:
            record.dropped = True
            return
        task = asyncio.get_running_loop().create_task(self._send(url, self.subscription.secret, record))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, url: str, secret: str | None, record: SentWebhook) -> None:
        signature = (
            hmac.new(secret.encode(), record.body, hashlib.sha256).hexdigest() if secret else NO_SECRET
        )
        headers = {"Content-Type": "application/json", "X-Cal-Signature-256": signature}
        try:
            async with httpx.AsyncClient(timeout=10.0, follow_redirects=False) as http:
                response = await http.post(url, content=record.body, headers=headers)
            record.status = response.status_code
        except httpx.HTTPError as exc:
            record.error = repr(exc)

    async def drain(self) -> None:
        """Wait for every delivery in flight."""
        while self._tasks:
            with contextlib.suppress(Exception):
                await asyncio.gather(*list(self._tasks))
