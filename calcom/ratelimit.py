"""The client's side of Cal.com's rate limit: spend the key's budget, pace by the headers, respect blocks.

Cal.com v2 counts requests per API key in a fixed window (120 per 60 s by default) and, once the limit is
exceeded, refuses everything for a block (60 s) that retries do not shorten. The counting is Cal.com's
and per key, so the budget is too: the limiter spends a `RateBudget` (`calcom/budget.py`) that every
process using the key shares (or, without one, this process's own). The rules (`rules/calcom_budget.py`):

* until an answer has carried the rate-limit headers, one request at a time (a burst at start-up would
  otherwise go out unthrottled and be refused);
* then an estimate of the requests left in the current window, from the freshest answer's
  `X-RateLimit-Remaining-*` (minimum over the named limits) minus what was sent after it;
* exponential backoff once fewer than `slowdown_below` (5) are left, nothing more once none are left
  until the window resets (`X-RateLimit-Reset-*`, seconds);
* after a 429 nothing for `Retry-After`, else the reset seconds, else 60 s — for every process.

The limiter itself waits (or refuses when the caller will not wait that long), counts requests, 429s
and waits for this process, and reports the key's budget as it last saw it (limit, requests left) as
gauges.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from calcom.budget import MemoryBudget, RateBudget
from rules.calcom_budget import BudgetPolicy, BudgetState
from rules.calcom_ratelimit import DEFAULT_429_WAIT_SECONDS, SLOWDOWN_BELOW, RateLimitSnapshot, Wait
from telemetry import metrics

NO_HEADERS = RateLimitSnapshot()


@dataclass
class RateLimitStats:
    requests: int = 0
    rate_limited: int = 0  # 429 responses
    waits: int = 0  # times a request was held back before sending
    wait_seconds: float = 0.0
    refused_locally: int = 0  # requests not sent because the wait was longer than the caller allows
    # "retry-after" | "reset" | "default" | "pacing" | "window" ("probe" waits are not recorded here)
    last_wait_source: str | None = None


class RateLimitWait(Exception):
    """The next request may only go out after `seconds`; longer than the caller is willing to wait."""

    def __init__(self, seconds: float, source: str) -> None:
        super().__init__(f"Cal.com rate limit: next request possible in {seconds:.1f} s ({source})")
        self.seconds = seconds
        self.source = source


class RateLimiter:
    def __init__(
        self,
        budget: RateBudget | None = None,
        *,
        slowdown_below: int = SLOWDOWN_BELOW,
        backoff_base_seconds: float = 0.5,
        default_wait_seconds: float = DEFAULT_429_WAIT_SECONDS,
        probe_lease_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """`budget`: the key's shared budget; without one, a budget of this process on `clock`."""
        self.policy = BudgetPolicy(
            slowdown_below=slowdown_below,
            backoff_base_seconds=backoff_base_seconds,
            default_wait_seconds=default_wait_seconds,
            probe_lease_seconds=probe_lease_seconds,
        )
        self.budget: RateBudget = budget if budget is not None else MemoryBudget(clock)
        self._sleep = sleep
        self.stats = RateLimitStats()

    @property
    def default_wait_seconds(self) -> float:
        return self.policy.default_wait_seconds

    async def remaining(self) -> int | None:
        """The estimate of requests left in the current window; None = not known yet."""
        return (await self.budget.current()).remaining

    async def acquire(self, max_wait: float | None = None) -> int:
        """Wait until a request may go out and reserve it; returns the request's ticket.

        Raises `RateLimitWait` instead of waiting when the total wait would exceed `max_wait`."""
        waited = 0.0
        while True:
            grant, state = await self.budget.take(self.policy)
            _report(state)
            if grant.ticket is not None:
                self.stats.requests += 1
                return grant.ticket
            if max_wait is not None and waited + grant.delay > max_wait:
                self.stats.refused_locally += 1
                raise RateLimitWait(grant.delay, grant.source)
            self.stats.waits += 1
            self.stats.wait_seconds += grant.delay
            metrics.CALCOM_WAITS.labels(grant.source).inc()
            metrics.CALCOM_WAIT_SECONDS.inc(grant.delay)
            if grant.source != "probe":
                self.stats.last_wait_source = grant.source
            await self._sleep(grant.delay)
            waited += grant.delay

    async def observe(self, ticket: int, snapshot: RateLimitSnapshot) -> None:
        """Learn from the rate-limit headers of the response to request `ticket`. With `NO_HEADERS`
        (no answer came, or one without headers) it only ends the request's turn as the probe."""
        _report(await self.budget.observe(ticket, snapshot, self.policy))

    async def observe_429(self, ticket: int, snapshot: RateLimitSnapshot, wait: Wait) -> None:
        """A 429: nothing more goes out, from any process sharing the budget, until the wait is over."""
        self.stats.rate_limited += 1
        metrics.CALCOM_RATE_LIMITED.inc()
        self.stats.last_wait_source = wait.source
        _report(await self.budget.block(ticket, snapshot, wait))


def _report(state: BudgetState) -> None:
    """The budget gauges (Cal.com's limit, what is left of it) follow the key's budget as last seen."""
    if state.limit is not None:
        metrics.CALCOM_BUDGET_LIMIT.set(state.limit)
    if state.remaining is not None:
        metrics.CALCOM_BUDGET_REMAINING.set(max(0, state.remaining))
