"""A workflow whose Updates all wait until it is released: Updates pile up in flight, as against a wedged
callback, until Temporal refuses more. Kept in its own module so the workflow sandbox imports nothing else."""

from __future__ import annotations

from temporalio import workflow


@workflow.defn
class Wedged:
    def __init__(self) -> None:
        self._released = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self._released)
        await workflow.wait_condition(workflow.all_handlers_finished)

    @workflow.update
    async def act(self) -> None:
        await workflow.wait_condition(lambda: self._released)

    @workflow.signal
    def release(self) -> None:
        self._released = True
