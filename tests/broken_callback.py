"""A workflow that passes for a running callback (its type and id) but cannot answer the state query, as a
callback workflow wedged by a bug would. Kept in its own module so the workflow sandbox imports nothing
else."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities import names


@workflow.defn(name=names.CALLBACK_WORKFLOW)
class BrokenCallback:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.query(name=names.CALLBACK_STATE_QUERY)
    def state(self) -> None:
        raise RuntimeError("this callback workflow cannot answer its state query")
