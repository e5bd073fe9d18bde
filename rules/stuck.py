"""When a failing database step makes a callback stuck, how long its workflow waits between tries, and
when it stops trying on its own (docs/operations.md, "Stuck callbacks").

A step is tried in rounds. One round is a local activity with a few quick attempts inside the worker (a
blip of a second never leaves it). Between failed rounds the workflow sleeps on a timer, doubling from
`FIRST_BACKOFF` up to `MAX_BACKOFF`. After `STUCK_AFTER_ROUNDS` failed rounds or `STUCK_AFTER` of
failures, whichever comes first, the callback is marked stuck; after `GIVE_UP_AFTER` it stops retrying and
waits for an operator. Pure functions of the workflow's clock, so replay decides the same.
"""

from __future__ import annotations

from datetime import datetime, timedelta

ROUND_ATTEMPTS = 3
FIRST_BACKOFF = timedelta(seconds=2)
MAX_BACKOFF = timedelta(minutes=10)
STUCK_AFTER_ROUNDS = 4
STUCK_AFTER = timedelta(minutes=1)
GIVE_UP_AFTER = timedelta(hours=24)


def backoff(failed_rounds: int) -> timedelta:
    """The wait after the `failed_rounds`-th failed round in a row: 2 s, 4 s, 8 s, … at most 10 min."""
    doublings = min(max(failed_rounds - 1, 0), 20)
    return min(MAX_BACKOFF, FIRST_BACKOFF * (1 << doublings))


def is_stuck(failed_rounds: int, since: datetime, now: datetime) -> bool:
    """Failing for long enough (rounds or time, whichever first) to show the callback as stuck."""
    return failed_rounds >= STUCK_AFTER_ROUNDS or now - since >= STUCK_AFTER


def gives_up(since: datetime, now: datetime) -> bool:
    """Failing since `since` for so long that retrying on its own is no longer of use."""
    return now - since >= GIVE_UP_AFTER
