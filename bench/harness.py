"""What the benchmarks share: a throwaway PostgreSQL database, a Temporal dev server tuned as in
`devstack/temporal.py`, a load runner with latency quantiles, and plain-text tables."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.converter import DataConverter

from codec.keys import new_key_entry
from config import Settings
from devstack.postgres import EmbeddedPostgres, create_database, drop_database
from devstack.temporal import register_search_attributes, start_dev_server, wait_for_server
from models.tables import Branch, Company, Service, Staff, StaffService
from store.db import async_url
from wiring import data_converter

HEADERS = ["path", "mode", "creates", "creates/s", "p50 ms", "p95 ms", "p99 ms"]

# Benchmarks encrypt payloads as production does: one throwaway key per run, shared with the worker and
# API processes they start (`codec_env`).
BENCH_CODEC_KEYS = new_key_entry("bench")


def codec_env() -> dict[str, str]:
    return {"CALLBACKS_CODEC_KEYS": BENCH_CODEC_KEYS}


def engine_converter() -> DataConverter:
    """The engine's data converter (wiring.data_converter) with this run's key."""
    return data_converter(Settings(codec_keys=SecretStr(BENCH_CODEC_KEYS)))


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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def postgres() -> AsyncIterator[URL]:
    configured = os.environ.get("DATABASE_URL")
    folder: Path | None = None
    server: EmbeddedPostgres | None = None
    if configured:
        base = async_url(configured)
    else:
        folder = Path(tempfile.mkdtemp(prefix="bench-pg-"))
        server = EmbeddedPostgres(folder / "pgdata", delete_on_stop=True)
        base = server.url
    url = await create_database(base, prefix="bench")
    try:
        yield url
    finally:
        assert url.database is not None
        await drop_database(base, url.database)
        if server is not None:
            server.stop()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


@contextlib.asynccontextmanager
async def temporal_dev_server() -> AsyncIterator[str]:
    port = free_port()
    # In memory, with the measured tuning (transfer poll rate, devstack/temporal.py) start_dev_server applies.
    process = start_dev_server(port=port, ui_port=None)
    try:
        client = await wait_for_server(f"127.0.0.1:{port}")
        await register_search_attributes(client)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 20)


@dataclass(frozen=True)
class BenchTenant:
    company_id: int
    branch_id: int
    service_id: int


async def seed_tenant(session: AsyncSession, *, staff: int = 8, linked: int = 4) -> BenchTenant:
    """One company with a branch, a service and `staff` people, the first `linked` of them linked to the
    service: enough for auto-assignment to have real choices."""
    company = Company(name="Bench", time_zone="Europe/Berlin", currency="EUR")
    session.add(company)
    await session.flush()
    branch = Branch(company_id=company.id, name="Berlin", time_zone="Europe/Berlin")
    session.add(branch)
    await session.flush()
    service = Service(company_id=company.id, branch_id=branch.id, name="Checkup")
    people = [Staff(company_id=company.id, branch_id=branch.id, name=f"S{i}") for i in range(staff)]
    session.add_all([service, *people])
    await session.flush()
    session.add_all(
        StaffService(staff_id=person.id, service_id=service.id, company_id=company.id)
        for person in people[:linked]
    )
    return BenchTenant(company.id, branch.id, service.id)
