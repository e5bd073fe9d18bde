"""What the callback numbers are compared with, on the same server in the same run: a workflow that does
nothing (start + result) and a bare Update on a waiting workflow that does nothing (the round trip an
Update costs before any work of ours)."""

from __future__ import annotations

from temporalio import workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from bench.harness import Row, measure

TASK_QUEUE = "bench-noop"


@workflow.defn(sandboxed=False)
class NoopWorkflow:
    @workflow.run
    async def run(self, n: int) -> int:
        return n


@workflow.defn(sandboxed=False)
class WaitingNoopWorkflow:
    """Waits until told to finish; its Update answers at once."""

    def __init__(self) -> None:
        self._done = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self._done)

    @workflow.update
    async def touch(self, n: int) -> int:
        return n

    @workflow.signal
    def finish(self) -> None:
        self._done = True


async def measure_baselines(client: Client, count: int, concurrency: int) -> tuple[Row, Row]:
    """(no-op start+result, bare Update), each `count` times with `concurrency` at once."""
    async with Worker(client, task_queue=TASK_QUEUE, workflows=[NoopWorkflow, WaitingNoopWorkflow]):

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

        await measure("start waiting", "", begin, count + 20, concurrency, 0)

        async def touch(n: int) -> None:
            await waiting[n].execute_update(WaitingNoopWorkflow.touch, n)

        await measure("warm-up", "", touch, 20, 4, count)
        update = await measure(
            "waiting no-op workflow (baseline)", "bare Update", touch, count, concurrency, 0
        )

        async def finish(n: int) -> None:
            await waiting[n].signal(WaitingNoopWorkflow.finish)
            await waiting[n].result()

        await measure("finish waiting", "", finish, count + 20, concurrency, 0)
    return start, update
