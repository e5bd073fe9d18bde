"""Database activities of an appointment change: plan / record of the older per-request workflow
(workflows/appointment_change.py), begin / finish / settle of the per-appointment one
(workflows/appointment.py, store/appointment_changes.py).

They run as local activities: each is one short transaction, and all are safe to repeat. The plan only
reads; everything that writes is keyed by the request id, so an attempt retried after its commit was lost
returns the stored result instead of writing a second modification or charging a second fee.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import names
from activities.policies import APPOINTMENT_NOT_FOUND
from models.appointment_workflow import (
    BeginChange,
    BegunChange,
    FinishChange,
    FinishedChange,
    SettleChange,
)
from models.appointments import (
    AppointmentChangeOutcome,
    AppointmentChangePlan,
    RecordAppointmentChange,
    RecordedChange,
)
from models.policies import CheckAppointmentChange
from store import appointment_changes as changes
from store import appointments as store
from store.appointment_policies import AppointmentNotFound
from store.db import transaction
from store.policies import PolicyResolver


def _not_found(exc: AppointmentNotFound) -> ApplicationError:
    return ApplicationError(str(exc), type=APPOINTMENT_NOT_FOUND, non_retryable=True)


class AppointmentActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], resolver: PolicyResolver) -> None:
        self._sessions = sessions
        self._resolver = resolver

    @activity.defn(name=names.PLAN_APPOINTMENT_CHANGE)
    async def plan_appointment_change(self, command: CheckAppointmentChange) -> AppointmentChangePlan:
        """The policy decision at the workflow's `now`, with the booking uid the Cal.com call needs."""
        if command.company_id is None:
            raise ApplicationError("a change is always scoped to a company", non_retryable=True)
        async with self._sessions() as session:
            try:
                return await store.plan_change(
                    self._resolver,
                    session,
                    appointment_id=command.appointment_id,
                    company_id=command.company_id,
                    change=command.change,
                    now=command.now,
                    max_stats_age=command.max_stats_age,
                )
            except AppointmentNotFound as exc:
                raise _not_found(exc) from exc

    @activity.defn(name=names.RECORD_APPOINTMENT_CHANGE)
    async def record_appointment_change(self, command: RecordAppointmentChange) -> RecordedChange:
        async with transaction(self._sessions) as session:
            try:
                return await store.apply_change(session, command)
            except AppointmentNotFound as exc:
                raise _not_found(exc) from exc

    @activity.defn(name=names.BEGIN_APPOINTMENT_CHANGE)
    async def begin_appointment_change(self, command: BeginChange) -> BegunChange:
        """The decision at the request's `requested_at`, written down before Cal.com is called."""
        async with transaction(self._sessions) as session:
            return await changes.begin_change(self._resolver, session, command)

    @activity.defn(name=names.FINISH_APPOINTMENT_CHANGE)
    async def finish_appointment_change(self, command: FinishChange) -> FinishedChange:
        async with transaction(self._sessions) as session:
            try:
                return await changes.finish_change(session, command)
            except AppointmentNotFound as exc:
                raise _not_found(exc) from exc

    @activity.defn(name=names.SETTLE_APPOINTMENT_CHANGE)
    async def settle_appointment_change(self, command: SettleChange) -> AppointmentChangeOutcome:
        async with transaction(self._sessions) as session:
            return await changes.settle_change(session, command)

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.plan_appointment_change,
            self.record_appointment_change,
            self.begin_appointment_change,
            self.finish_appointment_change,
            self.settle_appointment_change,
        ]
