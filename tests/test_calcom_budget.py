"""One Cal.com budget per API key, however many processes use it (issue 19, defect 9).

Cal.com counts per key: a burst before the first answer went out unthrottled (40 lookups → 30 × 429, and
real Cal.com then blocks the key for 60 s), and the worker and the API each spent the same key's budget
as if it were theirs alone. Here two clients that share nothing but the database — each its own engine,
as two processes have — spend one budget (`store/calcom_budget.py`) against the fake Cal.com, which
counts per key whatever connection a request comes by.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calcom.budget import budget_key
from calcom.client import CalcomClient
from calcom.errors import CalcomRateLimited
from devstack.calcom_fake import RateLimitConfig, RequestRecord
from models.tables import CalcomRateBudget
from store.calcom_budget import PgRateBudget
from store.db import create_engine, session_factory
from tests.calcom_fixtures import API_KEY, DAILY, CalcomEnv, calcom_env

BASE = datetime(2030, 3, 4, tzinfo=UTC)
# 40 concurrent lookups against a key allowed 20 per (shortened) window: twice what one window takes.
LIMIT, LOOKUPS = 20, 40


def window(i: int) -> tuple[datetime, datetime]:
    start = BASE + timedelta(minutes=i)
    return start, start + timedelta(days=1)


@asynccontextmanager
async def two_processes(database_url: URL) -> AsyncIterator[list[async_sessionmaker[AsyncSession]]]:
    """The database as a worker and an API process see it: each through its own engine and pool."""
    engines = [create_engine(database_url, pool_size=5) for _ in range(2)]
    try:
        yield [session_factory(engine) for engine in engines]
    finally:
        for engine in engines:
            await engine.dispose()


async def shared_clients(
    env: CalcomEnv, processes: list[async_sessionmaker[AsyncSession]], max_wait_seconds: float | None
) -> list[CalcomClient]:
    """A client per process, spending the key's one budget; each has looked at it once (its database
    connection is open, the row exists), so that a test's timing starts with the first request."""
    key = budget_key(env.url, API_KEY)
    clients = [
        env.new_client(budget=PgRateBudget(sessions, key), max_wait_seconds=max_wait_seconds)
        for sessions in processes
    ]
    for client in clients:
        assert await client.limiter.remaining() is None  # nothing known before the first answer
    return clients


def by_arrival(requests: list[RequestRecord]) -> list[RequestRecord]:
    ordered = sorted(requests, key=lambda record: record.at)
    first, second = ordered[0], ordered[1]
    assert first.done_at is not None
    assert second.at >= first.done_at, "a second request went out before the first answer was in"
    return ordered


async def test_before_the_first_headers_requests_go_one_at_a_time() -> None:
    config = RateLimitConfig(limit=LIMIT, window_ms=1000, block_ms=5000)
    async with calcom_env(rate_limit=config, max_wait_seconds=None, latency_seconds=0.02) as env:
        results = await asyncio.gather(*(env.client.get_slots(DAILY, *window(i)) for i in range(LOOKUPS)))
        assert all(results)
        assert env.fake.refused == 0
        requests = by_arrival(env.fake.requests)  # nothing else was sent until the first answer was in
        # once the headers are known the rest no longer wait for each other
        assert any(later.at < (earlier.done_at or 0.0) for earlier, later in itertools.pairwise(requests[1:]))
        assert all(count <= LIMIT for count in env.fake.accepted_per_window().values())


async def test_two_processes_spend_one_budget_without_a_429(database_url: URL) -> None:
    config = RateLimitConfig(limit=LIMIT, window_ms=1000, block_ms=5000)
    async with (
        calcom_env(rate_limit=config, latency_seconds=0.01) as env,
        two_processes(database_url) as processes,
    ):
        worker, api = await shared_clients(env, processes, max_wait_seconds=None)
        results = await asyncio.gather(
            *((worker if i % 2 else api).get_slots(DAILY, *window(i)) for i in range(LOOKUPS))
        )
        assert all(results)
        assert env.fake.refused == 0
        assert worker.limiter.stats.rate_limited == api.limiter.stats.rate_limited == 0
        per_window = env.fake.accepted_per_window()
        assert sum(per_window.values()) == LOOKUPS
        assert len(per_window) >= 2
        assert all(count <= LIMIT for count in per_window.values())
        by_arrival(env.fake.requests)  # one probe for both processes

        # the budget is one row, named by a hash: the key itself is nowhere in the database
        async with processes[0]() as session:
            rows = (await session.scalars(select(CalcomRateBudget))).all()
        assert [row.key_hash for row in rows] == [budget_key(env.url, API_KEY)]
        assert rows[0].sent == LOOKUPS
        assert all(API_KEY not in str(value) for value in vars(rows[0]).values())


async def test_a_block_found_by_one_process_stops_the_other(database_url: URL) -> None:
    async with (
        calcom_env() as env,
        two_processes(database_url) as processes,
    ):
        worker, api = await shared_clients(env, processes, max_wait_seconds=0.05)
        env.fake.force_block(0.8)
        with pytest.raises(CalcomRateLimited) as found:
            await worker.get_slots(DAILY, *window(0))
        outcomes = await asyncio.gather(
            *(api.get_slots(DAILY, *window(i)) for i in range(1, 21)), return_exceptions=True
        )
        assert all(isinstance(outcome, CalcomRateLimited) for outcome in outcomes)
        assert env.fake.count("/v2/slots") == 1  # only the request that found the block
        assert api.limiter.stats.refused_locally == 20
        await asyncio.sleep(found.value.retry_after)  # the wait the first process was told is enough
        assert await api.get_slots(DAILY, *window(0))
        assert env.fake.refused == 1


async def test_a_block_is_waited_out_by_every_process_with_one_refused_request(database_url: URL) -> None:
    async with (
        calcom_env() as env,
        two_processes(database_url) as processes,
    ):
        worker, api = await shared_clients(env, processes, max_wait_seconds=10.0)
        env.fake.force_block(0.5)
        results = await asyncio.gather(
            *((worker if i % 2 else api).get_slots(DAILY, *window(i)) for i in range(20))
        )
        assert all(results)
        assert env.fake.refused == 1  # no storm: the one 429 held back both processes until the reset
        assert env.fake.count("/v2/slots") == 21
        assert {worker.limiter.stats.last_wait_source, api.limiter.stats.last_wait_source} == {"reset"}
