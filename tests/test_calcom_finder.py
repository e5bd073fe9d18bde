"""The slot finder over real HTTP against the fake: windows, next available, horizon, cache."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from calcom.errors import CalcomServerError
from calcom.finder import InvalidSlotSearch, ServiceNotFound, ServiceNotOnCalcom
from devstack.calcom_fake import parse_iso
from tests.calcom_fixtures import SERVICES, WEEKDAYS, calcom_env

BERLIN = ZoneInfo("Europe/Berlin")
DAILY_SERVICE, WEEKDAY_SERVICE, NO_CALCOM_SERVICE = 1, 2, 4


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (
            datetime(2030, 3, 1, tzinfo=UTC),
            datetime(2030, 5, 30, 0, 0, 1, tzinfo=UTC),
            "longer than the 90-day",
        ),
        (datetime(2030, 3, 1, tzinfo=UTC), datetime(2031, 3, 1, tzinfo=UTC), "longer than the 90-day"),
        (datetime(2030, 3, 2, tzinfo=UTC), datetime(2030, 3, 2, tzinfo=UTC), "before it starts"),
        (datetime(2030, 3, 2, tzinfo=UTC), datetime(2030, 3, 1, tzinfo=UTC), "before it starts"),
        (datetime(2030, 3, 2), datetime(2030, 3, 3, tzinfo=UTC), "must carry a time zone"),
    ],
)
async def test_bad_windows_are_refused_without_asking(start: datetime, end: datetime, message: str) -> None:
    async with calcom_env() as env:
        with pytest.raises(InvalidSlotSearch, match=message):
            await env.finder.find_in_window(DAILY_SERVICE, start, end, "Europe/Berlin")
        with pytest.raises(InvalidSlotSearch, match="unknown time zone"):
            await env.finder.find_in_window(
                DAILY_SERVICE, datetime(2030, 3, 2, tzinfo=UTC), datetime(2030, 3, 3, tzinfo=UTC), "Berlin"
            )
        assert env.fake.requests == []


async def test_a_90_day_window_is_fine() -> None:
    async with calcom_env() as env:
        start = datetime(2030, 3, 4, tzinfo=UTC)
        slots = await env.finder.find_in_window(
            WEEKDAY_SERVICE, start, start + timedelta(days=90), "Europe/Berlin"
        )
        assert len(slots) == 13 * 5 * 8  # Mon 4 March to Sun 2 June: 13 working weeks, 8 slots a day
        assert slots == sorted(slots, key=lambda s: s.start)


async def test_next_available_across_a_weekend_and_a_fully_booked_day() -> None:
    """Friday 18:00 in Berlin, nothing on Saturday and Sunday, Monday fully booked → Tuesday 09:00."""
    async with calcom_env(chunk_days=1) as env:
        monday = datetime(2030, 3, 11, 9, tzinfo=BERLIN)
        for hour in range(8):
            env.fake.book(WEEKDAYS, monday + timedelta(hours=hour))
        friday_evening = datetime(2030, 3, 8, 18, tzinfo=BERLIN)
        slot = await env.finder.find_next_available(
            WEEKDAY_SERVICE, friday_evening, timedelta(days=14), "Europe/Berlin"
        )
        assert slot is not None
        assert slot.start == datetime(2030, 3, 12, 9, tzinfo=BERLIN)
        assert slot.start.utcoffset() == timedelta(hours=1)
        assert slot.day.isoformat() == "2030-03-12"
        # it walked Fri, Sat, Sun, Mon, Tue in one-day chunks and stopped at the first slot
        assert env.fake.count("/v2/slots") == 5

        three = await env.finder.find_next_slots(WEEKDAY_SERVICE, friday_evening, timedelta(days=14), limit=3)
        assert [s.start for s in three] == [datetime(2030, 3, 12, h, tzinfo=BERLIN) for h in (9, 10, 11)]


async def test_next_available_never_searches_past_the_horizon() -> None:
    async with calcom_env(chunk_days=1) as env:
        for hour in range(8):
            env.fake.book(WEEKDAYS, datetime(2030, 3, 11, 9, tzinfo=BERLIN) + timedelta(hours=hour))
        after = datetime(2030, 3, 8, 18, tzinfo=BERLIN)
        horizon = timedelta(days=3, hours=12)  # up to Tuesday 06:00, before the first free slot
        assert await env.finder.find_next_available(WEEKDAY_SERVICE, after, horizon) is None
        ends = [parse_iso(dict(r.query)["end"]) for r in env.fake.requests]
        assert ends
        assert all(end is not None and end <= after + horizon for end in ends)
        assert max(e for e in ends if e) > after + horizon - timedelta(seconds=1)  # searched all of it


async def test_next_available_defaults_to_now_and_searches_from_after() -> None:
    async with calcom_env() as env:
        after = datetime(2030, 3, 4, 10, 30, tzinfo=BERLIN)
        slot = await env.finder.find_next_available(WEEKDAY_SERVICE, after)
        assert slot is not None
        assert slot.start == datetime(2030, 3, 4, 11, tzinfo=BERLIN)
        first = await env.finder.find_next_available(WEEKDAY_SERVICE)  # the finder's clock: 2030-03-01
        assert first is not None
        assert first.start == datetime(2030, 3, 1, 9, tzinfo=BERLIN)


async def test_searches_minutes_apart_share_cached_chunks() -> None:
    async with calcom_env() as env:
        base = datetime(2030, 3, 4, 10, 0, tzinfo=BERLIN)
        for minutes in range(0, 30, 3):
            await env.finder.find_next_available(WEEKDAY_SERVICE, base + timedelta(minutes=minutes))
        assert env.fake.count("/v2/slots") == 1
        assert env.cache.stats.hits == 9


async def test_service_resolution() -> None:
    async with calcom_env() as env:
        with pytest.raises(ServiceNotOnCalcom):
            await env.finder.find_next_available(NO_CALCOM_SERVICE, datetime(2030, 3, 4, tzinfo=UTC))
        with pytest.raises(ServiceNotFound):
            await env.finder.find_next_available(999, datetime(2030, 3, 4, tzinfo=UTC))
        slot = await env.finder.find_next_available(
            SERVICES[WEEKDAY_SERVICE], datetime(2030, 3, 4, tzinfo=UTC)
        )
        assert slot is not None


async def test_burst_of_1000_lookups_for_10_windows_makes_at_most_10_requests() -> None:
    async with calcom_env() as env:
        windows = [
            (datetime(2030, 3, 4 + day, tzinfo=BERLIN), datetime(2030, 3, 5 + day, tzinfo=BERLIN))
            for day in range(10)
        ]
        lookups = [
            env.finder.find_in_window(DAILY_SERVICE, *windows[i % 10], "Europe/Berlin") for i in range(1000)
        ]
        results = await asyncio.gather(*lookups)
        assert env.fake.count("/v2/slots") <= 10
        assert env.client.limiter.stats.requests == env.fake.count("/v2/slots") == 10
        stats = env.cache.stats
        assert (stats.misses, stats.hits + stats.joined) == (10, 990)
        for i, slots in enumerate(results):
            start, _ = windows[i % 10]
            assert len(slots) == 6
            assert slots[0].start == start.replace(hour=9)
        # and after the burst, everything is answered from the cache
        await asyncio.gather(
            *(env.finder.find_in_window(DAILY_SERVICE, *w, "Europe/Berlin") for w in windows)
        )
        assert env.fake.count("/v2/slots") == 10


async def test_cache_ttl_is_45_seconds_and_keys_include_the_zone() -> None:
    clock = [1000.0]
    async with calcom_env(cache_clock=lambda: clock[0]) as env:
        window = (datetime(2030, 3, 4, tzinfo=UTC), datetime(2030, 3, 5, tzinfo=UTC))
        await env.finder.find_in_window(DAILY_SERVICE, *window, "Europe/Berlin")
        clock[0] += 44.9
        await env.finder.find_in_window(DAILY_SERVICE, *window, "Europe/Berlin")
        assert env.fake.count("/v2/slots") == 1
        await env.finder.find_in_window(DAILY_SERVICE, *window, "Europe/Lisbon")  # another zone, another key
        assert env.fake.count("/v2/slots") == 2
        clock[0] += 0.2  # 45.1 s after the first answer
        await env.finder.find_in_window(DAILY_SERVICE, *window, "Europe/Berlin")
        assert env.fake.count("/v2/slots") == 3


async def test_failures_are_shared_but_not_cached() -> None:
    async with calcom_env(max_attempts=1) as env:
        window = (datetime(2030, 3, 4, tzinfo=UTC), datetime(2030, 3, 5, tzinfo=UTC))
        env.fake.fail_next(500)
        outcomes = await asyncio.gather(
            *(env.finder.find_in_window(DAILY_SERVICE, *window) for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(o, CalcomServerError) for o in outcomes)
        assert env.fake.count("/v2/slots") == 1
        assert await env.finder.find_in_window(DAILY_SERVICE, *window)
        assert env.fake.count("/v2/slots") == 2


async def test_forget_drops_an_event_types_answers() -> None:
    async with calcom_env() as env:
        window = (datetime(2030, 3, 4, tzinfo=UTC), datetime(2030, 3, 5, tzinfo=UTC))
        await env.finder.find_in_window(DAILY_SERVICE, *window)
        await env.finder.find_in_window(WEEKDAY_SERVICE, *window)
        assert env.finder.forget(WEEKDAYS) == 1
        await env.finder.find_in_window(DAILY_SERVICE, *window)
        await env.finder.find_in_window(WEEKDAY_SERVICE, *window)
        assert env.fake.count("/v2/slots") == 3
