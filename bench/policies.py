"""Policy resolution latency against real PostgreSQL: cached hit, uncached single, batch of 1,000.

    python -m bench.policies [--companies 10] [--hits 20000] [--singles 2000] [--batches 50]

Uses DATABASE_URL's server when set (a throwaway database is created and dropped), else an embedded
PostgreSQL in a temporary folder. The baseline is a bare `SELECT 1` round trip through the same pool.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL

from bench.harness import postgres
from models.policies import PolicySubject
from models.tables import Branch, Company, PolicyConfiguration, Service, Staff
from store.db import create_engine, session_factory, transaction
from store.migrate import upgrade_async
from store.policies import PolicyCache, PolicyResolver


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def timed(
    run: Callable[[], Awaitable[Any]], count: int, before: Callable[[], None] | None = None
) -> list[float]:
    samples = []
    for _ in range(count):
        if before is not None:
            before()
        start = time.perf_counter_ns()
        await run()
        samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


async def seed(url: URL, companies: int) -> list[PolicySubject]:
    """Companies with 5 branches, 20 services, 100 staff; cancellation policies on every company and
    branch, every other service and every fifth staff member (≈ 36 rows per company)."""
    engine = create_engine(url, pool_size=2)
    sessions = session_factory(engine)
    subjects: list[PolicySubject] = []
    rng = random.Random(7)
    try:
        for c in range(companies):
            async with transaction(sessions) as session:
                company = Company(name=f"Bench {c}", time_zone="Europe/Berlin", currency="EUR")
                session.add(company)
                await session.flush()
                branches = [Branch(company_id=company.id, name=f"B{b}") for b in range(5)]
                session.add_all(branches)
                await session.flush()
                services = [
                    Service(company_id=company.id, branch_id=branches[s % 5].id, name=f"S{s}")
                    for s in range(20)
                ]
                staff = [
                    Staff(id=uuid.uuid4(), company_id=company.id, branch_id=branches[s % 5].id, name=f"P{s}")
                    for s in range(100)
                ]
                session.add_all([*services, *staff])
                await session.flush()

                def policy(
                    level: str, entity: object, config: dict[str, Any], company_id: int = company.id
                ) -> None:
                    session.add(
                        PolicyConfiguration(
                            company_id=company_id,
                            configurable_type=level,
                            configurable_id=str(entity),
                            policy_type="cancellation",
                            config=config,
                        )
                    )

                policy("company", company.id, {"hours_before": 24, "max_cancellations_per_month": 3})
                for branch in branches:
                    policy(
                        "branch",
                        branch.id,
                        {"fee_tiers": [{"min_hours": 0, "fee": 20}, {"min_hours": 24, "fee": 5}]},
                    )
                for service in services[::2]:
                    policy("service", service.id, {"fee_percentage": 10})
                for person in staff[::5]:
                    policy("staff", person.id, {"hours_before": 12})
                for _ in range(200):
                    person = rng.choice(staff)
                    subjects.append(
                        PolicySubject(
                            company_id=company.id,
                            branch_id=person.branch_id,
                            service_id=rng.choice(services).id,
                            staff_id=person.id,
                        )
                    )
    finally:
        await engine.dispose()
    return subjects


async def measure(url: URL, args: argparse.Namespace) -> list[tuple[str, list[float], str]]:
    subjects = await seed(url, args.companies)
    rng = random.Random(11)
    engine = create_engine(url, pool_size=5)
    sessions = session_factory(engine)
    queries = 0

    def count(*_: Any) -> None:
        nonlocal queries
        queries += 1

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    rows: list[tuple[str, list[float], str]] = []
    cached = PolicyResolver(sessions, PolicyCache())
    uncached = PolicyResolver(sessions)  # no listener: the cache is off, every call reads
    await cached.listen(url)
    try:
        async with sessions() as session:
            rows.append(
                (
                    "baseline: SELECT 1 round trip",
                    await timed(lambda: session.execute(text("SELECT 1")), args.singles),
                    "1",
                )
            )

        for company_id in {s.company_id for s in subjects}:
            await cached.warm_cache(company_id)
        picks = [rng.choice(subjects) for _ in range(args.hits)]
        iterator = iter(picks)
        queries = 0
        before = cached.stats()
        samples = await timed(lambda: cached.resolve(next(iterator), "cancellation"), args.hits)
        after = cached.stats()
        rows.append(
            (
                "cached hit (single)",
                samples,
                f"{queries / args.hits:.0f} (hits {after.hits - before.hits}, "
                f"misses {after.misses - before.misses})",
            )
        )

        iterator = iter([rng.choice(subjects) for _ in range(args.singles)])
        queries = 0
        samples = await timed(lambda: uncached.resolve(next(iterator), "cancellation"), args.singles)
        rows.append(("uncached single, cache off (own session)", samples, f"{queries / args.singles:.0f}"))

        iterator = iter([rng.choice(subjects) for _ in range(args.singles)])
        async with sessions() as session:
            queries = 0
            samples = await timed(
                lambda: uncached.resolve(next(iterator), "cancellation", session=session), args.singles
            )
        rows.append(
            ("uncached single, cache off (caller's session)", samples, f"{queries / args.singles:.0f}")
        )

        picks = [rng.choice(subjects) for _ in range(args.singles)]
        iterator, victims = iter(picks), iter(picks)
        async with sessions() as session:
            queries = 0
            samples = await timed(
                lambda: cached.resolve(next(iterator), "cancellation", session=session),
                args.singles,
                before=lambda: cached.cache.invalidate(next(victims).company_id),
            )
        rows.append(("cold miss, cache on: loads the company", samples, f"{queries / args.singles:.0f}"))

        batches = [rng.sample(subjects, 1000) for _ in range(args.batches)]
        iterator = iter(batches)
        queries = 0
        samples = await timed(lambda: uncached.resolve_many(next(iterator), "cancellation"), args.batches)
        companies = len({s.company_id for s in batches[0]})
        rows.append(
            (f"uncached batch of 1,000 ({companies} companies)", samples, f"{queries / args.batches:.0f}")
        )

        iterator = iter(batches)
        queries = 0
        samples = await timed(
            lambda: cached.resolve_many(next(iterator), "cancellation"),
            args.batches,
            before=cached.cache.clear,
        )
        rows.append(("cold batch of 1,000, cache on", samples, f"{queries / args.batches:.0f}"))

        iterator = iter(batches)
        queries = 0
        samples = await timed(lambda: cached.resolve_many(next(iterator), "cancellation"), args.batches)
        rows.append(("cached batch of 1,000", samples, f"{queries / args.batches:.0f}"))
    finally:
        await cached.close()
        await engine.dispose()
    return rows


def render(rows: list[tuple[str, list[float], str]]) -> str:
    lines = [
        f"{'case':<46} {'n':>6} {'p50':>11} {'p99':>11} {'mean':>11}  queries/call",
        "-" * 100,
    ]

    def fmt(us: float) -> str:
        return f"{us:,.1f} µs" if us < 1000 else f"{us / 1000:,.2f} ms"

    for name, samples, queries in rows:
        lines.append(
            f"{name:<46} {len(samples):>6} {fmt(percentile(samples, 0.5)):>11} "
            f"{fmt(percentile(samples, 0.99)):>11} {fmt(statistics.fmean(samples)):>11}  {queries}"
        )
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    async with postgres() as url:
        await upgrade_async(url.render_as_string(hide_password=False))
        rows = await measure(url, args)
        where = "DATABASE_URL" if os.environ.get("DATABASE_URL") else "embedded"
        print(
            f"Policy resolution, {args.companies} companies × 36 cancellation policies, PostgreSQL ({where})"
        )
        print(render(rows))


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--companies", type=int, default=10)
    parser.add_argument("--hits", type=int, default=20_000)
    parser.add_argument("--singles", type=int, default=2_000)
    parser.add_argument("--batches", type=int, default=50)
    asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    cli()
