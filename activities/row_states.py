"""The workflow state a callback's row stands for: what a workflow started from a row begins with (the
reconciliation sweep's repair, the API's retry of a create whose start was lost)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.callbacks import CallbackSettings, CallbackState, SlaClock
from models.policies import PolicySubject
from models.tables import CallbackRequest
from rules.sla import with_holidays_written_out
from store import operations as rows
from store.calendars import branch_calendars
from store.callable import dial_window_of
from store.policies import PolicyResolver


class RowStates:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        defaults: CallbackSettings,
        policies: PolicyResolver | None = None,
    ) -> None:
        self._sessions = sessions
        self._defaults = defaults
        self._policies = policies if policies is not None else PolicyResolver(sessions)

    async def state_from_row(self, row: CallbackRequest) -> CallbackState:
        """The state under the policies that apply to the row now, on the SLA clock it was made with (its
        branch's calendar as it is now) and with its dial window."""
        async with self._sessions() as session:
            settings = await self._policies.callback_settings(
                PolicySubject(
                    company_id=row.company_id,
                    branch_id=row.branch_id,
                    service_id=row.service_id,
                    staff_id=row.staff_id,
                ),
                self._defaults,
                session=session,
            )
            past = await rows.history(session, row.id)
            branch = (await branch_calendars(session, [row.branch_id])).get(row.branch_id)
        calendar = branch.business_hours if branch is not None else None
        if calendar is not None:
            calendar = with_holidays_written_out(calendar, (row.created_at - timedelta(days=1)).date())
        state = rows.state_from_row(
            row, settings.model_copy(update={"sla_clock": SlaClock(row.sla_clock)}), past
        )
        return state.model_copy(update={"calendar": calendar, "dial_window": dial_window_of(row)})
