"""Cal.com's throttler as our client meets it, and the fault injection that rides on it.

Per tracker (API key, access token, OAuth client id, else IP) — whichever connection or client the request
comes by, as Cal.com counts in Redis: a fixed window counted from the first hit,
a block once the limit is exceeded that further requests do not extend, the
`X-RateLimit-{Limit,Remaining,Reset}-Default` triple with Reset in seconds, the `ThrottlerException` 429,
and — switchable, real v2 sends none — a `Retry-After` header. The guard runs before request validation,
as in Cal.com, so refused requests count too.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from devstack.calcom_fake.wire import CODES, THROTTLED, ApiError


@dataclass
class RateLimitConfig:
    limit: int = 120  # per window, API key and IP trackers
    token_limit: int = 500  # OAuth client and access-token trackers
    window_ms: int = 60_000
    block_ms: int = 60_000
    retry_after: Literal["seconds", "date"] | None = None  # real v2 sends none


@dataclass
class _Bucket:
    hits: int = 0
    window_ends: float = 0.0
    block_ends: float = 0.0


@dataclass
class RequestRecord:
    method: str
    path: str
    query: list[tuple[str, str]]
    version: str | None
    tracker: str | None
    status: int = 0
    at: float = 0.0  # arrived (the fake's monotonic clock)
    done_at: float | None = None  # answered: its rate-limit headers exist from then on
    window: int | None = None  # which rate-limit window of its tracker counted it (1, 2, ...)
    validation_error: str | None = None  # the message when request validation refused it
    # A 429's answer told the client to stay away until then (the block's end, else the window's end:
    # what X-RateLimit-Reset says before rounding up).
    quiet_until: float | None = None
    answer_delay: float = 0.0  # seconds the answer was held back after the change was made (slow_down)


class Gate:
    """The throttler guard plus the injected failures (`fail_next`), which count against the limit first."""

    def __init__(self, config: RateLimitConfig, monotonic: Callable[[], float]) -> None:
        self.config = config
        self.monotonic = monotonic
        self._buckets: dict[str, _Bucket] = {}
        self._windows: dict[str, int] = {}
        self._forced_block_ends = 0.0
        self._faults: list[tuple[int, str]] = []

    def force_block(self, seconds: float | None = None) -> None:
        duration = self.config.block_ms / 1000 if seconds is None else seconds
        self._forced_block_ends = self.monotonic() + duration

    def fail_next(self, status: int, count: int = 1, message: str | None = None) -> None:
        text = message or ("Internal server error" if status >= 500 else "Injected failure")
        self._faults.extend([(status, text)] * count)

    def guard(self, request: Request, record: RequestRecord) -> None:
        self._throttle(request, record)
        if self._faults:
            status, message = self._faults.pop(0)
            raise ApiError(status, CODES.get(status, "HttpException"), message, injected=True)

    def ok(self, body: Any, record: RequestRecord, status: int = 200) -> JSONResponse:
        response = JSONResponse(body, status_code=status)
        self.rate_headers(response, record.tracker)
        return response

    def _tracker(self, request: Request) -> tuple[str, int]:
        authorization = request.headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            token = authorization[7:].strip()
            if token.startswith("cal_"):
                return "api_key_" + hashlib.sha256(token.encode()).hexdigest()[:16], self.config.limit
            return "access_token_" + token[:16], self.config.token_limit
        client_id = request.headers.get("x-cal-client-id")
        if client_id:
            return "oauth_client_" + client_id, self.config.token_limit
        host = request.client.host if request.client else "unknown"
        return "ip_" + host, self.config.limit

    def _throttle(self, request: Request, record: RequestRecord) -> None:
        tracker, limit = self._tracker(request)
        record.tracker = tracker
        now = self.monotonic()
        bucket = self._buckets.setdefault(tracker, _Bucket())
        if now >= bucket.window_ends:
            bucket.hits = 0
            bucket.window_ends = now + self.config.window_ms / 1000
            self._windows[tracker] = self._windows.get(tracker, 0) + 1
        bucket.hits += 1
        record.window = self._windows[tracker]
        blocked = now < bucket.block_ends or now < self._forced_block_ends
        if not blocked and bucket.hits > limit:
            bucket.block_ends = now + self.config.block_ms / 1000
            blocked = True
        if blocked:
            raise ApiError(429, "ThrottlerException", THROTTLED)

    def quiet_until(self, tracker: str | None) -> float | None:
        """Until when a 429 answered now tells the tracker to wait: the block's end while blocked, else
        the end of its window (an injected 429 names the window's reset)."""
        if tracker is None or tracker not in self._buckets:
            return None
        bucket = self._buckets[tracker]
        block_ends = max(bucket.block_ends, self._forced_block_ends)
        return block_ends if self.monotonic() < block_ends else bucket.window_ends

    def rate_headers(self, response: Response, tracker: str | None) -> None:
        if tracker is None:
            return
        bucket = self._buckets[tracker]
        limit = self.config.token_limit if tracker.startswith(("access", "oauth")) else self.config.limit
        now = self.monotonic()
        block_ends = max(bucket.block_ends, self._forced_block_ends)
        blocked = now < block_ends
        # `timeToBlockExpire || timeToExpire`, Math.ceil(PTTL / 1000)
        seconds = math.ceil((block_ends if blocked else bucket.window_ends) - now)
        response.headers["X-RateLimit-Limit-Default"] = str(limit)
        response.headers["X-RateLimit-Remaining-Default"] = (
            "0" if blocked else str(max(0, limit - bucket.hits))
        )
        response.headers["X-RateLimit-Reset-Default"] = str(max(seconds, 0))
        if response.status_code == 429 and self.config.retry_after is not None:
            wait = max(block_ends - now, 0.0)
            if self.config.retry_after == "seconds":
                response.headers["Retry-After"] = str(math.ceil(wait))
            else:  # an HTTP date has whole seconds: round up, never tell a client to come back too early
                moment = datetime.now(UTC) + timedelta(seconds=wait)
                if moment.microsecond:
                    moment = moment.replace(microsecond=0) + timedelta(seconds=1)
                response.headers["Retry-After"] = format_datetime(moment, usegmt=True)
