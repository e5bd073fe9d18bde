"""Activities of the appointment policy engine: the stats refresh and the policy check of a change.

Both are idempotent: the refresh recomputes the same counts whenever it runs, and a check only reads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import names
from models.policies import CheckAppointmentChange, PolicyResult, StatsRefreshed
from store import appointment_policies as store
from store.db import transaction
from store.policies import PolicyResolver

APPOINTMENT_NOT_FOUND = "AppointmentNotFound"


class PolicyActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], resolver: PolicyResolver) -> None:
        self._sessions = sessions
        self._resolver = resolver

    @activity.defn(name=names.REFRESH_MODIFICATION_STATS)
    async def refresh_modification_stats(self) -> StatsRefreshed:
        async with transaction(self._sessions) as session:
            refreshed = await store.refresh_stats(session)
        return StatsRefreshed(rows=refreshed.rows, calculated_at=refreshed.calculated_at)

    @activity.defn(name=names.CHECK_APPOINTMENT_CHANGE)
    async def check_appointment_change(self, command: CheckAppointmentChange) -> PolicyResult:
        """The policy decision for cancelling or rescheduling one appointment at `command.now`."""
        async with self._sessions() as session:
            try:
                return await store.check_change(
                    self._resolver,
                    session,
                    appointment_id=command.appointment_id,
                    company_id=command.company_id,
                    change=command.change,
                    now=command.now,
                    max_stats_age=command.max_stats_age,
                )
            except store.AppointmentNotFound as exc:
                raise ApplicationError(str(exc), type=APPOINTMENT_NOT_FOUND, non_retryable=True) from exc

    def all(self) -> list[Callable[..., Any]]:
        return [self.refresh_modification_stats, self.check_appointment_change]
