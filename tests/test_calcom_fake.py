"""The fake Cal.com follows the real contract (listed in `devstack/calcom_fake/__init__.py`), checked with
raw HTTP requests."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import httpx
import pytest

from devstack.calcom_fake import RateLimitConfig
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
