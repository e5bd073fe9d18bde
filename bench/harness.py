"""What the benchmarks share: a load runner with latency quantiles, plain-text tables and a seeded tenant.
The stack itself (a throwaway PostgreSQL database, the tuned Temporal dev server, a payload key per run,
free ports) comes from `devstack/harness.py`, which the chaos runs use too."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from temporalio.converter import DataConverter

from codec.keys import new_key_entry
from devstack import harness
from devstack.harness import free_port, postgres, temporal_dev_server
from devstack.tenants import SeededTenant, seed_tenant

__all__ = ["BenchTenant", "free_port", "postgres", "seed_tenant", "temporal_dev_server"]

HEADERS = ["path", "mode", "creates", "creates/s", "p50 ms", "p95 ms", "p99 ms"]

# Benchmarks encrypt payloads as production does: one throwaway key per run, shared with the worker and
# API processes they start (`codec_env`).
BENCH_CODEC_KEYS = new_key_entry("bench")


def codec_env() -> dict[str, str]:
    return harness.codec_env(BENCH_CODEC_KEYS)


def engine_converter() -> DataConverter:
    """The engine's data converter (wiring.data_converter) with this run's key."""
    return harness.converter_for(BENCH_CODEC_KEYS)


@dataclass
class Row:
    path: str
    mode: str
    seconds: float
    latencies: list[float]

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def cells(self) -> list[str]:
        return [
            self.path,
            self.mode,
            f"{len(self.latencies):,}",
            f"{self.rate:,.0f}",
            *(f"{self.quantile(q):.1f}" for q in (0.50, 0.95, 0.99)),
        ]


def print_table(rows: Sequence[Row], headers: Sequence[str] = HEADERS) -> None:
    print_lines(headers, [row.cells() for row in rows])


def print_lines(headers: Sequence[str], lines: Sequence[Sequence[str]]) -> None:
    """A table with the first two columns left-aligned and the numbers right-aligned."""
    HEADERS = list(headers)
    table = [HEADERS, *lines]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADERS))]
    for n, line in enumerate(table):
        print(
            "  ".join(
                cell.rjust(w) if i > 1 else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(line, widths, strict=True))
            )
        )
        if n == 0:
            print("  ".join("-" * w for w in widths))


async def measure(
    path: str, mode: str, create: Callable[[int], Awaitable[None]], count: int, concurrency: int, offset: int
) -> Row:
    latencies: list[float] = []
    queue = iter(range(offset, offset + count))

    async def runner() -> None:
        for n in queue:
            start = time.perf_counter()
            await create(n)
            latencies.append(time.perf_counter() - start)

    started = time.perf_counter()
    await asyncio.gather(*(runner() for _ in range(concurrency)))
    return Row(path, mode, time.perf_counter() - started, latencies)


# The benchmarks' tenant: one company, a branch, a service and staff (devstack/tenants.py).
BenchTenant = SeededTenant
