"""The pure side of Cal.com bookings in: signatures, webhook and list parsing, and what each change does to
an appointment (rules/calcom_webhooks.py, rules/calcom_bookings.py)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from models.calcom import BookingAttendee, BookingStatus, ListedBooking
from models.calcom_bookings import BookingChange, BookingEvent
from models.policies import ModificationType
from rules.calcom_bookings import Outcome, StoredAppointment, modification_request_id, plan
from rules.calcom_webhooks import (
    IgnoredTrigger,
    UnreadableWebhook,
    event_from_listed,
    parse_webhook,
    sign,
    signature_valid,
)
from tests.calcom_webhook_fixtures import HOST_EMAIL, booking, envelope

T0 = datetime(2030, 3, 1, 12, tzinfo=UTC)
START = datetime(2030, 3, 4, 9, tzinfo=UTC)


def event(change: BookingChange, *, uid: str = "u1", at: datetime = T0, **fields: Any) -> BookingEvent:
    values: dict[str, Any] = {
        "trigger": change.value,
        "change": change,
        "occurred_at": at,
        "uid": uid,
        "start": START,
        "end": START + timedelta(minutes=30),
        "event_type_id": 7,
        "organizer_email": HOST_EMAIL,
    }
    values.update(fields)
    return BookingEvent(**values)


def stored(**fields: Any) -> StoredAppointment:
    values: dict[str, Any] = {
        "id": 1,
        "status": "confirmed",
        "starts_at": START,
        "ends_at": START + timedelta(minutes=30),
        "booking_uid": "u1",
        "changed_at": T0,
    }
    values.update(fields)
    return StoredAppointment(**values)


def test_signature_is_the_hex_hmac_of_the_raw_body() -> None:
    body = b'{"triggerEvent":"BOOKING_CREATED"}'
    expected = hmac.new(b"secret", body, hashlib.sha256).hexdigest()
    assert sign("secret", body) == expected
    assert signature_valid("secret", body, expected)
    assert signature_valid("secret", body, expected.upper())
    assert not signature_valid("secret", body + b" ", expected)
    assert not signature_valid("secret", body, "sha256=" + expected)
    assert not signature_valid("other", body, expected)
    assert not signature_valid(None, body, sign("", body))  # no secret configured: nothing verifies
    assert not signature_valid("secret", body, None)
    assert not signature_valid("secret", body, "no-secret-provided")
    assert not signature_valid("secret", body, "é" * 64)


def test_webhook_parsing() -> None:
    body = envelope(
        "BOOKING_RESCHEDULED",
        T0,
        booking(
            "new",
            START,
            rescheduleUid="old",
            rescheduledBy="Zoe@Example.org",
            phone=None,
            responses={"attendeePhoneNumber": {"value": "+49 30 1234567"}},
        ),
    )
    parsed = parse_webhook(body, received_at=T0 + timedelta(hours=1))
    assert isinstance(parsed, BookingEvent)
    assert (parsed.change, parsed.uid, parsed.previous_uid, parsed.occurred_at) == (
        BookingChange.RESCHEDULED,
        "new",
        "old",
        T0,
    )
    assert (parsed.start, parsed.end, parsed.event_type_id) == (START, START + timedelta(minutes=30), 4711)
    assert parsed.attendee is not None
    assert (parsed.attendee.email, parsed.attendee.phone, parsed.attendee.locale) == (
        "zoe@example.org",
        "+49301234567",
        "de",
    )
    assert not parsed.by_host

    cancelled = parse_webhook(
        envelope("BOOKING_CANCELLED", T0, booking("u", START, status="CANCELLED", cancelledBy=HOST_EMAIL)), T0
    )
    assert isinstance(cancelled, BookingEvent)
    assert cancelled.by_host
    pending = parse_webhook(envelope("BOOKING_REQUESTED", T0, booking("u", START, status="PENDING")), T0)
    assert isinstance(pending, BookingEvent)
    assert (pending.change, pending.accepted) == (BookingChange.REQUESTED, False)
    no_show = parse_webhook(
        json.dumps(
            {
                "triggerEvent": "BOOKING_NO_SHOW_UPDATED",
                "createdAt": "2030-03-01T12:00:00.000Z",
                "payload": {
                    "message": "x",
                    "bookingUid": "u",
                    "attendees": [{"email": "a@b.c", "noShow": True}],
                },
            }
        ).encode(),
        T0,
    )
    assert isinstance(no_show, BookingEvent)
    assert (no_show.change, no_show.no_show, no_show.start) == (BookingChange.NO_SHOW, True, None)
    # Without createdAt: the payload's updatedAt, else the time it was received.
    late = json.loads(envelope("BOOKING_CREATED", T0, booking("u", START)))
    del late["createdAt"]
    parsed_late = parse_webhook(json.dumps(late).encode(), T0 + timedelta(minutes=1))
    assert isinstance(parsed_late, BookingEvent)
    assert parsed_late.occurred_at == T0 + timedelta(minutes=1)

    assert isinstance(parse_webhook(envelope("MEETING_STARTED", T0, {}), T0), IgnoredTrigger)
    assert isinstance(parse_webhook(b'{"triggerEvent": "PING", "payload": {}}', T0), IgnoredTrigger)
    for bad in (b"[]", b"nope", b'{"payload": {}}', envelope("BOOKING_CREATED", T0, {"startTime": "x"})):
        with pytest.raises(UnreadableWebhook):
            parse_webhook(bad, T0)


def _listed(**fields: Any) -> ListedBooking:
    values: dict[str, Any] = {
        "id": 1,
        "uid": "u1",
        "status": BookingStatus.ACCEPTED,
        "start": START,
        "end": START + timedelta(minutes=30),
        "event_type_id": 7,
        "attendees": [BookingAttendee(name="Zoe", email="z@x.org", time_zone="Europe/Berlin")],
        "host_email": HOST_EMAIL,
    }
    values.update(fields)
    return ListedBooking(**values)


def test_listed_bookings_as_changes() -> None:
    observed = T0 + timedelta(hours=1)
    assert event_from_listed(_listed(), observed).change is BookingChange.BOOKED
    assert event_from_listed(_listed(), observed).occurred_at == observed
    assert event_from_listed(_listed(updated_at=T0), observed).occurred_at == T0
    assert (
        event_from_listed(_listed(status=BookingStatus.PENDING), observed).change is BookingChange.REQUESTED
    )
    moved = event_from_listed(_listed(uid="u2", rescheduled_from_uid="u1"), observed)
    assert (moved.change, moved.previous_uid) == (BookingChange.RESCHEDULED, "u1")
    old = event_from_listed(_listed(status=BookingStatus.CANCELLED, rescheduled=True), observed)
    assert old.change is BookingChange.SUPERSEDED
    cancelled = event_from_listed(
        _listed(status=BookingStatus.CANCELLED, cancelled_by_email="z@x.org"), observed
    )
    assert (cancelled.change, cancelled.by_host, cancelled.source) == (
        BookingChange.CANCELLED,
        False,
        "reconcile",
    )


def test_a_new_booking_becomes_an_appointment() -> None:
    created = plan(None, event(BookingChange.BOOKED))
    assert (created.outcome, created.status, created.starts_at, created.modification) == (
        Outcome.CREATED,
        "confirmed",
        START,
        None,
    )
    assert plan(None, event(BookingChange.REQUESTED)).status == "scheduled"
    # First seen cancelled by the customer: kept, and counted.
    first_cancelled = plan(None, event(BookingChange.CANCELLED))
    assert (first_cancelled.status, first_cancelled.modification) == ("cancelled", ModificationType.CANCEL)
    first_moved = plan(None, event(BookingChange.RESCHEDULED, uid="u2", previous_uid="u1"))
    assert (first_moved.booking_uid, first_moved.modification) == ("u2", ModificationType.RESCHEDULE)
    for change in (BookingChange.NO_SHOW, BookingChange.SUPERSEDED, BookingChange.REJECTED):
        assert plan(None, event(change)).outcome is Outcome.IGNORED
    assert plan(None, event(BookingChange.BOOKED, start=None)).outcome is Outcome.IGNORED


def test_changes_to_a_known_appointment() -> None:
    assert plan(stored(), event(BookingChange.BOOKED)).outcome is Outcome.UNCHANGED
    confirmed = plan(stored(status="scheduled"), event(BookingChange.BOOKED, at=T0 + timedelta(minutes=1)))
    assert (confirmed.outcome, confirmed.status, confirmed.modification) == (
        Outcome.UPDATED,
        "confirmed",
        None,
    )

    later = START + timedelta(days=1)
    moved = plan(
        stored(),
        event(
            BookingChange.RESCHEDULED,
            uid="u2",
            previous_uid="u1",
            start=later,
            end=later + timedelta(minutes=30),
            at=T0 + timedelta(minutes=5),
        ),
    )
    assert (moved.outcome, moved.starts_at, moved.booking_uid, moved.modification) == (
        Outcome.UPDATED,
        later,
        "u2",
        ModificationType.RESCHEDULE,
    )
    by_host = plan(
        stored(),
        event(BookingChange.CANCELLED, at=T0 + timedelta(minutes=5), changed_by=HOST_EMAIL.upper()),
    )
    assert (by_host.status, by_host.modification) == ("cancelled", None)
    by_customer = plan(stored(), event(BookingChange.CANCELLED, at=T0 + timedelta(minutes=5)))
    assert by_customer.modification is ModificationType.CANCEL
    rejected = plan(stored(status="scheduled"), event(BookingChange.REJECTED, at=T0 + timedelta(minutes=5)))
    assert (rejected.status, rejected.modification) == ("cancelled", None)
    ended = plan(stored(), event(BookingChange.ENDED, at=T0 + timedelta(hours=1)))
    assert ended.status == "completed"
    no_show = plan(
        stored(status="completed"), event(BookingChange.NO_SHOW, no_show=True, start=None, end=None)
    )
    assert no_show.status == "no_show"
    back = plan(stored(status="no_show"), event(BookingChange.NO_SHOW, no_show=False, start=None, end=None))
    assert back.status == "completed"


def test_nothing_moves_an_appointment_back() -> None:
    older = event(BookingChange.BOOKED, at=T0 - timedelta(seconds=1), start=START - timedelta(days=1))
    assert plan(stored(), older).outcome is Outcome.IGNORED
    # After a reschedule to u2, anything about u1 is ignored, however new.
    current = stored(booking_uid="u2")
    for change in (BookingChange.BOOKED, BookingChange.CANCELLED, BookingChange.SUPERSEDED):
        assert plan(current, event(change, uid="u1", at=T0 + timedelta(days=1))).outcome is Outcome.IGNORED
    # Closed stays closed.
    cancelled = stored(status="cancelled")
    assert plan(cancelled, event(BookingChange.BOOKED, at=T0 + timedelta(days=1))).outcome is Outcome.IGNORED
    assert (
        plan(cancelled, event(BookingChange.CANCELLED, at=T0 + timedelta(days=1))).outcome
        is Outcome.UNCHANGED
    )
    assert plan(cancelled, event(BookingChange.ENDED, at=T0 + timedelta(days=1))).outcome is Outcome.UNCHANGED
    # The list's old booking of a reschedule not applied yet does not cancel the appointment.
    assert (
        plan(stored(), event(BookingChange.SUPERSEDED, at=T0 + timedelta(days=1))).outcome is Outcome.IGNORED
    )


def test_modification_request_ids_fit_the_column() -> None:
    assert modification_request_id(ModificationType.CANCEL, "abc") == "calcom-cancel-abc"
    long = modification_request_id(ModificationType.RESCHEDULE, "x" * 100)
    assert long.startswith("calcom-reschedule-")
    assert len(long) <= 64
    assert modification_request_id(ModificationType.CANCEL, "a/b") != "calcom-cancel-a/b"
