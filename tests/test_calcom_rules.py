"""Pure rate-limit arithmetic (rules/calcom_ratelimit.py) and the wire parsers of the client."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime

import pytest

from calcom.errors import (
    CalcomBadRequest,
    CalcomClientError,
    CalcomNotFound,
    CalcomProtocolError,
    CalcomServerError,
    CalcomUnauthorized,
    error_from_response,
)
from calcom.wire import end_param, parse_booking, parse_slots, utc_param
from models.calcom import BookingStatus
from rules.calcom_ratelimit import (
    pacing_delay,
    parse_rate_limit_headers,
    parse_retry_after,
    reset_to_seconds,
    wait_after_429,
)

NOW_EPOCH = 1_900_000_000.0  # 2030-03-17


class TestHeaders:
    def test_v2_default_triple(self) -> None:
        snap = parse_rate_limit_headers(
            [
                ("X-RateLimit-Limit-Default", "120"),
                ("X-RateLimit-Remaining-Default", "119"),
                ("X-RateLimit-Reset-Default", "60"),
            ],
            NOW_EPOCH,
        )
        assert (snap.limit, snap.remaining, snap.reset_seconds) == (120, 119, 60.0)

    def test_minimum_over_named_limits_case_insensitive(self) -> None:
        snap = parse_rate_limit_headers(
            [
                ("x-ratelimit-limit-short", "10"),
                ("x-ratelimit-remaining-short", "3"),
                ("x-ratelimit-reset-short", "5"),
                ("X-RATELIMIT-LIMIT-LONG", "1000"),
                ("X-RATELIMIT-REMAINING-LONG", "900"),
                ("X-RATELIMIT-RESET-LONG", "3600"),
            ],
            NOW_EPOCH,
        )
        assert (snap.limit, snap.remaining, snap.reset_seconds) == (10, 3, 5.0)

    def test_tie_takes_the_later_reset(self) -> None:
        snap = parse_rate_limit_headers(
            [
                ("X-RateLimit-Remaining-A", "0"),
                ("X-RateLimit-Reset-A", "5"),
                ("X-RateLimit-Remaining-B", "0"),
                ("X-RateLimit-Reset-B", "50"),
            ],
            NOW_EPOCH,
        )
        assert (snap.remaining, snap.reset_seconds) == (0, 50.0)

    def test_v1_plain_names_with_epoch_milliseconds(self) -> None:
        snap = parse_rate_limit_headers(
            [
                ("X-RateLimit-Limit", "30"),
                ("X-RateLimit-Remaining", "4"),
                ("X-RateLimit-Reset", str(int((NOW_EPOCH + 42) * 1000))),
            ],
            NOW_EPOCH,
        )
        assert (snap.limit, snap.remaining) == (30, 4)
        assert snap.reset_seconds == pytest.approx(42)

    def test_reset_units(self) -> None:
        assert reset_to_seconds(60, NOW_EPOCH) == 60  # v2: delta seconds
        assert reset_to_seconds(NOW_EPOCH + 12, NOW_EPOCH) == pytest.approx(12)  # epoch seconds
        assert reset_to_seconds((NOW_EPOCH + 7) * 1000, NOW_EPOCH) == pytest.approx(7)  # epoch ms (v1)
        assert reset_to_seconds(NOW_EPOCH - 100, NOW_EPOCH) == 0  # already past

    def test_absent_or_garbage_headers(self) -> None:
        assert not parse_rate_limit_headers([("Content-Type", "application/json")], NOW_EPOCH).known
        snap = parse_rate_limit_headers([("X-RateLimit-Remaining-Default", "lots")], NOW_EPOCH)
        assert snap.remaining is None


class TestRetryAfter:
    NOW = datetime(2030, 3, 1, 12, 0, tzinfo=UTC)

    def test_seconds(self) -> None:
        assert parse_retry_after("17", self.NOW) == 17
        assert parse_retry_after(" 2.5 ", self.NOW) == 2.5

    def test_http_date(self) -> None:
        value = format_datetime(self.NOW + timedelta(seconds=30), usegmt=True)
        assert parse_retry_after(value, self.NOW) == pytest.approx(30)

    def test_past_date_is_zero_and_garbage_is_none(self) -> None:
        assert parse_retry_after(format_datetime(self.NOW - timedelta(hours=1), usegmt=True), self.NOW) == 0
        assert parse_retry_after("soon", self.NOW) is None
        assert parse_retry_after(None, self.NOW) is None
        assert parse_retry_after("", self.NOW) is None

    def test_wait_order_retry_after_then_reset_then_sixty(self) -> None:
        assert wait_after_429(3, 40).source == "retry-after"
        assert wait_after_429(3, 40).seconds == 3
        assert wait_after_429(None, 40).seconds == 40
        assert wait_after_429(None, 40).source == "reset"
        assert wait_after_429(None, None).seconds == 60
        assert wait_after_429(None, 0).source == "default"


class TestPacing:
    def test_no_delay_with_enough_left(self) -> None:
        assert pacing_delay(5, base_seconds=0.5, time_to_reset=30) == 0
        assert pacing_delay(119, base_seconds=0.5, time_to_reset=30) == 0

    def test_exponential_below_five(self) -> None:
        delays = [pacing_delay(r, base_seconds=0.5, time_to_reset=60) for r in (4, 3, 2, 1)]
        assert delays == [0.5, 1.0, 2.0, 4.0]

    def test_capped_by_reset_and_nothing_left_waits_for_reset(self) -> None:
        assert pacing_delay(1, base_seconds=0.5, time_to_reset=1.5) == 1.5
        assert pacing_delay(0, base_seconds=0.5, time_to_reset=7) == 7
        assert pacing_delay(0, base_seconds=0.5, time_to_reset=None) == 60


class TestWireFormats:
    def test_utc_params(self) -> None:
        berlin = datetime(2030, 3, 31, 9, 0, tzinfo=UTC) + timedelta(0)
        assert utc_param(berlin) == "2030-03-31T09:00:00.000Z"
        # an end at exactly midnight UTC would be moved to 23:59:59 of that day by Cal.com
        assert end_param(datetime(2030, 4, 1, tzinfo=UTC)) == "2030-03-31T23:59:59.999Z"
        assert end_param(datetime(2030, 4, 1, 0, 0, 1, tzinfo=UTC)) == "2030-04-01T00:00:01.000Z"
        with pytest.raises(ValueError, match="naive"):
            utc_param(datetime(2030, 1, 1))

    def test_slots_sorted_aware_and_unknown_fields_ignored(self) -> None:
        body = {
            "status": "success",
            "message": "ignored",
            "data": {
                "2030-03-31": [
                    {
                        "start": "2030-03-31T10:00:00.000+02:00",
                        "end": "2030-03-31T10:30:00.000+02:00",
                        "x": 1,
                    },
                    {"start": "2030-03-31T09:00:00.000+02:00", "end": "2030-03-31T09:30:00.000+02:00"},
                ],
                "2030-03-30": [
                    {
                        "start": "2030-03-30T08:00:00.000Z",
                        "seatsBooked": 2,
                        "seatsRemaining": 3,
                        "seatsTotal": 5,
                        "bookingUid": "abc",
                    }
                ],
            },
        }
        slots = parse_slots(body)
        assert [s.start for s in slots] == sorted(s.start for s in slots)
        assert slots[0].day == date(2030, 3, 30)
        assert slots[0].end is None  # `format=time` items have no end
        assert (slots[0].seats_booked, slots[0].seats_remaining, slots[0].seats_total) == (2, 3, 5)
        assert slots[0].booking_uid == "abc"
        assert slots[1].start.utcoffset() == timedelta(hours=2)
        assert all(s.start.tzinfo is not None for s in slots)

    @pytest.mark.parametrize("data", [{}, []])
    def test_empty_data_means_no_slots(self, data: object) -> None:
        assert parse_slots({"status": "success", "data": data}) == []

    @pytest.mark.parametrize(
        "body",
        [
            {"status": "success"},
            {"status": "success", "data": {"slots": {"2030-01-01": [{"time": "2030-01-01T00:00:00Z"}]}}},
            {"status": "success", "data": {"2030-01-01": [{"start": "2030-01-01T09:00:00"}]}},  # naive
            {"status": "error", "data": {}},
            "nonsense",
        ],
    )
    def test_unexpected_bodies_are_protocol_errors(self, body: object) -> None:
        with pytest.raises(CalcomProtocolError):
            parse_slots(body)

    def test_booking_parsing(self) -> None:
        booking = parse_booking(
            {
                "status": "success",
                "data": {
                    "id": 7,
                    "uid": "u1",
                    "status": "pending",
                    "start": "2030-03-04T08:00:00.000Z",
                    "end": "2030-03-04T09:00:00.000Z",
                    "duration": 60,
                    "eventType": {"id": 20, "slug": "weekdays"},
                    "rescheduledFromUid": "u0",
                    "somethingNew": True,
                },
            }
        )
        assert booking.status is BookingStatus.PENDING
        assert (booking.event_type_id, booking.rescheduled_from_uid) == (20, "u0")


class TestErrorEnvelope:
    def test_v2_envelope(self) -> None:
        body = {
            "status": "error",
            "timestamp": "2025-07-31T12:42:07.061Z",
            "path": "/v2/slots",
            "error": {
                "code": "BadRequestException",
                "message": "property apiKey should not exist",
                "details": {"message": "m", "error": "Bad Request", "statusCode": 400},
            },
        }
        error = error_from_response(400, body, request_id="r1", path="/v2/slots")
        assert isinstance(error, CalcomBadRequest)
        assert (error.code, error.message, error.request_id) == (
            "BadRequestException",
            "property apiKey should not exist",
            "r1",
        )
        assert not error.retryable

    def test_older_envelope_without_details_and_v1_message(self) -> None:
        old = error_from_response(
            404,
            {"status": "error", "error": {"code": "NotFoundException", "message": "Event Type not found"}},
            request_id=None,
            path=None,
        )
        assert isinstance(old, CalcomNotFound)
        assert old.details is None
        v1 = error_from_response(401, {"message": "No apiKey provided"}, request_id=None, path=None)
        assert isinstance(v1, CalcomUnauthorized)
        assert v1.message == "No apiKey provided"

    @pytest.mark.parametrize(
        ("status", "kind", "retryable"),
        [(409, CalcomClientError, False), (500, CalcomServerError, True), (503, CalcomServerError, True)],
    )
    def test_status_classes(self, status: int, kind: type, retryable: bool) -> None:
        error = error_from_response(status, "<html>oops</html>", request_id=None, path=None)
        assert isinstance(error, kind)
        assert error.retryable is retryable
