"""A prepared callback's first step, decided the same way on both sides of the start.

The starter (the API) prepares a new callback just before it starts its workflow (activities/preparation.py).
The first step is a pure function of the request, the preparation and its moment (`open_callback`), so the
starter can decide it too and start the workflow with that step's search attributes already shown: the
run then finds nothing to upsert, which spares every new callback a history event, a visibility write on
the server and about 6 KiB in the worker's cache while it waits on its SLA (bench/callbacks.py). For that
the run takes the preparation's moment as the moment of its first step — when the request reached the
engine, which is when its SLA clock should start anyway — unless the two clocks disagree beyond what a
start can take (a start replayed from a queue, a skewed clock, a test's skipped time): then its own.
When the write finds the picked assignee full, the run decides again and upserts what changed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from temporalio.common import TypedSearchAttributes

from models import search_attributes
from models.callbacks import NewCallback, PreparedCallback
from rules.callback_machine import open_callback

# How long before the run's first moment a preparation may have been made and still be its moment.
EARLIEST = timedelta(minutes=5)
# How far ahead of the workflow's clock the starter's clock may be (clocks of two hosts).
LATEST = timedelta(seconds=1)


def first_step_moment(prepared: PreparedCallback | None, workflow_now: datetime) -> datetime:
    """The moment of a new callback's first step: its preparation's, when it is that moment for the run
    too, otherwise the run's own."""
    if prepared is None or prepared.at is None:
        return workflow_now
    if workflow_now - EARLIEST <= prepared.at <= workflow_now + LATEST:
        return prepared.at
    return workflow_now


def attributes_at_start(
    callback_id: UUID, request: NewCallback, prepared: PreparedCallback | None
) -> TypedSearchAttributes:
    """What the callback shows in the Temporal UI from its start: its first step's attributes when the
    starter prepared it, otherwise the request's (pending until the first step)."""
    if prepared is None or prepared.at is None:
        return search_attributes.initial(request.company_id, request.branch_id, request.priority.value)
    return search_attributes.typed_for(open_callback(callback_id, request, prepared, prepared.at).state)
