"""One Cal.com API key's request budget in PostgreSQL, shared by every process that uses the key.

A row per key hash (`calcom_rate_budgets`; the key itself is never stored). Each step — take a request,
learn from an answer, record a 429 — is one short transaction: lock the row (`SELECT … FOR UPDATE`), apply
the pure state machine of `rules/calcom_budget.py` on the database's clock (one clock for every host),
write the row back. So the worker, the API and any further worker hand out tickets from one sequence,
one counts down what another sent, a probe in flight holds every process back, and a 429 seen by one
stops all of them until its reset.

Why not a single `UPDATE … SET remaining = remaining - 1 WHERE remaining > 0`: taking a request also rolls
the window over, paces below five left, waits for a probe's answer and respects a block, which is the
rule set in `rules/`; a row lock keeps it in one place. The rate is at most a few hundred requests a
minute per key, so the lock is never the bottleneck.

It satisfies `calcom.budget.RateBudget` (wired in `wiring/services.py`) without importing calcom/.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.tables import CalcomRateBudget
from rules.calcom_budget import BudgetPolicy, BudgetState, Grant, block, observe, roll, take
from rules.calcom_ratelimit import RateLimitSnapshot, Wait
from store.db import transaction

T = TypeVar("T")
Step = Callable[[BudgetState, float], tuple[BudgetState, T]]


class PgRateBudget:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], key_hash: str) -> None:
        if len(key_hash) != 64:
            raise ValueError("the budget is kept under the key's SHA-256 hex digest, never the key")
        self._sessions = sessions
        self.key_hash = key_hash

    async def take(self, policy: BudgetPolicy) -> tuple[Grant, BudgetState]:
        return await self._apply(lambda state, now: _with_state(take(state, now, policy)))

    async def observe(self, ticket: int, snapshot: RateLimitSnapshot, policy: BudgetPolicy) -> BudgetState:
        return await self._apply(lambda state, now: _same(observe(state, now, ticket, snapshot, policy)))

    async def block(self, ticket: int, snapshot: RateLimitSnapshot, wait: Wait) -> BudgetState:
        return await self._apply(lambda state, now: _same(block(state, now, ticket, snapshot, wait)))

    async def current(self) -> BudgetState:
        return await self._apply(lambda state, now: (state, roll(state, now)))

    async def _apply(self, step: Step[T]) -> T:
        async with transaction(self._sessions) as session:
            row = await self._locked(session)
            now = (await session.execute(select(func.clock_timestamp()))).scalar_one().timestamp()
            state, result = step(_state(row), now)
            _write(row, state)
            row.updated_at = datetime.fromtimestamp(now, UTC)
            return result

    async def _locked(self, session: AsyncSession) -> CalcomRateBudget:
        query = select(CalcomRateBudget).where(CalcomRateBudget.key_hash == self.key_hash).with_for_update()
        row = await session.scalar(query)
        if row is None:  # the key's first request ever: create its row (another process may race us)
            await session.execute(
                insert(CalcomRateBudget).values(key_hash=self.key_hash).on_conflict_do_nothing()
            )
            row = (await session.scalars(query)).one()
        return row


def _with_state(step: tuple[BudgetState, Grant]) -> tuple[BudgetState, tuple[Grant, BudgetState]]:
    return step[0], (step[1], step[0])


def _same(state: BudgetState) -> tuple[BudgetState, BudgetState]:
    return state, state


def _seconds(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _moment(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _state(row: CalcomRateBudget) -> BudgetState:
    return BudgetState(
        limit=row.window_limit,
        remaining=row.remaining,
        reset_at=_seconds(row.reset_at),
        blocked_until=_seconds(row.blocked_until),
        block_source=row.block_source,
        last_sent_at=_seconds(row.last_sent_at),
        sent=row.sent,
        window_first_ticket=row.window_first_ticket,
        last_observed_ticket=row.last_observed_ticket,
        probe_ticket=row.probe_ticket,
        probe_until=_seconds(row.probe_until),
    )


def _write(row: CalcomRateBudget, state: BudgetState) -> None:
    row.window_limit = state.limit
    row.remaining = state.remaining
    row.reset_at = _moment(state.reset_at)
    row.blocked_until = _moment(state.blocked_until)
    row.block_source = state.block_source
    row.last_sent_at = _moment(state.last_sent_at)
    row.sent = state.sent
    row.window_first_ticket = state.window_first_ticket
    row.last_observed_ticket = state.last_observed_ticket
    row.probe_ticket = state.probe_ticket
    row.probe_until = _moment(state.probe_until)
