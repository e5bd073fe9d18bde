"""Database activities of the callback lifecycle.

They run as local activities: a short write does not need a round trip through the Temporal server,
and each is idempotent (`version` guards the row, unique sequence numbers guard escalations and events),
so a retry or a replay after a worker crash never writes anything twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import names
from models.callbacks import (
    CallbackSettings,
    LoadCandidates,
    PrepareCallback,
    PreparedCallback,
    StaffCandidate,
    Transition,
)
from models.policies import PolicySubject
from store import callbacks as store
from store.db import transaction
from store.policies import PolicyResolver
from telemetry import metrics

INVALID_REFERENCE = "InvalidReference"


class CallbackActivities:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        defaults: CallbackSettings,
        policies: PolicyResolver | None = None,
    ) -> None:
        self._sessions = sessions
        self._defaults = defaults
        # Without a listening resolver, policies are read from the database every time (never stale).
        self._policies = policies if policies is not None else PolicyResolver(sessions)

    @activity.defn(name=names.PREPARE_CALLBACK)
    async def prepare_callback(self, command: PrepareCallback) -> PreparedCallback:
        """Check the request's references, resolve its callback rules and list who could take it."""
        request = command.request
        async with transaction(self._sessions) as session:
            errors = await store.reference_errors(session, request)
            if errors:
                raise ApplicationError("; ".join(errors), errors, type=INVALID_REFERENCE, non_retryable=True)
            settings = await self._policies.callback_settings(
                PolicySubject(
                    company_id=request.company_id,
                    branch_id=request.branch_id,
                    service_id=request.service_id,
                    staff_id=request.preferred_staff_id,
                ),
                self._defaults,
                session=session,
            )
            candidates = await store.load_candidates(
                session,
                company_id=request.company_id,
                branch_id=request.branch_id,
                service_id=request.service_id,
                include=[request.preferred_staff_id] if request.preferred_staff_id else [],
            )
            bookable = request.service_id is not None and await store.service_is_bookable(
                session, request.service_id
            )
        return PreparedCallback(settings=settings, candidates=candidates, bookable=bookable)

    @activity.defn(name=names.LOAD_STAFF_CANDIDATES)
    async def load_staff_candidates(self, query: LoadCandidates) -> list[StaffCandidate]:
        async with transaction(self._sessions) as session:
            return await store.load_candidates(
                session,
                company_id=query.company_id,
                branch_id=query.branch_id,
                service_id=query.service_id,
                include=query.include,
            )

    @activity.defn(name=names.PERSIST_TRANSITION)
    async def persist_transition(self, transition: Transition) -> None:
        """Row, escalation and audit events in one transaction: all of a step is visible, or none."""
        async with transaction(self._sessions) as session:
            if transition.claim is not None and not await store.claim_capacity(
                session, transition.claim, transition.state.id
            ):
                raise ApplicationError(
                    f"staff {transition.claim} has no open place left (max_open_callbacks)",
                    str(transition.claim),
                    type=names.CAPACITY_FULL,
                    non_retryable=True,
                )
            written = await store.upsert_callback(session, transition.state)
            if transition.escalation is not None:
                await store.insert_escalation(session, transition.state, transition.escalation)
            await store.append_events(session, transition.state, transition.events)
        if written:
            # Only a write that changed the row counts: a retried activity finds its version there.
            metrics.record_transition(transition)
            activity.logger.info(
                "callback %s at version %d: %s",
                transition.state.status.value,
                transition.state.version,
                ", ".join(event.type for event in transition.events) or "no events",
            )

    def all(self) -> list[Callable[..., Any]]:
        return [self.prepare_callback, self.load_staff_candidates, self.persist_transition]
