"""What the callback numbers are compared with, on the same server in the same run:

- a workflow that does nothing (start + result);
- a bare Update on a waiting workflow that does nothing: what an Update costs before any work of ours;
- the floor of a staff action under DESIGN.md §3.2, still without any code of ours: an Update that runs a
  local activity that does nothing (the step's write), upserts one search attribute (kept current on every
  transition) and ends the run (as `complete` ends a callback). Measured on a waiting workflow, and sent
  right after its start as the lifecycle sends its `complete`: that Update waits for the new workflow's
  first task.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from bench.harness import Row, measure
from models.search_attributes import CALLBACK_STATUS

TASK_QUEUE = "bench-noop"


@workflow.defn(sandboxed=False)
class NoopWorkflow:
    @workflow.run
    async def run(self, n: int) -> int:
        return n


@activity.defn
async def write_nothing(n: int) -> int:
    return n


@workflow.defn(sandboxed=False)
class WaitingNoopWorkflow:
    """Waits until told to finish; `touch` answers at once, `act` as a staff action at the least would."""

    def __init__(self) -> None:
        self._done = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self._done)

    @workflow.update
    async def touch(self, n: int) -> int:
        return n

    @workflow.update
    async def act(self, n: int) -> int:
        await workflow.execute_local_activity(write_nothing, n, start_to_close_timeout=timedelta(seconds=10))
        workflow.upsert_search_attributes([CALLBACK_STATUS.value_set("completed")])
        self._done = True
        return n

    @workflow.signal
    def finish(self) -> None:
        self._done = True


@dataclass
class Baselines:
    noop: Row
    bare_update: Row
    floor_on_waiting: Row
    floor_after_start: Row


async def measure_baselines(client: Client, count: int, concurrency: int) -> Baselines:
    """Each baseline `count` times with `concurrency` at once."""
    async with Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[NoopWorkflow, WaitingNoopWorkflow],
        activities=[write_nothing],
    ):

        async def noop(n: int) -> None:
            await client.execute_workflow(NoopWorkflow.run, n, id=f"noop-{n}", task_queue=TASK_QUEUE)

        await measure("warm-up", "", noop, 20, 4, 0)
        start = await measure("no-op workflow (baseline)", "start+result", noop, count, concurrency, 100)

        # One waiting workflow per Update, as every callback gets its own Update in the lifecycle.
        waiting: dict[int, WorkflowHandle[WaitingNoopWorkflow, None]] = {}

        async def begin(n: int) -> None:
            waiting[n] = await client.start_workflow(
                WaitingNoopWorkflow.run, id=f"waiting-{n}", task_queue=TASK_QUEUE
            )

        await measure("start waiting", "", begin, 2 * (count + 20), concurrency, 0)

        async def touch(n: int) -> None:
            await waiting[n].execute_update(WaitingNoopWorkflow.touch, n)

        await measure("warm-up", "", touch, 20, 4, count)
        update = await measure(
            "waiting no-op workflow (baseline)", "bare Update", touch, count, concurrency, 0
        )

        async def act(n: int) -> None:
            await waiting[n].execute_update(WaitingNoopWorkflow.act, n)

        await measure("warm-up", "", act, 20, 4, 2 * count + 20)
        on_waiting = await measure(
            "  floor: on a waiting no-op workflow", "write+show+end", act, count, concurrency, count + 20
        )

        async def finish(n: int) -> None:
            await waiting[n].signal(WaitingNoopWorkflow.finish)
            await waiting[n].result()

        await measure("finish waiting", "", finish, count + 20, concurrency, 0)
        after_start = await floor_after_start(client, count, concurrency)
    return Baselines(start, update, on_waiting, after_start)


async def floor_after_start(client: Client, count: int, concurrency: int) -> Row:
    """The floor Update sent right after its workflow's start (latency of the Update alone)."""
    latencies: list[float] = []

    async def lifecycle(n: int) -> None:
        handle = await client.start_workflow(WaitingNoopWorkflow.run, id=f"floor-{n}", task_queue=TASK_QUEUE)
        started = time.perf_counter()
        await handle.execute_update(WaitingNoopWorkflow.act, n)
        latencies.append(time.perf_counter() - started)

    await measure("warm-up", "", lifecycle, 20, 4, count)
    latencies.clear()
    whole = await measure("", "", lifecycle, count, concurrency, 0)
    return Row("  floor: right after a no-op start", "write+show+end", whole.seconds, latencies)
