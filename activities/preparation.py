"""A new callback's preparation: its references checked, its callback rules resolved, who could take it
(with their shifts), the branch's calendar and the customer's dial window — everything the workflow
decides its first step from.

One piece with two callers: the API prepares before it starts the workflow and hands the result in with
the start (the workflow then decides at once, without a prepare step of its own: one local activity, one
activation and one history marker less per callback, and the API's reference check is the same single
statement), and the workflow's `prepare` local activity serves every other start (the CLI, older clients,
histories recorded before). A start that carries a preparation needs workers that know the field: deploy
the workers before the API (an older worker fails that workflow task until a newer one takes it).
"""

from __future__ import annotations

from datetime import datetime, time

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.calendars import callback_calendars
from config import Settings
from models.callbacks import CallbackSettings, NewCallback, PreparedCallback
from models.policies import PolicySubject
from store import callback_preparation as preparation
from store.policies import PolicyResolver


class InvalidReferences(ValueError):
    """The request points at rows that are not its company's; `errors` name the fields."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


class CallbackPreparer:
    def __init__(
        self,
        reads: async_sessionmaker[AsyncSession],
        policies: PolicyResolver,
        defaults: CallbackSettings,
        dial_hours: tuple[time, time],
    ) -> None:
        """`reads`: sessions for one read statement (no transaction needed); `policies`: the process's
        (caching) resolver."""
        self._reads = reads
        self._policies = policies
        self._defaults = defaults
        self._dial_hours = dial_hours

    @classmethod
    def from_settings(
        cls, reads: async_sessionmaker[AsyncSession], policies: PolicyResolver, settings: Settings
    ) -> CallbackPreparer:
        """With the engine's callback defaults and dial hours (the API, the bench, tests)."""
        return cls(
            reads,
            policies,
            settings.callback_defaults(),
            (settings.dial_window_start, settings.dial_window_end),
        )

    async def prepare(self, request: NewCallback, *, at: datetime) -> PreparedCallback:
        """One statement and the policies from the resolver's cache; raises `InvalidReferences`."""
        async with self._reads() as session:
            found = await preparation.read_preparation(session, request, at=at)
            if found.errors:
                raise InvalidReferences(found.errors)
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
        calendars = callback_calendars(request, found, at=at, default_dial_hours=self._dial_hours)
        return PreparedCallback(
            settings=settings,
            candidates=calendars.candidates,
            bookable=found.bookable,
            calendar=calendars.calendar,
            dial_window=calendars.dial_window,
            at=at,
        )
