"""One callback step into PostgreSQL: its row, escalation, audit events and outbox rows, with the capacity
of the staff member it assigns claimed in the same transaction.

One piece with two callers: the workflow's `persist_transition` local activity (every step) and the API,
which writes a new callback's first step itself before it starts the workflow (activities/opening.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from activities.notification_outbox import NotificationOutbox
from models.callbacks import Transition
from models.notifications import NotifyEvent
from models.workflow_ids import notify_workflow_id, notify_workflow_id_under
from rules.notifications import events_to_notify
from store import callbacks as store
from store.callback_writes import write_step
from store.db import transaction
from store.notification_outbox import outbox_rows
from telemetry import metrics


def callback_notifications(
    transition: Transition, workflow_id: str | None
) -> list[tuple[str, int, NotifyEvent]]:
    """The step's events worth a notification, each with its run's id (under the callback's company)."""
    state = transition.state
    owner = workflow_id or state.workflow_id
    return [
        (
            notify_workflow_id_under(owner, notify_workflow_id("callback", state.id, event.seq)),
            event.seq,
            NotifyEvent.for_callback(event, state),
        )
        for event in events_to_notify(transition.events)
    ]


class CapacityTaken(Exception):
    """The staff member the step assigns has no open place left (concurrent writes took it first)."""

    def __init__(self, staff_id: UUID) -> None:
        super().__init__(f"staff {staff_id} has no open place left (max_open_callbacks)")
        self.staff_id = staff_id


class StepWriter:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        statements: AsyncEngine | None = None,
        outbox: NotificationOutbox | None = None,
    ) -> None:
        """`statements`: autocommit connections for the one-statement writes (without them a step is
        written in a transaction of `sessions`); `outbox`: the dispatcher a write with notifiable events
        wakes (in a process that runs one)."""
        self._sessions = sessions
        self._statements = statements
        self._outbox = outbox

    async def write(self, transition: Transition, workflow_id: str | None) -> bool:
        """Whether the row was written (False: a newer or the same version is there already). Raises
        `CapacityTaken`, and SQLAlchemy's errors for a write the database refuses."""
        outbox = outbox_rows(callback_notifications(transition, workflow_id)) if transition.notify else []
        if transition.claim is None and self._statements is not None:
            # One statement, committed by itself: one round trip.
            async with self._statements.connect() as connection:
                written = await self._write(connection, transition, workflow_id, outbox)
        else:
            async with self._claiming() as session:
                claim = transition.claim
                if claim is not None and not await store.claim_capacity(session, claim, transition.state.id):
                    raise CapacityTaken(claim)
                written = await self._write(session, transition, workflow_id, outbox)
        if written:
            if outbox and self._outbox is not None:
                self._outbox.kick()
            # Only a write that changed the row counts: a retried write finds its version there.
            metrics.record_transition(transition)
        return written

    @staticmethod
    async def _write(
        target: AsyncSession | AsyncConnection,
        transition: Transition,
        workflow_id: str | None,
        outbox: list[dict[str, Any]],
    ) -> bool:
        return await write_step(
            target,
            transition.state,
            workflow_id=workflow_id,
            escalation=transition.escalation,
            events=transition.events,
            outbox=outbox,
        )

    @contextlib.asynccontextmanager
    async def _claiming(self) -> AsyncIterator[AsyncSession | AsyncConnection]:
        """A transaction for a write that claims a staff member's capacity (the claim locks their row
        until it commits): on the statements engine, switched out of autocommit for it."""
        if self._statements is None:
            async with transaction(self._sessions) as session:
                yield session
            return
        async with self._statements.connect() as connection:
            await connection.execution_options(isolation_level="READ COMMITTED")
            async with connection.begin():
                yield connection
