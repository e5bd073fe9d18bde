"""One Cal.com API key's request budget as a pure state machine: take a request, learn from an answer.

Cal.com counts requests per API key, not per process, so the budget is one state per key that every
process applies these functions to: in memory for a single process (`calcom/budget.py`), in a row of
PostgreSQL under a row lock for all of them (`store/calcom_budget.py`). Times are seconds on whatever
clock the holder uses (monotonic in memory, the database's clock for the shared row); tickets number the
requests handed out for the key, across every process that shares the state.

* Until an answer has told us what is left (`remaining` unknown), one request at a time goes out: the
  *probe*. The others wait until its answer arrives, or until its lease runs out (its process died).
* With headers known: the estimate of what is left, minus what was sent since, never above what this
  window's own count leaves (answers overtake each other on the way); pacing below
  `slowdown_below`; nothing once none are left until the window resets (see `rules/calcom_ratelimit.py`).
* After a 429 nothing goes out until the wait it asked for is over — for every holder of the state.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rules.calcom_ratelimit import (
    DEFAULT_429_WAIT_SECONDS,
    SLOWDOWN_BELOW,
    RateLimitSnapshot,
    Wait,
    pacing_delay,
)


@dataclass(frozen=True)
class BudgetPolicy:
    """How a client spends the budget (the same for every process using the key)."""

    slowdown_below: int = SLOWDOWN_BELOW
    backoff_base_seconds: float = 0.5
    default_wait_seconds: float = DEFAULT_429_WAIT_SECONDS
    # A probe whose answer never came (its process died) stops holding the others back after this long.
    probe_lease_seconds: float = 30.0
    # How often a caller waiting for the probe's answer looks again.
    probe_poll_seconds: float = 0.05


@dataclass(frozen=True)
class BudgetState:
    limit: int | None = None  # the window's size, from the last answer that said it
    remaining: int | None = None  # estimate for the current window; None = unknown (probe first)
    reset_at: float | None = None  # upper bound of the current window's end
    blocked_until: float | None = None  # a 429 said: nothing before this
    block_source: str | None = None  # what said so: "retry-after" | "reset" | "default"
    last_sent_at: float | None = None  # when the latest request was handed out (pacing)
    sent: int = 0  # tickets handed out; the next request gets this number
    window_first_ticket: int = 0  # requests before this one were counted in a window that is over
    last_observed_ticket: int = -1  # the newest request whose answer the estimate is built on
    probe_ticket: int | None = None  # the request in flight while `remaining` is unknown
    probe_until: float | None = None  # its lease


@dataclass(frozen=True)
class Grant:
    """The outcome of asking to send: a ticket, or how long to wait and why."""

    ticket: int | None
    delay: float = 0.0
    source: str = "none"  # "none" | "probe" | "pacing" | "window" | a block's source

    @property
    def granted(self) -> bool:
        return self.ticket is not None


def roll(state: BudgetState, now: float) -> BudgetState:
    """When the window is over, start a new one: the full limit if we know it, else unknown again."""
    if state.reset_at is not None and now >= state.reset_at:
        return replace(state, reset_at=None, remaining=state.limit, window_first_ticket=state.sent)
    return state


def take(state: BudgetState, now: float, policy: BudgetPolicy) -> tuple[BudgetState, Grant]:
    """Hand out the next request's ticket, or say how long to wait."""
    state = roll(state, now)
    if state.blocked_until is not None and now < state.blocked_until:
        return state, Grant(None, state.blocked_until - now, state.block_source or "block")
    if state.remaining is None:
        if state.probe_ticket is not None and state.probe_until is not None and now < state.probe_until:
            return state, Grant(None, min(policy.probe_poll_seconds, state.probe_until - now), "probe")
        ticket = state.sent
        probing = replace(
            state,
            sent=ticket + 1,
            last_sent_at=now,
            probe_ticket=ticket,
            probe_until=now + policy.probe_lease_seconds,
        )
        return probing, Grant(ticket, 0.0, "probe")
    remaining = state.remaining
    if remaining <= 0 and state.reset_at is None:
        # used up before any answer said when the window ends (e.g. every answer was lost): assume the
        # 429 default, so the wait ends in a new window instead of repeating forever
        state = replace(state, reset_at=now + policy.default_wait_seconds)
    time_to_reset = None if state.reset_at is None else max(0.0, state.reset_at - now)
    delay = pacing_delay(
        remaining,
        threshold=policy.slowdown_below,
        base_seconds=policy.backoff_base_seconds,
        time_to_reset=time_to_reset,
    )
    if remaining <= 0:
        return state, Grant(None, delay, "window")
    since_last = float("inf") if state.last_sent_at is None else now - state.last_sent_at
    if delay > since_last:
        return state, Grant(None, delay - since_last, "pacing")
    ticket = state.sent
    return replace(state, sent=ticket + 1, remaining=remaining - 1, last_sent_at=now), Grant(ticket)


def observe(
    state: BudgetState, now: float, ticket: int, snapshot: RateLimitSnapshot, policy: BudgetPolicy
) -> BudgetState:
    """Learn from the rate-limit headers of the answer to request `ticket` (none: only the probe ends)."""
    state = roll(state, now)
    if ticket == state.probe_ticket:
        state = replace(state, probe_ticket=None, probe_until=None)
    if snapshot.limit is not None:
        state = replace(state, limit=snapshot.limit)
    if snapshot.remaining is None or ticket < state.window_first_ticket:
        return state  # no headers, or counted in a window that has ended since
    if ticket <= state.last_observed_ticket:
        return state  # an older view than one we already have
    # What the server had left when it answered, minus what was handed out after this request.
    estimate = snapshot.remaining - (state.sent - ticket - 1)
    if state.remaining is not None:
        # Within a window the count only goes down (a new one starts in `roll`): an answer that seems to
        # say more is left overtook an earlier request on its way to Cal.com, which it does not count yet.
        estimate = min(estimate, state.remaining)
    reset_seconds = snapshot.reset_seconds
    if reset_seconds is None and snapshot.remaining <= 0:
        reset_seconds = policy.default_wait_seconds
    reset_at = state.reset_at
    if reset_seconds is not None:
        # Cal.com rounds Reset up to whole seconds: within one window the smallest bound is the best.
        if state.remaining is None or reset_at is None:
            reset_at = now + reset_seconds
        else:
            reset_at = min(reset_at, now + reset_seconds)
    return replace(state, remaining=estimate, reset_at=reset_at, last_observed_ticket=ticket)


def block(
    state: BudgetState, now: float, ticket: int, snapshot: RateLimitSnapshot, wait: Wait
) -> BudgetState:
    """A 429 for request `ticket`: nothing more goes out, from any holder, until the wait is over."""
    until = now + wait.seconds
    if state.blocked_until is not None and state.blocked_until > until:
        until, source = state.blocked_until, state.block_source
    else:
        source = wait.source
    return replace(
        state,
        limit=snapshot.limit if snapshot.limit is not None else state.limit,
        remaining=0,
        reset_at=until,
        blocked_until=until,
        block_source=source,
        last_observed_ticket=max(state.last_observed_ticket, ticket),
        probe_ticket=None,
        probe_until=None,
    )
