"""The fake Cal.com follows the real contract (listed in `devstack/calcom_fake/__init__.py`), checked with
raw HTTP requests."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from devstack.calcom_fake import RateLimitConfig
from models.calcom import Attendee, CreateBooking
from telemetry.asgi_server import serve_asgi
from tests.calcom_fixtures import API_KEY, DAILY, LATE_UTC, WEEKDAYS, calcom_env

SLOTS = {"cal-api-version": "2024-09-04"}
BOOKINGS = {"cal-api-version": "2024-08-13"}


def slot_params(**extra: str) -> dict[str, str]:
    params = {"eventTypeId": str(DAILY), "start": "2030-03-30T00:00:00Z", "end": "2030-03-30T23:59:59Z"}
    params.update(extra)
    return params


async def test_version_dispatch() -> None:
    async with calcom_env(strict=False) as env, httpx.AsyncClient(base_url=env.url) as http:
        ok = await http.get("/v2/slots", params=slot_params(), headers=SLOTS)
        assert ok.status_code == 200
        # missing or unknown header → the 2024-04-15 controller, which has no /v2/slots
        for headers in ({}, {"cal-api-version": "2099-01-01"}, {"cal-api-version": "2024-08-13"}):
            missing = await http.get("/v2/slots", params=slot_params(), headers=headers)
            assert missing.status_code == 404
            assert missing.json()["error"]["code"] == "NotFoundException"
        legacy = await http.get(
            "/v2/slots/available",
            params={"eventTypeId": str(DAILY), "startTime": "2030-03-30", "endTime": "2030-03-30T23:59:59Z"},
        )
        assert legacy.status_code == 200
        day = legacy.json()["data"]["slots"]["2030-03-30"]
        assert day[0] == {"time": "2030-03-30T08:00:00.000Z"}
        assert (await http.get("/v2/slots/available", params={}, headers=SLOTS)).status_code == 404
        # bookings without 2024-08-13 end in the old controller (issue #16924: 500)
        no_version = await http.post("/v2/bookings", json={})
        assert no_version.status_code == 500


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"apiKey": "cal_x"}, "property apiKey should not exist"),
        ({"slotFormat": "range"}, "property slotFormat should not exist"),
        ({"username": "bob", "eventTypeSlug": "x"}, "property username should not exist"),
        ({"format": "list"}, "slotFormat must be either 'range' or 'time'"),
        ({"timeZone": "Mars/Olympus"}, "timeZone must be a valid IANA time-zone"),
        ({"start": "30.03.2030"}, "start must be a valid ISO 8601 date string"),
        ({"start": "2030-02-30"}, "start must be a valid ISO 8601 date string"),
        ({"end": "2030-03-29T00:00:01Z"}, "Invalid time range given"),
        ({"eventTypeId": "ten"}, "eventTypeId must be an integer number"),
    ],
)
async def test_strict_validation_gives_the_error_envelope(extra: dict[str, str], message: str) -> None:
    async with calcom_env(strict=False) as env, httpx.AsyncClient(base_url=env.url) as http:
        response = await http.get("/v2/slots", params=slot_params(**extra), headers=SLOTS)
        assert response.status_code == 400
        body = response.json()
        assert body["status"] == "error"
        assert body["path"].startswith("/v2/slots?")
        assert body["error"]["code"] == "BadRequestException"
        assert message in body["error"]["message"]
        assert body["error"]["details"]["statusCode"] == 400
        assert response.headers["x-request-id"]
        assert env.fake.validation_errors()


async def test_unknown_event_type_is_404() -> None:
    async with calcom_env(strict=False) as env, httpx.AsyncClient(base_url=env.url) as http:
        response = await http.get("/v2/slots", params=slot_params(eventTypeId="999"), headers=SLOTS)
        assert response.status_code == 404
        assert response.json()["error"]["message"] == "Event Type not found"


async def test_utc_rules_time_zone_keys_and_formatting() -> None:
    async with calcom_env() as env, httpx.AsyncClient(base_url=env.url) as http:
        # date-only start = midnight UTC; an end at 00:00:00 UTC means 23:59:59 of that day
        plain = await http.get(
            "/v2/slots",
            params={"eventTypeId": str(DAILY), "start": "2030-03-31", "end": "2030-03-31"},
            headers=SLOTS,
        )
        data = plain.json()["data"]
        assert list(data) == ["2030-03-31"]
        assert data["2030-03-31"][0] == {"start": "2030-03-31T07:00:00.000Z"}  # no zone: raw UTC ISO
        assert len(data["2030-03-31"]) == 6
        berlin = await http.get(
            "/v2/slots",
            params={
                "eventTypeId": str(DAILY),
                "start": "2030-03-31",
                "end": "2030-03-31",
                "timeZone": "Europe/Berlin",
                "format": "RANGE",
            },
            headers=SLOTS,
        )
        first = berlin.json()["data"]["2030-03-31"][0]
        assert first == {"start": "2030-03-31T09:00:00.000+02:00", "end": "2030-03-31T09:30:00.000+02:00"}
        # date keys follow timeZone: 23:00 UTC on the 30th is already the 31st in Berlin
        late = await http.get(
            "/v2/slots",
            params={
                "eventTypeId": str(LATE_UTC),
                "start": "2030-03-30T22:00:00Z",
                "end": "2030-03-30T23:59:00Z",
                "timeZone": "Europe/Berlin",
            },
            headers=SLOTS,
        )
        assert late.json()["data"] == {
            "2030-03-31": [
                {"start": "2030-03-31T00:00:00.000+01:00"},
                {"start": "2030-03-31T00:30:00.000+01:00"},
            ]
        }
        # "UTC" is luxon's fixed zone: printed with Z
        utc = await http.get(
            "/v2/slots",
            params={"eventTypeId": str(DAILY), "start": "2030-03-31", "end": "2030-03-31", "timeZone": "UTC"},
            headers=SLOTS,
        )
        assert utc.json()["data"]["2030-03-31"][0]["start"] == "2030-03-31T07:00:00.000Z"
        # nothing free: an empty object, not an array
        weekend = await http.get(
            "/v2/slots",
            params={"eventTypeId": str(WEEKDAYS), "start": "2030-03-30", "end": "2030-03-31"},
            headers=SLOTS,
        )
        assert weekend.json() == {"status": "success", "data": {}}
        # start in the past is clamped to now; end is clamped to now + 1 year
        clamped = await http.get(
            "/v2/slots",
            params={"eventTypeId": str(WEEKDAYS), "start": "2020-01-01", "end": "2040-01-01"},
            headers=SLOTS,
        )
        keys = sorted(clamped.json()["data"])
        assert keys[0] == "2030-03-01"
        assert keys[-1] <= "2031-03-01"


async def test_rate_limit_headers_window_and_block() -> None:
    config = RateLimitConfig(limit=3, window_ms=60_000, block_ms=30_000)
    async with (
        calcom_env(rate_limit=config, strict=False) as env,
        httpx.AsyncClient(base_url=env.url) as http,
    ):
        auth = {**SLOTS, "Authorization": f"Bearer {API_KEY}"}
        answers = [await http.get("/v2/slots", params=slot_params(), headers=auth) for _ in range(5)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
        assert [a.headers["x-ratelimit-remaining-default"] for a in answers] == ["2", "1", "0", "0", "0"]
        assert all(a.headers["x-ratelimit-limit-default"] == "3" for a in answers)
        assert "x-ratelimit-remaining" not in answers[0].headers  # no plain v1 names in v2
        assert 0 < int(answers[0].headers["x-ratelimit-reset-default"]) <= 60  # seconds, not an epoch
        assert 29 <= int(answers[3].headers["x-ratelimit-reset-default"]) <= 30  # the block
        body = answers[3].json()
        assert body["error"] == {
            "code": "ThrottlerException",
            "message": "Too many requests. Please try again later.",
            "details": "Too many requests. Please try again later.",
        }
        assert "retry-after" not in answers[3].headers  # real v2 sends none
        # the bucket is the key's, whichever connection (process) the request comes by
        async with httpx.AsyncClient(base_url=env.url) as another_process:
            same_key = await another_process.get("/v2/slots", params=slot_params(), headers=auth)
        assert same_key.status_code == 429
        # another API key has its own bucket; the IP bucket too
        other = await http.get(
            "/v2/slots", params=slot_params(), headers={**SLOTS, "Authorization": "Bearer cal_other"}
        )
        assert other.status_code == 200
        anonymous = await http.get("/v2/slots", params=slot_params(), headers=SLOTS)
        assert anonymous.status_code == 200


@pytest.mark.parametrize("mode", ["seconds", "date"])
async def test_retry_after_is_switchable(mode: str) -> None:
    config = RateLimitConfig(limit=1, block_ms=20_000, retry_after=mode)  # type: ignore[arg-type]
    async with (
        calcom_env(rate_limit=config, strict=False) as env,
        httpx.AsyncClient(base_url=env.url) as http,
    ):
        await http.get("/v2/slots", params=slot_params(), headers=SLOTS)
        refused = await http.get("/v2/slots", params=slot_params(), headers=SLOTS)
        assert refused.status_code == 429
        value = refused.headers["retry-after"]
        if mode == "seconds":
            assert value == "20"
        else:
            when = datetime.strptime(value, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
            assert 19 <= math.ceil((when - datetime.now(UTC)).total_seconds()) <= 21


async def test_bookings_contract() -> None:
    async with calcom_env(strict=False) as env, httpx.AsyncClient(base_url=env.url, headers=BOOKINGS) as http:
        attendee = {"name": "Erika", "email": "erika@example.com", "timeZone": "Europe/Berlin"}
        created = await http.post(
            "/v2/bookings",
            json={"start": "2030-03-04T08:00:00Z", "eventTypeId": WEEKDAYS, "attendee": attendee, "extra": 1},
        )
        assert created.status_code == 201
        booking = created.json()["data"]
        assert (booking["status"], booking["start"], booking["end"]) == (
            "accepted",
            "2030-03-04T08:00:00.000Z",
            "2030-03-04T09:00:00.000Z",
        )
        taken = await http.post(
            "/v2/bookings",
            json={"start": "2030-03-04T08:00:00Z", "eventTypeId": WEEKDAYS, "attendee": attendee},
        )
        assert taken.status_code == 400
        assert (
            taken.json()["error"]["message"]
            == "User either already has booking at this time or is not available"
        )
        past = await http.post(
            "/v2/bookings",
            json={"start": "2029-03-04T08:00:00Z", "eventTypeId": WEEKDAYS, "attendee": attendee},
        )
        assert past.json()["error"]["message"] == "Attempting to book a meeting in the past."
        not_utc = await http.post(
            "/v2/bookings",
            json={"start": "2030-03-04T10:00:00+01:00", "eventTypeId": WEEKDAYS, "attendee": attendee},
        )
        assert not_utc.status_code == 400
        no_contact = await http.post(
            "/v2/bookings",
            json={
                "start": "2030-03-04T10:00:00Z",
                "eventTypeId": WEEKDAYS,
                "attendee": {"name": "X", "timeZone": "UTC"},
            },
        )
        assert no_contact.status_code == 400
        unknown = await http.post(
            "/v2/bookings", json={"start": "2030-03-04T10:00:00Z", "eventTypeId": 999, "attendee": attendee}
        )
        assert unknown.status_code == 404

        moved = await http.post(
            f"/v2/bookings/{booking['uid']}/reschedule",
            json={"start": "2030-03-04T09:00:00Z", "reschedulingReason": "r"},
        )
        assert moved.status_code == 201
        new = moved.json()["data"]
        assert new["uid"] != booking["uid"]
        assert new["rescheduledFromUid"] == booking["uid"]
        old = (await http.get(f"/v2/bookings/{booking['uid']}")).json()["data"]
        assert old["status"] == "cancelled"

        cancelled = await http.post(f"/v2/bookings/{new['uid']}/cancel", json={"cancellationReason": "ill"})
        assert cancelled.status_code == 200
        assert cancelled.json()["data"]["status"] == "cancelled"
        assert cancelled.json()["data"]["cancellationReason"] == "ill"
        again = await http.post(f"/v2/bookings/{new['uid']}/cancel", json={})
        assert again.status_code == 400
        assert (await http.post("/v2/bookings/nope/cancel", json={})).status_code == 404


async def test_bookings_list_contract() -> None:
    """`GET /v2/bookings`: an API key only, strict parameters, filters, earliest first, pagination."""
    async with calcom_env(strict=False) as env:
        for day in (4, 5, 6):
            env.fake.book(WEEKDAYS, datetime(2030, 3, day, 8, tzinfo=UTC))
        env.fake.book(DAILY, datetime(2030, 3, 4, 8, tzinfo=UTC))
        async with httpx.AsyncClient(base_url=env.url, headers=BOOKINGS) as anonymous:
            refused = await anonymous.get("/v2/bookings")
            assert refused.status_code == 401
            assert refused.json()["error"]["code"] == "UnauthorizedException"
        headers = {**BOOKINGS, "Authorization": f"Bearer {API_KEY}"}
        async with httpx.AsyncClient(base_url=env.url, headers=headers) as http:
            params = {"eventTypeId": str(WEEKDAYS), "afterStart": "2030-03-04T00:00:00Z", "take": "2"}
            first = (await http.get("/v2/bookings", params=params)).json()
            assert [b["start"] for b in first["data"]] == [
                "2030-03-04T08:00:00.000Z",
                "2030-03-05T08:00:00.000Z",
            ]
            assert first["pagination"]["hasNextPage"] is True
            assert first["pagination"]["totalItems"] == 3
            rest = (await http.get("/v2/bookings", params={**params, "skip": "2"})).json()
            assert [b["start"] for b in rest["data"]] == ["2030-03-06T08:00:00.000Z"]
            assert rest["pagination"]["hasNextPage"] is False
            window = await http.get(
                "/v2/bookings",
                params={"afterStart": "2030-03-05T00:00:00Z", "beforeEnd": "2030-03-05T23:00:00Z"},
            )
            assert len(window.json()["data"]) == 1
            extra = await http.get("/v2/bookings", params={"eventTypeSlug": "x"})
            assert extra.status_code == 400
            assert extra.json()["error"]["message"] == "property eventTypeSlug should not exist"
        # Our client reads the same page.
        page = await env.client.list_bookings(
            event_type_id=WEEKDAYS,
            after_start=datetime(2030, 3, 1, tzinfo=UTC),
            before_end=datetime(2030, 3, 31, tzinfo=UTC),
            take=2,
        )
        assert (len(page.bookings), page.has_more) == (2, True)
        assert page.bookings[0].attendees[0].name == "Seeded"
        assert page.bookings[0].updated_at is not None


async def test_booking_changes_are_sent_as_signed_webhooks() -> None:
    """Created, rescheduled and cancelled through the API: each POSTed to the subscriber as Cal.com does
    (envelope, uppercase status, reschedule and cancel extras, X-Cal-Signature-256 over the raw body)."""
    received: list[tuple[bytes, str]] = []

    async def subscriber(scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = dict(scope["headers"])
        received.append((body, headers[b"x-cal-signature-256"].decode()))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async with calcom_env() as env, serve_asgi(subscriber, "127.0.0.1", 0) as url:
        env.fake.subscribe(url, "s3cret")
        attendee = Attendee(name="Erika Muster", email="erika@example.com", time_zone="Europe/Berlin")
        booking = await env.client.create_booking(
            CreateBooking(
                event_type_id=WEEKDAYS, start=datetime(2030, 3, 4, 8, tzinfo=UTC), attendee=attendee
            )
        )
        moved = await env.client.reschedule_booking(booking.uid, datetime(2030, 3, 4, 9, tzinfo=UTC))
        await env.client.cancel_booking(moved.uid, "ill")
        await env.fake.drain_webhooks()
    envelopes = []
    for body, signature in received:
        assert signature == hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        envelopes.append(json.loads(body))
    assert [e["triggerEvent"] for e in envelopes] == [
        "BOOKING_CREATED",
        "BOOKING_RESCHEDULED",
        "BOOKING_CANCELLED",
    ]
    created, rescheduled, cancelled = (e["payload"] for e in envelopes)
    assert (created["uid"], created["status"], created["startTime"]) == (
        booking.uid,
        "ACCEPTED",
        "2030-03-04T08:00:00Z",
    )
    assert created["attendees"][0]["email"] == "erika@example.com"
    assert created["eventTypeId"] == WEEKDAYS
    assert (rescheduled["uid"], rescheduled["rescheduleUid"]) == (moved.uid, booking.uid)
    assert rescheduled["rescheduleStartTime"] == "2030-03-04T08:00:00Z"
    assert (cancelled["uid"], cancelled["cancellationReason"]) == (moved.uid, "ill")
    assert cancelled["cancelledBy"] == cancelled["organizer"]["email"]  # the host's API key cancelled it
    assert all(datetime.fromisoformat(e["createdAt"].replace("Z", "+00:00")) for e in envelopes)
