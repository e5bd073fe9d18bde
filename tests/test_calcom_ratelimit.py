"""Rate-limit discipline: pacing by the headers, waiting out blocks, honouring both 429 paths.

Over real HTTP against the fake, with its window and block shortened to about a second so the tests run
in seconds with the shape of Cal.com's 120 requests / 60 s window and 60 s block. No timing assertions:
what is checked is what the fake saw (429s, requests per window) and what the client decided.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from calcom.errors import CalcomRateLimited
from calcom.ratelimit import NO_HEADERS, RateLimiter, RateLimitWait
from devstack.calcom_fake import RateLimitConfig
from rules.calcom_ratelimit import RateLimitSnapshot, Wait
from tests.calcom_fixtures import calcom_env

DAILY_SERVICE = 1
BASE = datetime(2030, 3, 4, tzinfo=UTC)


def distinct_window(i: int) -> tuple[datetime, datetime]:
    start = BASE + timedelta(minutes=i)
    return start, start + timedelta(days=1)


async def test_sustained_stream_gets_no_429_and_uses_most_of_the_budget() -> None:
    limit = 120
    config = RateLimitConfig(limit=limit, window_ms=1000, block_ms=1000)
    async with calcom_env(rate_limit=config, max_wait_seconds=None) as env:
        gate = asyncio.Semaphore(10)

        async def lookup(i: int) -> int:
            async with gate:
                return len(await env.finder.find_in_window(DAILY_SERVICE, *distinct_window(i)))

        results = await asyncio.gather(*(lookup(i) for i in range(2 * limit + 20)))
        assert all(count > 0 for count in results)
        assert env.fake.refused == 0
        assert env.client.limiter.stats.rate_limited == 0
        per_window = sorted(env.fake.accepted_per_window().items(), key=lambda item: item[0][1])
        counts = [count for _, count in per_window]
        assert sum(counts) == 2 * limit + 20
        assert all(count <= limit for count in counts)
        # every window but the last was used to at least 90 % before the client held back
        assert all(count >= 0.9 * limit for count in counts[:-1]), counts
        assert len(counts) >= 3
        assert env.client.limiter.stats.waits > 0


async def test_a_forced_block_is_waited_out_with_a_single_refused_request() -> None:
    async with calcom_env(max_wait_seconds=10.0) as env:
        env.fake.force_block(0.5)
        slots = await env.finder.find_in_window(DAILY_SERVICE, *distinct_window(0))
        assert slots
        assert env.fake.refused == 1
        assert env.fake.count("/v2/slots") == 2
        stats = env.client.limiter.stats
        assert (stats.rate_limited, stats.last_wait_source) == (1, "reset")
        assert stats.wait_seconds >= 0.5


@pytest.mark.parametrize(
    ("retry_after", "source"), [(None, "reset"), ("seconds", "retry-after"), ("date", "retry-after")]
)
async def test_both_429_paths_are_honoured(retry_after: str | None, source: str) -> None:
    config = RateLimitConfig(retry_after=retry_after)  # type: ignore[arg-type]
    async with calcom_env(rate_limit=config, max_wait_seconds=10.0) as env:
        env.fake.force_block(0.3)
        assert await env.finder.find_in_window(DAILY_SERVICE, *distinct_window(0))
        assert env.fake.refused == 1
        assert env.client.limiter.stats.last_wait_source == source
        refused = env.fake.requests[0]
        assert refused.status == 429
        assert env.fake.requests[1].status == 200


async def test_nothing_is_sent_while_a_block_is_known() -> None:
    async with calcom_env(max_wait_seconds=0.05) as env:
        env.fake.force_block(0.6)
        with pytest.raises(CalcomRateLimited) as first:
            await env.finder.find_in_window(DAILY_SERVICE, *distinct_window(0))
        assert 0.5 <= first.value.retry_after <= 1.0
        outcomes = await asyncio.gather(
            *(env.finder.find_in_window(DAILY_SERVICE, *distinct_window(i)) for i in range(1, 21)),
            return_exceptions=True,
        )
        assert all(isinstance(o, CalcomRateLimited) for o in outcomes)
        assert env.fake.count("/v2/slots") == 1  # only the request that discovered the block
        assert env.client.limiter.stats.refused_locally == 21
        await asyncio.sleep(first.value.retry_after)  # the wait the client asked for is enough
        assert await env.finder.find_in_window(DAILY_SERVICE, *distinct_window(0))
        assert env.fake.refused == 1


class ManualClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def test_limiter_backs_off_exponentially_below_five_then_waits_for_the_reset() -> None:
    clock = ManualClock()
    limiter = RateLimiter(backoff_base_seconds=0.5, clock=clock, sleep=clock.sleep)
    remaining = 7
    for _ in range(7):
        ticket = await limiter.acquire()
        remaining -= 1
        await limiter.observe(ticket, RateLimitSnapshot(limit=7, remaining=remaining, reset_seconds=60))
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0]  # at 4, 3, 2 and 1 left
    assert await limiter.remaining() == 0
    await limiter.acquire()  # the window is used up: wait for its reset, then the full limit again
    assert clock.sleeps[-1] == pytest.approx(60 - 7.5)
    assert await limiter.remaining() == 6
    assert limiter.stats.requests == 8


async def test_limiter_block_and_callers_wait_budget() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    ticket = await limiter.acquire()
    await limiter.observe_429(
        ticket, RateLimitSnapshot(limit=120, remaining=0, reset_seconds=60), Wait(30, "retry-after")
    )
    with pytest.raises(RateLimitWait) as held:
        await limiter.acquire(max_wait=10)
    assert held.value.seconds == 30
    assert clock.sleeps == []  # refused without waiting or sending
    await limiter.acquire(max_wait=30)
    assert clock.sleeps == [30]
    assert await limiter.remaining() == 119  # after the block: the full limit, minus the one just sent


async def test_limiter_ignores_answers_from_a_window_that_is_over() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    old = await limiter.acquire()
    await limiter.observe(old, RateLimitSnapshot(limit=10, remaining=9, reset_seconds=1))
    slow = await limiter.acquire()
    clock.now = 2.0  # the window ended while `slow` was in flight
    fresh = await limiter.acquire()
    await limiter.observe(slow, RateLimitSnapshot(limit=10, remaining=0, reset_seconds=1))
    assert await limiter.remaining() == 9  # the stale "0 left" does not stop the new window
    await limiter.observe(fresh, RateLimitSnapshot(limit=10, remaining=9, reset_seconds=1))
    assert await limiter.remaining() == 9


async def test_limiter_used_up_without_any_answer_waits_the_default_once() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep, default_wait_seconds=60)
    first = await limiter.acquire()
    await limiter.observe(first, RateLimitSnapshot(limit=2, remaining=1, reset_seconds=1))
    clock.now = 1.5  # new window: the full limit of 2, and no answer arrives for what is sent now
    await limiter.acquire()
    await limiter.acquire()
    await limiter.acquire()  # used up with no reset known: one default wait, then a new window
    assert clock.sleeps[-1] == 60
    assert await limiter.remaining() == 1


async def test_until_headers_are_known_one_probe_at_a_time_released_by_its_answer_or_lease() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep, probe_lease_seconds=10)
    probe = await limiter.acquire()
    with pytest.raises(RateLimitWait) as held:
        await limiter.acquire(max_wait=0)
    assert held.value.source == "probe"
    await limiter.observe(probe, NO_HEADERS)  # no headers came (a broken connection, a 5xx without them)
    second = await limiter.acquire(max_wait=0)  # the next request is the next probe, at once
    assert (second, clock.now) == (probe + 1, 0.0)
    await limiter.acquire()  # the second probe is never answered (its process died): its lease ends it
    assert clock.now == pytest.approx(10)
    assert limiter.stats.last_wait_source is None  # waiting for a probe is no rate-limit wait


async def test_an_answer_that_overtook_an_earlier_request_does_not_raise_the_estimate() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    probe = await limiter.acquire()
    await limiter.observe(probe, RateLimitSnapshot(limit=10, remaining=9, reset_seconds=60))
    await limiter.acquire()
    overtaking = await limiter.acquire()
    assert await limiter.remaining() == 7
    # Cal.com counted the second request before the first one arrived: "8 left" after it
    await limiter.observe(overtaking, RateLimitSnapshot(limit=10, remaining=8, reset_seconds=60))
    assert await limiter.remaining() == 7  # not 8: the first is still on its way and will count
