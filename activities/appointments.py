"""Database activities of an appointment change (workflows/appointment_change.py).

They run as local activities: each is one short transaction, and both are safe to repeat. The plan only
reads; the record is keyed by the request id, so an attempt retried after its commit was lost returns the
stored result instead of writing a second modification or charging a second fee.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import names
from activities.policies import APPOINTMENT_NOT_FOUND
from models.appointments import AppointmentChangePlan, RecordAppointmentChange, RecordedChange
from models.policies import CheckAppointmentChange
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

    def all(self) -> list[Callable[..., Any]]:
        return [self.plan_appointment_change, self.record_appointment_change]
