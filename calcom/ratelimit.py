"""The client's side of Cal.com's rate limit: pace requests from the headers, respect blocks.

Cal.com v2 counts requests per API key in a fixed window (120 per 60 s by default) and, once the limit is
exceeded, refuses everything for a block (60 s) that retries do not shorten. So the limiter:

* keeps an estimate of the requests left in the current window, from the freshest response's
  `X-RateLimit-Remaining-*` (minimum over the named limits) minus what was sent after it;
* slows down with exponential backoff once fewer than `slowdown_below` (5) are left, and sends nothing
  more once none are left until the window resets (`X-RateLimit-Reset-*`, seconds);
* after a 429 waits `Retry-After`, else the reset seconds, else 60 s, and sends nothing in between;
* counts requests, 429s and waits, and reports the budget it sees (limit, requests left) as gauges.

One limiter belongs to one event loop (no thread safety); share it across all calls with one API key.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from rules.calcom_ratelimit import (
    DEFAULT_429_WAIT_SECONDS,
    SLOWDOWN_BELOW,
    RateLimitSnapshot,
    Wait,
    pacing_delay,
)
from telemetry import metrics


@dataclass
class RateLimitStats:
    requests: int = 0
    rate_limited: int = 0  # 429 responses
    waits: int = 0  # times a request was held back before sending
    wait_seconds: float = 0.0
    refused_locally: int = 0  # requests not sent because the wait was longer than the caller allows
    last_wait_source: str | None = None  # "retry-after" | "reset" | "default" | "pacing" | "window"


class RateLimitWait(Exception):
    """The next request may only go out after `seconds`; longer than the caller is willing to wait."""

    def __init__(self, seconds: float, source: str) -> None:
        super().__init__(f"Cal.com rate limit: next request possible in {seconds:.1f} s ({source})")
        self.seconds = seconds
        self.source = source


class RateLimiter:
    def __init__(
        self,
        *,
        slowdown_below: int = SLOWDOWN_BELOW,
        backoff_base_seconds: float = 0.5,
        default_wait_seconds: float = DEFAULT_429_WAIT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.slowdown_below = slowdown_below
        self.backoff_base_seconds = backoff_base_seconds
        self.default_wait_seconds = default_wait_seconds
        self._clock = clock
        self._sleep = sleep
        self.stats = RateLimitStats()
        self._sent = 0  # tickets handed out; a ticket numbers one request
        self._window_first_ticket = 0  # requests before this one were counted in a window that is over
        self._last_observed_ticket = -1
        self._limit: int | None = None
        self._remaining: int | None = None  # estimate for the current window; None = unknown
        self._reset_at: float | None = None  # upper bound of the current window's end (our clock)
        self._blocked_until = 0.0
        self._last_send = float("-inf")

    # -- state read by callers and tests -------------------------------------------------------------
    @property
    def remaining(self) -> int | None:
        self._roll(self._clock())
        return self._remaining

    @property
    def blocked_for(self) -> float:
        return max(0.0, self._blocked_until - self._clock())

    # -- sending -------------------------------------------------------------------------------------
    def next_delay(self) -> tuple[float, str]:
        """Seconds until the next request may be sent, and why."""
        now = self._clock()
        if now < self._blocked_until:
            return self._blocked_until - now, self.stats.last_wait_source or "block"
        self._roll(now)
        if self._remaining is None:
            return 0.0, "none"
        if self._remaining <= 0 and self._reset_at is None:
            # used up before any answer said when the window ends (e.g. every answer was lost): assume
            # the 429 default, so the wait ends in a new window instead of repeating forever
            self._reset_at = now + self.default_wait_seconds
        time_to_reset = None if self._reset_at is None else max(0.0, self._reset_at - now)
        delay = pacing_delay(
            self._remaining,
            threshold=self.slowdown_below,
            base_seconds=self.backoff_base_seconds,
            time_to_reset=time_to_reset,
        )
        if self._remaining <= 0:
            return delay, "window"
        return max(0.0, self._last_send + delay - now), "pacing"

    async def acquire(self, max_wait: float | None = None) -> int:
        """Wait until a request may go out and reserve it; returns the request's ticket.

        Raises `RateLimitWait` instead of waiting when the total wait would exceed `max_wait`."""
        waited = 0.0
        while True:
            delay, source = self.next_delay()
            if delay <= 0:
                ticket = self._sent
                self._sent += 1
                if self._remaining is not None:
                    self._remaining -= 1
                    self._report()
                self._last_send = self._clock()
                self.stats.requests += 1
                return ticket
            if max_wait is not None and waited + delay > max_wait:
                self.stats.refused_locally += 1
                raise RateLimitWait(delay, source)
            self.stats.waits += 1
            self.stats.wait_seconds += delay
            metrics.CALCOM_WAITS.labels(source).inc()
            metrics.CALCOM_WAIT_SECONDS.inc(delay)
            if source in ("pacing", "window"):
                self.stats.last_wait_source = source
            await self._sleep(delay)
            waited += delay

    # -- learning from responses ---------------------------------------------------------------------
    def observe(self, ticket: int, snapshot: RateLimitSnapshot) -> None:
        """Learn from the rate-limit headers of the response to request `ticket`."""
        now = self._clock()
        self._roll(now)
        if snapshot.limit is not None:
            self._limit = snapshot.limit
        if snapshot.remaining is None or ticket < self._window_first_ticket:
            return  # no headers, or counted in a window that has ended since
        if ticket <= self._last_observed_ticket:
            return  # an older view than one we already have
        self._last_observed_ticket = ticket
        sent_after = self._sent - ticket - 1
        estimate = snapshot.remaining - sent_after
        reset_seconds = snapshot.reset_seconds
        if reset_seconds is None:
            reset_seconds = self.default_wait_seconds if snapshot.remaining <= 0 else None
        reset_at = None if reset_seconds is None else now + reset_seconds
        new_window = self._remaining is None or estimate > self._remaining
        self._remaining = estimate
        self._report()
        if reset_at is not None:
            # Cal.com rounds Reset up to whole seconds: within one window the smallest bound is the best.
            if new_window or self._reset_at is None:
                self._reset_at = reset_at
            else:
                self._reset_at = min(self._reset_at, reset_at)

    def observe_429(self, ticket: int, snapshot: RateLimitSnapshot, wait: Wait) -> None:
        """A 429: nothing more goes out until the wait is over."""
        now = self._clock()
        self.stats.rate_limited += 1
        metrics.CALCOM_RATE_LIMITED.inc()
        self.stats.last_wait_source = wait.source
        self._blocked_until = max(self._blocked_until, now + wait.seconds)
        if snapshot.limit is not None:
            self._limit = snapshot.limit
        self._remaining = 0
        self._reset_at = self._blocked_until
        self._last_observed_ticket = max(self._last_observed_ticket, ticket)
        self._report()

    def _roll(self, now: float) -> None:
        """When the window is over by our clock, start a new one: the full limit, if we know it."""
        if self._reset_at is not None and now >= self._reset_at:
            self._reset_at = None
            self._remaining = self._limit
            self._window_first_ticket = self._sent
            self._report()

    def _report(self) -> None:
        """The budget gauges (Cal.com's limit, what is left of it) follow this limiter's view."""
        if self._limit is not None:
            metrics.CALCOM_BUDGET_LIMIT.set(self._limit)
        if self._remaining is not None:
            metrics.CALCOM_BUDGET_REMAINING.set(max(0, self._remaining))
