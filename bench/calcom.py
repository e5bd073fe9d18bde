"""Benchmark of the Cal.com slot finder against the fake Cal.com on loopback (a benchmark, not a test).

    python -m bench.calcom [--misses 400] [--hits 50000] [--concurrency 20] [--in-process]

Measures, with the fake in its own process (or in this event loop with --in-process):
* baseline: a plain httpx GET /v2/slots (no finder, no cache, no rate limiter): the HTTP floor;
* cache misses, one at a time and concurrently: finder → cache → rate limiter → httpx → fake;
* cache hits: the same lookups answered from the 45 s cache;
* a cold burst of 1,000 lookups over 10 windows: what single-flight + cache save in requests.

The client spends a budget of its own process (`calcom.budget.MemoryBudget`); the warm-up lookup is the
key's first request, which goes out alone until its rate-limit headers are known. The engine's processes
share the key's budget in PostgreSQL instead (`store/calcom_budget.py`): two short transactions
per request (take, then learn from the answer), which the cache-miss rows here do not include.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from calcom.cache import TTLCache
from calcom.client import CalcomClient
from calcom.finder import SlotFinder, slot_cache
from calcom.ratelimit import RateLimiter
from calcom.wire import SLOTS_VERSION, end_param, utc_param
from devstack.calcom_fake import FakeCalcom, RateLimitConfig, serve_fake
from models.calcom import ServiceCalendar, Slot

SERVICE = ServiceCalendar(
    service_id=1, company_id=1, event_type_id=1001, duration_minutes=30, time_zone="Europe/Berlin"
)
UNLIMITED = 1_000_000_000


@dataclass
class Row:
    scenario: str
    lookups: int
    requests: int
    seconds: float
    latencies: list[float]

    def cells(self) -> list[str]:
        def ms(q: float) -> str:
            if not self.latencies:
                return "-"
            ordered = sorted(self.latencies)
            value = ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000
            return f"{value:.3f}" if value < 1 else f"{value:.2f}"

        saved = self.lookups - self.requests
        return [
            self.scenario,
            f"{self.lookups:,}",
            f"{self.requests:,}",
            f"{saved:,} ({saved / self.lookups:.1%})" if self.lookups else "-",
            f"{self.lookups / self.seconds:,.0f}" if self.seconds else "-",
            ms(0.50),
            ms(0.95),
            ms(0.99),
        ]


HEADERS = [
    "scenario",
    "lookups",
    "HTTP requests",
    "requests saved",
    "lookups/s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
]


def print_table(rows: list[Row]) -> None:
    table = [HEADERS, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADERS))]
    for n, line in enumerate(table):
        print(
            "  ".join(
                cell.rjust(width) if i else cell.ljust(width)
                for i, (cell, width) in enumerate(zip(line, widths, strict=True))
            )
        )
        if n == 0:
            print("  ".join("-" * width for width in widths))


def windows(count: int, first: datetime) -> list[tuple[datetime, datetime]]:
    """`count` distinct one-day windows (shifted by minutes, so each is its own cache key)."""
    return [(first + timedelta(minutes=i), first + timedelta(days=1, minutes=i)) for i in range(count)]


async def timed(calls: list[Callable[[], Awaitable[object]]], concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def one(call: Callable[[], Awaitable[object]]) -> None:
        async with gate:
            started = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    if concurrency == 1:
        for call in calls:
            await one(call)
    else:
        await asyncio.gather(*(one(call) for call in calls))
    return time.perf_counter() - started, latencies


@contextlib.asynccontextmanager
async def fake_in_subprocess() -> AsyncIterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen(  # noqa: ASYNC220 - starting it is instant; we poll its health below
        [sys.executable, "-m", "devstack.calcom_fake", "--port", str(port), "--limit", str(UNLIMITED)],
        stdout=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(500):
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(f"{url}/_fake/health")).status_code == 200:
                        break
                await asyncio.sleep(0.02)
            else:
                raise RuntimeError("the fake Cal.com did not start")
        yield url
    finally:
        process.terminate()
        process.wait(10)


@contextlib.asynccontextmanager
async def fake_here() -> AsyncIterator[str]:
    async with serve_fake(FakeCalcom(rate_limit=RateLimitConfig(limit=UNLIMITED))) as url:
        yield url


def finder_for(url: str) -> tuple[CalcomClient, SlotFinder, TTLCache[list[Slot]]]:
    client = CalcomClient(url, "cal_bench", limiter=RateLimiter(), max_connections=50, max_wait_seconds=None)

    async def resolve(service_id: int, company_id: int | None) -> ServiceCalendar | None:
        return SERVICE

    cache = slot_cache(45.0)
    return client, SlotFinder(client, resolve, cache=cache), cache


async def run(args: argparse.Namespace) -> list[Row]:
    first = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=7)
    rows: list[Row] = []
    async with fake_here() if args.in_process else fake_in_subprocess() as url:
        # baseline: plain httpx, same request, no finder/cache/limiter
        async with httpx.AsyncClient(base_url=url, headers={"cal-api-version": SLOTS_VERSION}) as http:

            def raw(start: datetime, end: datetime) -> Callable[[], Awaitable[object]]:
                params = {
                    "eventTypeId": "1001",
                    "start": utc_param(start),
                    "end": end_param(end),
                    "format": "range",
                }
                return lambda: http.get("/v2/slots", params=params)

            await raw(first, first + timedelta(days=1))()  # warm the connection
            seconds, lat = await timed([raw(*w) for w in windows(args.misses, first)], 1)
            rows.append(Row("baseline: plain httpx GET (sequential)", args.misses, args.misses, seconds, lat))
            later = first + timedelta(days=2)
            seconds, lat = await timed([raw(*w) for w in windows(args.misses, later)], args.concurrency)
            rows.append(
                Row(
                    f"baseline: plain httpx GET ({args.concurrency} concurrent)",
                    args.misses,
                    args.misses,
                    seconds,
                    lat,
                )
            )

        client, finder, cache = finder_for(url)
        async with client:
            await finder.find_in_window(SERVICE, first - timedelta(days=1), first)  # warm the connection

            def lookup(start: datetime, end: datetime) -> Callable[[], Awaitable[object]]:
                return lambda: finder.find_in_window(SERVICE, start, end, "Europe/Berlin")

            sent = client.limiter.stats.requests
            seconds, lat = await timed([lookup(*w) for w in windows(args.misses, first)], 1)
            rows.append(
                Row(
                    "cache miss (sequential)", args.misses, client.limiter.stats.requests - sent, seconds, lat
                )
            )

            later = first + timedelta(days=2)
            sent = client.limiter.stats.requests
            seconds, lat = await timed([lookup(*w) for w in windows(args.misses, later)], args.concurrency)
            rows.append(
                Row(
                    f"cache miss ({args.concurrency} concurrent)",
                    args.misses,
                    client.limiter.stats.requests - sent,
                    seconds,
                    lat,
                )
            )

            warm = windows(10, first)
            sent = client.limiter.stats.requests
            calls = [lookup(*warm[i % 10]) for i in range(args.hits)]
            seconds, lat = await timed(calls, 1)
            rows.append(
                Row("cache hit (sequential)", args.hits, client.limiter.stats.requests - sent, seconds, lat)
            )

            cold = windows(10, first + timedelta(days=5))
            sent = client.limiter.stats.requests
            calls = [lookup(*cold[i % 10]) for i in range(1000)]
            seconds, lat = await timed(calls, 1000)
            rows.append(
                Row(
                    "cold burst: 1,000 lookups / 10 windows",
                    1000,
                    client.limiter.stats.requests - sent,
                    seconds,
                    lat,
                )
            )
            stats = cache.stats
            print(
                f"cache: {stats.hits:,} hits, {stats.joined:,} joined in flight, {stats.misses:,} misses; "
                f"client: {client.limiter.stats.requests:,} requests, "
                f"{client.limiter.stats.rate_limited} × 429, {client.limiter.stats.waits} waits"
            )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--misses", type=int, default=400, help="distinct windows per miss scenario")
    parser.add_argument("--hits", type=int, default=50_000, help="lookups in the hit scenario")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--in-process", action="store_true", help="serve the fake in this event loop")
    args = parser.parse_args(argv)
    where = "in this event loop" if args.in_process else "in its own process"
    print(f"Cal.com slot finder vs. the fake Cal.com on 127.0.0.1 ({where}), Python {sys.version.split()[0]}")
    rows = asyncio.run(run(args))
    print()
    print_table(rows)
    hit = next(r for r in rows if r.scenario.startswith("cache hit"))
    miss = next(r for r in rows if r.scenario.startswith("cache miss (seq"))
    print()
    print(
        f"a cache hit is {statistics.median(miss.latencies) / statistics.median(hit.latencies):,.0f}× faster "
        "than a miss (p50) and sends no request"
    )


if __name__ == "__main__":
    main()
