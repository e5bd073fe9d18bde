"""Where one API key's Cal.com budget is kept: the protocol the limiter spends it through, and the
in-memory holder for a single process.

Cal.com counts per API key, so every process using a key must spend *one* budget: the composition root
(`wiring/services.py`) gives the client the PostgreSQL holder (`store/calcom_budget.py`, a row per key
hash), which satisfies this protocol without importing it (calcom/ and store/ are siblings). The state
machine both apply is `rules/calcom_budget.py`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Protocol

from rules.calcom_budget import BudgetPolicy, BudgetState, Grant, block, observe, roll, take
from rules.calcom_ratelimit import RateLimitSnapshot, Wait


class RateBudget(Protocol):
    """One API key's budget. Each call is atomic for every holder of the same key and returns the state
    it left (what the limiter reports as the budget gauges)."""

    async def take(self, policy: BudgetPolicy) -> tuple[Grant, BudgetState]: ...

    async def observe(
        self, ticket: int, snapshot: RateLimitSnapshot, policy: BudgetPolicy
    ) -> BudgetState: ...

    async def block(self, ticket: int, snapshot: RateLimitSnapshot, wait: Wait) -> BudgetState: ...

    async def current(self) -> BudgetState: ...


class MemoryBudget:
    """The budget of one process (tests, benchmarks, a process that is the key's only user)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._state = BudgetState()

    async def take(self, policy: BudgetPolicy) -> tuple[Grant, BudgetState]:
        self._state, grant = take(self._state, self._clock(), policy)
        return grant, self._state

    async def observe(self, ticket: int, snapshot: RateLimitSnapshot, policy: BudgetPolicy) -> BudgetState:
        self._state = observe(self._state, self._clock(), ticket, snapshot, policy)
        return self._state

    async def block(self, ticket: int, snapshot: RateLimitSnapshot, wait: Wait) -> BudgetState:
        self._state = block(self._state, self._clock(), ticket, snapshot, wait)
        return self._state

    async def current(self) -> BudgetState:
        return roll(self._state, self._clock())


def budget_key(base_url: str, api_key: str | None) -> str:
    """The name a shared budget is kept under: a hash, never the key itself. Cal.com counts per API key
    (or per IP without one), and two Cal.com installations count separately, so both go into it."""
    material = f"{base_url.rstrip('/')}\n{api_key or ''}"
    return hashlib.sha256(material.encode()).hexdigest()
