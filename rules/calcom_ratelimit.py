"""Cal.com rate-limit arithmetic: reading the headers and deciding how long to wait. Pure, no I/O.

Cal.com API v2 sends one header triple per named limit (`X-RateLimit-Remaining-Default`, `-Short`, ...)
with `Reset` in *seconds remaining*; API v1 sent plain `X-RateLimit-Remaining` / `X-RateLimit-Reset` with
`Reset` as a Unix epoch in milliseconds (older docs said seconds). See docs/calcom-api.md §2, §3.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

DEFAULT_429_WAIT_SECONDS = 60.0
SLOWDOWN_BELOW = 5

_HEADER = re.compile(r"^x-ratelimit-(limit|remaining|reset)(?:-(.+))?$", re.IGNORECASE)
_EPOCH_MS = 1e12
_EPOCH_S = 1e9


@dataclass(frozen=True)
class RateLimitSnapshot:
    """What one response said about the budget: the tightest of its named limits.

    `remaining` is the minimum over all `X-RateLimit-Remaining-*` headers, `reset_seconds` is the reset of
    the limit that minimum belongs to (relative seconds), `limit` that limit's size. None = not sent.
    """

    limit: int | None = None
    remaining: int | None = None
    reset_seconds: float | None = None

    @property
    def known(self) -> bool:
        return self.remaining is not None


def reset_to_seconds(value: float, now_epoch: float) -> float:
    """A Reset header value as seconds from now: epoch ms (v1), epoch s, or already a delta (v2)."""
    if value > _EPOCH_MS:
        return max(0.0, value / 1000.0 - now_epoch)
    if value > _EPOCH_S:
        return max(0.0, value - now_epoch)
    return max(0.0, value)


def _number(raw: str) -> float | None:
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if value == value and value not in (float("inf"), float("-inf")) else None


def parse_rate_limit_headers(headers: Iterable[tuple[str, str]], now_epoch: float) -> RateLimitSnapshot:
    """Read every `X-RateLimit-{Limit,Remaining,Reset}[-Name]` header, case-insensitively.

    The plain v1 names count as one more named limit. The binding limit is the one with the fewest
    requests left; on a tie the one that resets last (waiting for the earlier would not be enough).
    """
    by_name: dict[str, dict[str, float]] = {}
    for key, raw in headers:
        match = _HEADER.match(key.strip())
        if match is None:
            continue
        value = _number(raw)
        if value is None:
            continue
        kind, name = match.group(1).lower(), (match.group(2) or "").lower()
        by_name.setdefault(name, {})[kind] = value
    best: tuple[float, float] | None = None
    snapshot = RateLimitSnapshot()
    for fields in by_name.values():
        if "remaining" not in fields:
            continue
        remaining = max(0.0, fields["remaining"])
        reset = reset_to_seconds(fields["reset"], now_epoch) if "reset" in fields else None
        order = (remaining, -(reset if reset is not None else 0.0))
        if best is None or order < best:
            best = order
            limit = fields.get("limit")
            snapshot = RateLimitSnapshot(
                limit=int(limit) if limit is not None else None, remaining=int(remaining), reset_seconds=reset
            )
    if best is None:
        resets = [
            reset_to_seconds(fields["reset"], now_epoch) for fields in by_name.values() if "reset" in fields
        ]
        if resets:
            snapshot = RateLimitSnapshot(reset_seconds=max(resets))
    return snapshot


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """`Retry-After` as seconds from `now`: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    number = _number(text)
    if number is not None:
        return max(0.0, number)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True)
class Wait:
    seconds: float
    source: str  # "retry-after" | "reset" | "default"


def wait_after_429(
    retry_after: float | None, reset_seconds: float | None, default: float = DEFAULT_429_WAIT_SECONDS
) -> Wait:
    """How long a 429 says to stay away: Retry-After, else the reset seconds, else 60 s."""
    if retry_after is not None:
        return Wait(retry_after, "retry-after")
    if reset_seconds is not None and reset_seconds > 0:
        return Wait(reset_seconds, "reset")
    return Wait(default, "default")


def pacing_delay(
    remaining: int, *, threshold: int = SLOWDOWN_BELOW, base_seconds: float, time_to_reset: float | None
) -> float:
    """The pause before the next request when `remaining` requests are left in the window.

    Nothing while `remaining >= threshold`; below it the pause doubles with every request spent
    (base, 2·base, 4·base, ...), never longer than the time until the window resets; with nothing left,
    exactly the time to the reset (or the 429 default when the reset is unknown).
    """
    if remaining >= threshold:
        return 0.0
    if remaining <= 0:
        return time_to_reset if time_to_reset is not None else DEFAULT_429_WAIT_SECONDS
    delay: float = base_seconds * float(2 ** (threshold - 1 - remaining))
    if time_to_reset is not None:
        delay = min(delay, time_to_reset)
    return max(0.0, delay)
