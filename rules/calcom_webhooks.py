"""Cal.com webhooks on the wire (shared/calcom-api.md §6): the signature, the envelope, the booking payload,
and the bookings list read into the same `BookingEvent`. Pure: the API endpoint (api/calcom_webhooks.py)
and the reconciliation activity (activities/calcom_sync.py) call it; rules/calcom_bookings.py decides.

Signature: `X-Cal-Signature-256` = lowercase hex HMAC-SHA256 of the exact raw body with the company's
Cal.com webhook secret, no `sha256=` prefix; without a secret Cal.com sends `no-secret-provided`, which
never verifies here (a company without a secret accepts no webhooks).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from models.calcom import ListedBooking
from models.calcom_bookings import BookingChange, BookingEvent, BookingPerson
from models.callbacks import normalize_phone

SIGNATURE_HEADER = "X-Cal-Signature-256"

TRIGGERS: dict[str, BookingChange] = {
    "BOOKING_CREATED": BookingChange.BOOKED,
    "BOOKING_PAID": BookingChange.BOOKED,
    "BOOKING_REQUESTED": BookingChange.REQUESTED,
    "BOOKING_PAYMENT_INITIATED": BookingChange.REQUESTED,
    "BOOKING_RESCHEDULED": BookingChange.RESCHEDULED,
    "BOOKING_CANCELLED": BookingChange.CANCELLED,
    "BOOKING_REJECTED": BookingChange.REJECTED,
    "MEETING_ENDED": BookingChange.ENDED,
    "BOOKING_NO_SHOW_UPDATED": BookingChange.NO_SHOW,
}
# Where a booking form keeps the attendee's phone number when the attendee object has none.
PHONE_RESPONSES = ("attendeePhoneNumber", "phone", "phoneNumber", "smsReminderNumber")


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(secret: str | None, body: bytes, header: str | None) -> bool:
    """Constant-time check of the header against the body's HMAC (a missing secret never verifies)."""
    expected = sign(secret or "", body).encode()
    given = (header or "").strip().lower().encode("utf-8", "replace")
    matches = hmac.compare_digest(expected, given)
    return bool(secret) and matches


class UnreadableWebhook(ValueError):
    """A signed body that is not a Cal.com webhook we can read (the endpoint answers 400)."""


@dataclass(frozen=True)
class IgnoredTrigger:
    """A webhook of a trigger that does not change a booking (MEETING_STARTED, FORM_SUBMITTED, PING...)."""

    trigger: str
    event_at: datetime | None


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _text(value: Any, limit: int = 255) -> str | None:
    if not isinstance(value, str):
        return None
    return value.strip()[:limit] or None


def _phone(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("value")
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return normalize_phone(value)
    except ValueError:
        return None


def _locale(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("locale")
    return _text(value, 8)


def _attendee(payload: dict[str, Any]) -> BookingPerson | None:
    attendees = payload.get("attendees")
    first = (
        attendees[0] if isinstance(attendees, list) and attendees and isinstance(attendees[0], dict) else {}
    )
    answered = payload.get("responses")
    responses: dict[str, Any] = answered if isinstance(answered, dict) else {}
    phone = _phone(first.get("phoneNumber"))
    for key in PHONE_RESPONSES:
        phone = phone or _phone(responses.get(key))
    person = BookingPerson(
        name=_text(first.get("name")),
        email=_text(first.get("email")),
        phone=phone,
        time_zone=_text(first.get("timeZone"), 64),
        locale=_locale(first.get("language")),
    )
    return person if (person.email or person.phone or person.name) else None


def parse_webhook(body: bytes, received_at: datetime) -> BookingEvent | IgnoredTrigger:
    """The envelope `{triggerEvent, createdAt, payload}` → the booking change it reports."""
    try:
        envelope = json.loads(body)
    except ValueError as exc:
        raise UnreadableWebhook("the body is not JSON") from exc
    if not isinstance(envelope, dict) or not isinstance(envelope.get("triggerEvent"), str):
        raise UnreadableWebhook("not a Cal.com webhook: no `triggerEvent`")
    trigger = envelope["triggerEvent"]
    created_at = _moment(envelope.get("createdAt"))
    change = TRIGGERS.get(trigger)
    if change is None:
        return IgnoredTrigger(trigger, created_at)
    payload = envelope.get("payload")
    if not isinstance(payload, dict):
        raise UnreadableWebhook(f"{trigger} without a `payload` object")
    uid = payload.get("bookingUid") if change is BookingChange.NO_SHOW else payload.get("uid")
    if not isinstance(uid, str) or not uid:
        raise UnreadableWebhook(f"{trigger} without a booking uid")
    given = payload.get("organizer")
    organizer: dict[str, Any] = given if isinstance(given, dict) else {}
    listed = payload.get("attendees")
    attendees: list[Any] = listed if isinstance(listed, list) else []
    no_show = None
    if change is BookingChange.NO_SHOW:
        no_show = any(isinstance(a, dict) and a.get("noShow") is True for a in attendees)
    status = str(payload.get("status") or "ACCEPTED").upper()
    event_type_id = payload.get("eventTypeId")
    try:
        return BookingEvent(
            trigger=trigger,
            change=change,
            occurred_at=created_at or _moment(payload.get("updatedAt")) or received_at,
            uid=uid,
            previous_uid=_text(payload.get("rescheduleUid")) or _text(payload.get("fromReschedule")),
            start=_moment(payload.get("startTime")),
            end=_moment(payload.get("endTime")),
            event_type_id=event_type_id if isinstance(event_type_id, int) else None,
            accepted=status not in ("PENDING", "AWAITING_HOST"),
            attendee=None if change is BookingChange.NO_SHOW else _attendee(payload),
            organizer_email=_text(organizer.get("email")),
            changed_by=_text(payload.get("cancelledBy")) or _text(payload.get("rescheduledBy")),
            reason=_text(payload.get("cancellationReason"), 1000),
            no_show=no_show,
        )
    except ValidationError as exc:
        raise UnreadableWebhook(f"{trigger}: {exc.errors()[0]['msg']}") from exc


def event_from_listed(booking: ListedBooking, observed_at: datetime) -> BookingEvent:
    """A booking of the bookings list as the change that brought it to its current state. The time is
    its `updatedAt`, or the moment the list was read: the list is the truth as of then."""
    previous = booking.rescheduled_from_uid
    if booking.status == "cancelled":
        superseded = booking.rescheduled or booking.rescheduled_to_uid is not None
        change = BookingChange.SUPERSEDED if superseded else BookingChange.CANCELLED
    elif booking.status == "rejected":
        change = BookingChange.REJECTED
    elif previous is not None:
        change = BookingChange.RESCHEDULED
    else:
        change = BookingChange.BOOKED if booking.status == "accepted" else BookingChange.REQUESTED
    first = booking.attendees[0] if booking.attendees else None
    attendee = None
    if first is not None:
        attendee = BookingPerson(
            name=_text(first.name),
            email=_text(first.email),
            phone=_phone(first.phone_number),
            time_zone=_text(first.time_zone, 64),
            locale=_text(first.language, 8),
        )
    return BookingEvent(
        trigger=f"list:{booking.status.value}",
        change=change,
        occurred_at=booking.updated_at or observed_at,
        uid=booking.uid,
        previous_uid=previous,
        start=booking.start,
        end=booking.end,
        event_type_id=booking.event_type_id,
        accepted=booking.status == "accepted",
        attendee=attendee,
        organizer_email=booking.host_email,
        changed_by=booking.cancelled_by_email or booking.rescheduled_by_email,
        reason=booking.cancellation_reason,
        source="reconcile",
    )
