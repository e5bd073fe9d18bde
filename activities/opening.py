"""A new callback opened by its starter (the API): prepared, its first step decided and written to
PostgreSQL here, so that its workflow starts from a stored state (starter/opening.py).

The workflow would take the same decision (`open_callback`, from the same preparation at the same
moment) and write it with the same writer (activities/step_writer.py); taking it at the edge spares every
new callback the workflow's create Update, its first local activity and the activation that resolves it.
The workflow owns every later step. If its start is lost after the write (Temporal away, the API killed),
the row is open without a workflow, which the reconciliation sweep repairs by starting one from the row
(activities/operations.py), as it does for every such row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy.exc import IntegrityError

from activities.preparation import CallbackPreparer
from activities.step_writer import CapacityTaken, StepWriter
from models.callbacks import CallbackState, NewCallback, PreparedCallback, Transition
from rules.callback_machine import open_callback
from telemetry import logs as log_context

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OpenedCallback:
    """The first step as written; `written` is False when the callback's row was there already (a
    concurrent request with the same idempotency key wrote it first)."""

    state: CallbackState
    written: bool


class CallbackOpener:
    def __init__(self, preparer: CallbackPreparer, writer: StepWriter) -> None:
        self._preparer = preparer
        self._writer = writer

    async def open(
        self, callback_id: UUID, request: NewCallback, prepared: PreparedCallback, workflow_id: str
    ) -> OpenedCallback:
        """Decide and write the first step at the preparation's moment. When a concurrent creation took
        the picked staff member's last place, decide again without them (as the workflow does). A reference
        deleted since the preparation raises the preparation's own `InvalidReferences`."""
        assert prepared.at is not None, "a preparation made by CallbackPreparer.prepare has its moment"
        full: list[UUID] = []
        while True:
            step = open_callback(callback_id, request, prepared, prepared.at, full)
            transition = Transition(
                state=step.state,
                events=step.events,
                escalation=step.escalation,
                claim=step.claim,
                notify=True,
            )
            try:
                written = await self._writer.write(transition, workflow_id)
            except CapacityTaken as taken:
                if taken.staff_id in full:
                    raise
                full.append(taken.staff_id)
                continue
            except IntegrityError:
                await self._preparer.prepare(request, at=prepared.at)  # names what was deleted
                raise
            if written:
                # Like the worker's lines about a step, it carries the callback's workflow and company.
                log_context.bind(workflow_id=workflow_id, company_id=request.company_id)
                log.info("callback opened at version %d: %s", step.state.version, step.state.status.value)
            return OpenedCallback(step.state, written)
