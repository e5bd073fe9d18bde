"""A minimal workflow that looks up slots the way the callback workflow does (via workflows/calcom.py)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.calcom import FindSlots, FoundSlots
    from workflows.calcom import find_slots


@workflow.defn
class SlotLookupWorkflow:
    @workflow.run
    async def run(self, request: FindSlots) -> FoundSlots:
        return await find_slots(request)
