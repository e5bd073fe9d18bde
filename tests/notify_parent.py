"""A stand-in for the callback workflow's side of notifications: it persists nothing, just calls
`notify()` for the events of a step and finishes, as the callback workflow does after each transition.
Kept in its own module so the workflow sandbox imports nothing but models and workflows."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.callbacks import CallbackEvent, CallbackState
    from models.notifications import Frozen
    from workflows.notifications import notify


class Step(Frozen):
    events: list[CallbackEvent]
    state: CallbackState


@workflow.defn
class StepThatNotifies:
    @workflow.run
    async def run(self, step: Step) -> str:
        await notify(step.events, step.state)
        return "lifecycle went on"
