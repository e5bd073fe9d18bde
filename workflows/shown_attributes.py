"""The search attributes a callback workflow shows in the Temporal UI, upserted only when a step changed
them (hot path: every upsert is a history event, and every event costs memory in the worker's cache).

What the workflow shows now is read from `workflow.info()`, which the SDK keeps current with the start's
attributes and every upsert: no copy of it per cached callback."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models import search_attributes
    from models.callbacks import CallbackState


def show_attributes(state: CallbackState, *, only_changes: bool) -> None:
    """The state's search attributes; with `only_changes` (runs on the hot path) only those the step
    changed, otherwise all of them (runs recorded before, which replay that way)."""
    if not only_changes:
        workflow.upsert_search_attributes(search_attributes.updates_for(state))
        return
    shown = search_attributes.known_from(workflow.info().typed_search_attributes)
    changed = search_attributes.changed_updates(state, shown)
    if changed:
        workflow.upsert_search_attributes(changed)
