"""A fake Cal.com on loopback plus our real client and finder, per test, configurable.

`calcom_env()` starts the fake (uvicorn on 127.0.0.1, a free port) in the test's event loop, points a real
`CalcomClient` at it and, when the test ends, checks that the fake's strict validation refused none of the
client's requests (tests that send bad requests on purpose pass `strict=False`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from calcom.budget import RateBudget
from calcom.cache import TTLCache
from calcom.client import CalcomClient
from calcom.finder import SlotFinder, slot_cache
from calcom.ratelimit import RateLimiter
from devstack.calcom_fake import EventType, FakeCalcom, RateLimitConfig, serve_fake, working_hours
from models.calcom import ServiceCalendar, Slot

# The fake's calendar clock: a fixed "now" so that dates a few months ahead stay inside Cal.com's
# one-year clamp whatever day the suite runs on.
NOW = datetime(2030, 3, 1, tzinfo=UTC)
API_KEY = "cal_test_0123456789"

DAILY = 10  # Europe/Berlin, every day 09:00-12:00, 30 min
WEEKDAYS = 20  # Europe/Berlin, Mon-Fri 09:00-17:00, 60 min
LATE_UTC = 30  # UTC, every day 23:00-24:00, 30 min


def sample_event_types() -> list[EventType]:
    return [
        EventType(DAILY, "daily", 30, "Europe/Berlin", working_hours("mon-sun", "09:00", "12:00"), host="a"),
        EventType(
            WEEKDAYS, "weekdays", 60, "Europe/Berlin", working_hours("mon-fri", "09:00", "17:00"), host="b"
        ),
        EventType(LATE_UTC, "late", 30, "UTC", working_hours("mon-sun", "23:00", "24:00"), host="c"),
    ]


SERVICES = {
    1: ServiceCalendar(
        service_id=1, company_id=1, event_type_id=DAILY, duration_minutes=30, time_zone="Europe/Berlin"
    ),
    2: ServiceCalendar(
        service_id=2, company_id=1, event_type_id=WEEKDAYS, duration_minutes=60, time_zone="Europe/Berlin"
    ),
    3: ServiceCalendar(
        service_id=3, company_id=1, event_type_id=LATE_UTC, duration_minutes=30, time_zone="UTC"
    ),
    4: ServiceCalendar(service_id=4, company_id=1, event_type_id=None, duration_minutes=30, time_zone="UTC"),
}


async def resolve_service(service_id: int, company_id: int | None) -> ServiceCalendar | None:
    found = SERVICES.get(service_id)
    if found is None or (company_id is not None and found.company_id != company_id):
        return None
    return found


@dataclass
class CalcomEnv:
    fake: FakeCalcom
    url: str
    client: CalcomClient
    finder: SlotFinder
    cache: TTLCache[list[Slot]]
    extra_clients: list[CalcomClient] = field(default_factory=list)

    def new_client(self, **kwargs: Any) -> CalcomClient:
        client = make_client(self.url, **kwargs)
        self.extra_clients.append(client)
        return client


def make_client(
    url: str,
    *,
    api_key: str | None = API_KEY,
    backoff_base_seconds: float = 0.01,
    max_wait_seconds: float | None = 10.0,
    max_attempts: int = 3,
    retry_backoff_seconds: float = 0.01,
    budget: RateBudget | None = None,
    timeout_seconds: float = 10.0,
) -> CalcomClient:
    """`budget`: the key's budget shared with other clients (as other processes would); else its own."""
    return CalcomClient(
        url,
        api_key,
        limiter=RateLimiter(budget, backoff_base_seconds=backoff_base_seconds),
        timeout_seconds=timeout_seconds,
        max_wait_seconds=max_wait_seconds,
        max_attempts=max_attempts,
        retry_backoff_seconds=retry_backoff_seconds,
    )


@asynccontextmanager
async def calcom_env(
    *,
    rate_limit: RateLimitConfig | None = None,
    event_types: list[EventType] | None = None,
    chunk_days: int = 7,
    cache_clock: Callable[[], float] | None = None,
    strict: bool = True,
    latency_seconds: float = 0.0,
    **client_kwargs: Any,
) -> AsyncIterator[CalcomEnv]:
    fake = FakeCalcom(
        event_types if event_types is not None else sample_event_types(),
        rate_limit=rate_limit or RateLimitConfig(limit=100_000),
        now=lambda: NOW,
        latency_seconds=latency_seconds,
    )
    async with serve_fake(fake) as url:
        client = make_client(url, **client_kwargs)
        cache = slot_cache(45.0, cache_clock)
        finder = SlotFinder(client, resolve_service, cache=cache, chunk_days=chunk_days, clock=lambda: NOW)
        env = CalcomEnv(fake, url, client, finder, cache)
        try:
            yield env
        finally:
            for extra in env.extra_clients:
                await extra.aclose()
            await client.aclose()
        if strict:
            refused = [(r.path, r.query, r.validation_error) for r in fake.validation_errors()]
            assert not refused, f"the fake's strict validation refused requests of our client: {refused}"
