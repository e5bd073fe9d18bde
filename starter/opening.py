"""Creating a callback the API's way: prepared, its first step written by the API itself, then its
workflow started from that stored state (activities/opening.py says why). One piece for the API and the
benchmarks, which create callbacks exactly as the API does."""

from __future__ import annotations

from temporalio.client import WorkflowExecutionStatus

from activities.opening import CallbackOpener
from activities.row_states import RowStates
from models.callbacks import (
    CallbackStatus,
    CreatedCallback,
    NewCallback,
    PreparedCallback,
    callback_workflow_id,
    stored_callback_workflow_id,
)
from models.tables import CallbackRequest
from starter.client import CallbackClient, callback_id_for


async def open_callback(
    opener: CallbackOpener,
    callbacks: CallbackClient,
    request: NewCallback,
    prepared: PreparedCallback,
    idempotency_key: str | None = None,
) -> CreatedCallback:
    """The new callback once its first step is in PostgreSQL and its workflow started. A concurrent
    request with the same key that wrote the row first makes this one join that callback instead (its
    answer then says `created=False`, with the stored state). Raises the opener's and the client's
    errors; a start that fails after the write leaves the row to the reconciliation sweep."""
    callback_id = callback_id_for(request.company_id, idempotency_key)
    opened = await opener.open(
        callback_id, request, prepared, callback_workflow_id(request.company_id, callback_id)
    )
    if not opened.written:
        return await callbacks.create(request, idempotency_key, stored=True, prepared=prepared)
    await callbacks.start_opened(opened.state, suggest_slots=prepared.bookable)
    return CreatedCallback(state=opened.state, created=True)


async def join_stored(
    callbacks: CallbackClient,
    rows: RowStates,
    row: CallbackRequest,
    request: NewCallback,
    idempotency_key: str,
    prepared: PreparedCallback,
) -> CreatedCallback:
    """A request whose key's callback row is written already: join its workflow. If that workflow was
    never started (the first request's start was lost after its write, and no sweep has run since), start
    it from the row, as the sweep would: this request then completes the creation (`created=True`). If its
    run was stopped before it took its first task, it never held more than the row: start it again from
    the row (a run stopped later is refused with how to restore it, `CallbackStopped`)."""
    workflow_id = stored_callback_workflow_id(row.id, row.workflow_id)
    started_now = False
    if not CallbackStatus(row.status).is_terminal:
        status, ran = await callbacks.run_status(workflow_id)
        if status is None or (status != WorkflowExecutionStatus.RUNNING and not ran):
            state = await rows.state_from_row(row)
            await callbacks.start_opened(state, suggest_slots=prepared.bookable)
            started_now = status is None
    joined = await callbacks.create(
        request, idempotency_key, workflow_id=workflow_id, stored=True, prepared=prepared
    )
    return CreatedCallback(state=joined.state, created=joined.created or started_now)
