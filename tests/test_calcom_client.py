"""The Cal.com client over real HTTP against the fake: slots, DST, errors, retries, bookings."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import pytest

from calcom.errors import CalcomBadRequest, CalcomNotFound, CalcomServerError, CalcomUnavailable
from devstack.calcom_fake import SLOT_COMMON, SLOT_SHAPES
from models.calcom import Attendee, BookingStatus, CreateBooking
from tests.calcom_fixtures import DAILY, LATE_UTC, WEEKDAYS, calcom_env, make_client

BERLIN = ZoneInfo("Europe/Berlin")


async def test_spring_dst_change_in_berlin() -> None:
    """Clocks go forward on 2030-03-31: 09:00 local is 08:00Z on the 30th and 07:00Z on the 31st."""
    async with calcom_env() as env:
        slots = await env.client.get_slots(
            DAILY, datetime(2030, 3, 30, tzinfo=BERLIN), datetime(2030, 4, 1, tzinfo=BERLIN), "Europe/Berlin"
        )
    by_day: dict[date, list[datetime]] = {}
    for slot in slots:
        by_day.setdefault(slot.day, []).append(slot.start)
    assert list(by_day) == [date(2030, 3, 30), date(2030, 3, 31)]
    for day, offset in ((date(2030, 3, 30), 1), (date(2030, 3, 31), 2)):
        starts = by_day[day]
        assert [s.strftime("%H:%M") for s in starts] == ["09:00", "09:30", "10:00", "10:30", "11:00", "11:30"]
        assert all(s.utcoffset() == timedelta(hours=offset) for s in starts)
        assert all(s.date() == day for s in starts)
    assert by_day[date(2030, 3, 30)][0].astimezone(UTC).hour == 8
    assert by_day[date(2030, 3, 31)][0].astimezone(UTC).hour == 7


async def test_autumn_dst_change_in_berlin() -> None:
    """Clocks go back on 2030-10-27: 09:00 local is 07:00Z on the 26th and 08:00Z on the 27th."""
    async with calcom_env() as env:
        slots = await env.client.get_slots(
            DAILY,
            datetime(2030, 10, 26, tzinfo=BERLIN),
            datetime(2030, 10, 28, tzinfo=BERLIN),
            "Europe/Berlin",
        )
    firsts = {slot.day: slot.start for slot in reversed(slots)}
    assert firsts[date(2030, 10, 26)].astimezone(UTC).hour == 7
    assert firsts[date(2030, 10, 27)].astimezone(UTC).hour == 8
    assert firsts[date(2030, 10, 27)].utcoffset() == timedelta(hours=1)
    assert {s.start.astimezone(BERLIN).strftime("%H:%M") for s in slots} == {
        "09:00",
        "09:30",
        "10:00",
        "10:30",
        "11:00",
        "11:30",
    }


async def test_date_keys_follow_the_requested_zone() -> None:
    async with calcom_env() as env:
        slots = await env.client.get_slots(
            LATE_UTC, datetime(2030, 3, 5, 22, tzinfo=UTC), datetime(2030, 3, 6, 2, tzinfo=UTC), "Asia/Tokyo"
        )
    assert [(s.day, s.start.isoformat()) for s in slots] == [
        (date(2030, 3, 6), "2030-03-06T08:00:00+09:00"),
        (date(2030, 3, 6), "2030-03-06T08:30:00+09:00"),
    ]
    assert all(s.end is not None and s.end - s.start == timedelta(minutes=30) for s in slots)


async def test_window_ending_at_midnight_does_not_grow_by_a_day() -> None:
    """Cal.com reads an `end` at 00:00:00 UTC as 23:59:59 of that day; the client must not fall for it."""
    async with calcom_env() as env:
        slots = await env.client.get_slots(
            DAILY, datetime(2030, 3, 4, tzinfo=UTC), datetime(2030, 3, 5, tzinfo=UTC)
        )
        assert {s.day for s in slots} == {date(2030, 3, 4)}
        query = dict(env.fake.requests[-1].query)
        assert query["end"] == "2030-03-04T23:59:59.999Z"


async def test_no_slots_is_an_empty_list() -> None:
    async with calcom_env() as env:
        assert (
            await env.client.get_slots(
                WEEKDAYS, datetime(2030, 3, 9, tzinfo=UTC), datetime(2030, 3, 10, tzinfo=UTC)
            )
            == []
        )


async def test_every_request_passes_strict_validation_and_sends_only_its_shape() -> None:
    """All client calls, then: no 400 from the fake, and /v2/slots got exactly the byEventTypeId shape."""
    async with calcom_env() as env:
        client = env.client
        await client.get_slots(DAILY, datetime(2030, 3, 4, tzinfo=UTC), datetime(2030, 3, 5, 12, tzinfo=UTC))
        await client.get_slots(
            DAILY,
            datetime(2030, 3, 4, 7, 15, 1, 5000, tzinfo=BERLIN),
            datetime(2030, 3, 4, 9, tzinfo=BERLIN),
            "America/New_York",
        )
        booking = await client.create_booking(
            CreateBooking(
                event_type_id=WEEKDAYS,
                start=datetime(2030, 3, 4, 9, tzinfo=BERLIN),
                attendee=Attendee(name="Erika", phone_number="+4915123456789", time_zone="Europe/Berlin"),
                metadata={"callback_id": "c-1"},
            )
        )
        moved = await client.reschedule_booking(
            booking.uid,
            datetime(2030, 3, 4, 11, tzinfo=BERLIN),
            reason="r",
            rescheduled_by="anna@example.com",
        )
        await client.get_booking(moved.uid)
        await client.cancel_booking(moved.uid, "no longer needed")
        records = env.fake.requests
        assert {r.status for r in records} <= {200, 201}
        assert all(r.version in ("2024-09-04", "2024-08-13") for r in records)
        for record in records:
            if record.path == "/v2/slots":
                keys = [k for k, _ in record.query]
                assert len(keys) == len(set(keys))
                assert set(keys) <= SLOT_SHAPES["byEventTypeId"] | SLOT_COMMON
                assert dict(record.query)["format"] == "range"
                assert dict(record.query)["start"].endswith("Z")
        assert env.fake.validation_errors() == []


async def test_a_500_is_retried_and_a_400_is_not() -> None:
    async with calcom_env(strict=False) as env:
        start, end = datetime(2030, 3, 4, tzinfo=UTC), datetime(2030, 3, 5, tzinfo=UTC)
        env.fake.fail_next(500)
        slots = await env.client.get_slots(DAILY, start, end)
        assert slots
        assert env.fake.count("/v2/slots") == 2
        assert (env.client.stats.server_errors, env.client.stats.retries) == (1, 1)

        env.fake.reset_log()
        env.fake.fail_next(400, message="Bad things")
        with pytest.raises(CalcomBadRequest) as refused:
            await env.client.get_slots(DAILY, start, end)
        assert refused.value.message == "Bad things"
        assert refused.value.code == "BadRequestException"
        assert env.fake.count("/v2/slots") == 1

        env.fake.reset_log()
        env.fake.fail_next(503, count=5)
        with pytest.raises(CalcomServerError):
            await env.client.get_slots(DAILY, start, end)
        assert env.fake.count("/v2/slots") == 3  # max_attempts

        with pytest.raises(CalcomNotFound, match="Event Type not found"):
            await env.client.get_slots(4242, start, end)


async def test_unreachable_cal_com_is_a_typed_retryable_error() -> None:
    async with calcom_env() as env:
        url = env.url
    client = make_client(url, max_attempts=2)  # the fake has stopped: connection refused
    try:
        with pytest.raises(CalcomUnavailable) as failed:
            await client.get_slots(DAILY, datetime(2030, 3, 4, tzinfo=UTC), datetime(2030, 3, 5, tzinfo=UTC))
        assert failed.value.retryable
        assert client.stats.transport_errors == 2
    finally:
        await client.aclose()


async def test_bookings_create_reschedule_cancel() -> None:
    async with calcom_env(strict=False) as env:
        client = env.client
        request = CreateBooking(
            event_type_id=WEEKDAYS,
            start=datetime(2030, 3, 5, 10, tzinfo=BERLIN),
            attendee=Attendee(name="Max", email="max@example.com", time_zone="Europe/Berlin"),
        )
        booking = await client.create_booking(request)
        assert booking.status is BookingStatus.ACCEPTED
        assert booking.start == datetime(2030, 3, 5, 9, tzinfo=UTC)
        assert booking.end - booking.start == timedelta(hours=1)
        assert booking.event_type_id == WEEKDAYS
        free = await client.get_slots(
            WEEKDAYS, datetime(2030, 3, 5, tzinfo=BERLIN), datetime(2030, 3, 6, tzinfo=BERLIN)
        )
        assert booking.start not in {s.start for s in free}

        with pytest.raises(CalcomBadRequest, match="already has booking"):
            await client.create_booking(request)

        moved = await client.reschedule_booking(
            booking.uid, datetime(2030, 3, 5, 14, tzinfo=BERLIN), reason="later"
        )
        assert moved.uid != booking.uid
        assert moved.rescheduled_from_uid == booking.uid
        assert moved.rescheduling_reason == "later"
        assert (await client.get_booking(booking.uid)).status is BookingStatus.CANCELLED

        cancelled = await client.cancel_booking(moved.uid, "ill")
        assert cancelled.status is BookingStatus.CANCELLED
        assert cancelled.cancellation_reason == "ill"
        with pytest.raises(CalcomBadRequest):
            await client.cancel_booking(moved.uid)
        with pytest.raises(CalcomNotFound):
            await client.get_booking("does-not-exist")
        with pytest.raises(ValueError, match="invalid booking uid"):
            await client.get_booking("../slots")


async def test_query_is_parsed_like_the_server_sees_it() -> None:
    """Sanity check of the request log the other tests rely on."""
    async with calcom_env() as env:
        await env.client.get_slots(
            DAILY, datetime(2030, 3, 4, tzinfo=UTC), datetime(2030, 3, 5, tzinfo=UTC), "UTC"
        )
        record = env.fake.requests[-1]
        assert dict(record.query) == dict(
            parse_qsl(
                f"eventTypeId={DAILY}&start=2030-03-04T00:00:00.000Z&end=2030-03-04T23:59:59.999Z&format=range&timeZone=UTC"
            )
        )
