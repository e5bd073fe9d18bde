"""Database activities of the callback lifecycle.

They run as local activities: a short write does not need a round trip through the Temporal server,
and each is idempotent (`version` guards the row, unique sequence numbers guard escalations and events),
so a retry or a replay after a worker crash never writes anything twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import names
from activities.calendars import with_shifts
from activities.notification_outbox import NotificationOutbox
from activities.preparation import CallbackPreparer, InvalidReferences
from activities.step_writer import CapacityTaken, StepWriter
from models.callbacks import (
    CallbackSettings,
    LoadCandidates,
    PrepareCallback,
    PreparedCallback,
    StaffCandidate,
    Transition,
)
from models.dial_window import DEFAULT_DIAL_END, DEFAULT_DIAL_START
from models.stuck import ClearStuck, StuckMark
from store import callback_preparation as preparation
from store import callbacks as store
from store import stuck
from store.db import transaction
from store.policies import PolicyResolver

INVALID_REFERENCE = "InvalidReference"
# PostgreSQL's SQLSTATE of a foreign key violation.
FOREIGN_KEY_VIOLATION = "23503"


def _sqlstate(error: IntegrityError | DataError) -> str | None:
    return getattr(error.orig, "sqlstate", None)


class CallbackActivities:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        defaults: CallbackSettings,
        policies: PolicyResolver | None = None,
        dial_hours: tuple[time, time] = (DEFAULT_DIAL_START, DEFAULT_DIAL_END),
        *,
        statements: AsyncEngine | None = None,
        outbox: NotificationOutbox | None = None,
    ) -> None:
        """`statements`: autocommit connections for the one-statement step writes (without them a step
        is written in a transaction of `sessions`); `outbox`: the dispatcher each write with notifiable
        events wakes."""
        self._writer = StepWriter(sessions, statements=statements, outbox=outbox)
        self._sessions = sessions
        # Reads (a step's preparation, the staff candidates) need no transaction: on the statements
        # engine each is one round trip, without the BEGIN, pre-ping and COMMIT of a pooled session.
        self._reads = (
            async_sessionmaker(statements, expire_on_commit=False) if statements is not None else sessions
        )
        # Without a listening resolver, policies are read from the database every time (never stale).
        self._policies = policies if policies is not None else PolicyResolver(sessions)
        self._preparer = CallbackPreparer(self._reads, self._policies, defaults, dial_hours)

    @activity.defn(name=names.PREPARE_CALLBACK)
    async def prepare_callback(self, command: PrepareCallback) -> PreparedCallback:
        """The preparation of a callback whose starter did not prepare it (activities/preparation.py)."""
        try:
            return await self._preparer.prepare(command.request, at=command.at or datetime.now(UTC))
        except InvalidReferences as refused:
            errors = refused.errors
            raise ApplicationError(str(refused), errors, type=INVALID_REFERENCE, non_retryable=True) from None

    @activity.defn(name=names.LOAD_STAFF_CANDIDATES)
    async def load_staff_candidates(self, query: LoadCandidates) -> list[StaffCandidate]:
        at = query.at or datetime.now(UTC)
        async with self._reads() as session:
            staffing = await preparation.read_staffing(
                session,
                company_id=query.company_id,
                branch_id=query.branch_id,
                service_id=query.service_id,
                include=query.include,
                at=at,
            )
        return with_shifts(staffing, branch_id=query.branch_id, at=at)

    @activity.defn(name=names.PERSIST_TRANSITION)
    async def persist_transition(self, transition: Transition) -> None:
        """Row, escalation and audit events in one transaction: all of a step is visible, or none.

        A write the database refuses for good is not retried: a row it points at was deleted under the
        callback (`DeadReference`, with what is dead, so the workflow can drop it and write again), or
        the data itself is refused (`PersistRefused`). Anything else (a lost connection, a restart) is
        retried by the workflow's retry policy."""
        # The row records which workflow writes it: lookups by callback id find `c<company>.callback-…`
        # and the callbacks started before tenant ids (`callback-…`) alike.
        workflow_id = activity.info().workflow_id or None
        try:
            written = await self._writer.write(transition, workflow_id)
        except CapacityTaken as taken:
            raise ApplicationError(
                str(taken), str(taken.staff_id), type=names.CAPACITY_FULL, non_retryable=True
            ) from None
        except IntegrityError as error:
            if _sqlstate(error) != FOREIGN_KEY_VIOLATION:
                raise self._refused(transition, error) from error
            async with self._sessions() as session:
                dead = await store.dead_references(session, transition.state, transition.escalation)
            if not dead.fields:  # the row came back meanwhile: worth another try
                raise
            activity.logger.warning(
                "callback %s: referenced rows were deleted: %s", transition.state.id, ", ".join(dead.fields)
            )
            raise ApplicationError(
                f"deleted under the callback: {', '.join(dead.fields)}",
                dead.model_dump(mode="json"),
                type=names.DEAD_REFERENCE,
                non_retryable=True,
            ) from error
        except DataError as error:
            raise self._refused(transition, error) from error
        if written:
            activity.logger.info(
                "callback %s at version %d: %s",
                transition.state.status.value,
                transition.state.version,
                ", ".join(event.type for event in transition.events) or "no events",
            )

    @activity.defn(name=names.MARK_STUCK)
    async def mark_stuck(self, mark: StuckMark) -> None:
        """Show the callback as stuck (its own row, apart from the callback's: models/tables/stuck.py)."""
        async with transaction(self._sessions) as session:
            await stuck.mark(session, mark, activity.info().workflow_id or None)
        activity.logger.warning(
            "callback %s stuck at %s since %s: %d failed rounds, last %s%s",
            mark.callback_id,
            mark.step.value,
            mark.since.isoformat(),
            mark.failed_rounds,
            mark.error,
            ", gave up: waiting for an operator" if mark.gave_up_at else "",
        )

    @activity.defn(name=names.CLEAR_STUCK)
    async def clear_stuck(self, command: ClearStuck) -> None:
        async with transaction(self._sessions) as session:
            await stuck.clear(session, command.callback_id)

    @staticmethod
    def _refused(transition: Transition, error: IntegrityError | DataError) -> ApplicationError:
        activity.logger.error(
            "callback %s: the database refused the write: %s", transition.state.id, error.orig
        )
        return ApplicationError(
            f"the database refused the write ({_sqlstate(error) or type(error.orig).__name__})",
            type=names.PERSIST_REFUSED,
            non_retryable=True,
        )

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.prepare_callback,
            self.load_staff_candidates,
            self.persist_transition,
            self.mark_stuck,
            self.clear_stuck,
        ]
