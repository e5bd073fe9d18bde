"""Cal.com API v2 over httpx, as Cal.com documents it (wire formats in `calcom/wire.py`).

* Slots: `GET /v2/slots`, `cal-api-version: 2024-09-04`, one selector shape only (`eventTypeId`),
  `start`/`end` as full UTC datetimes, `timeZone`, `format=range`. Nothing else is sent: the endpoint
  rejects any parameter that does not belong to the shape (`forbidNonWhitelisted`).
* Bookings: create / get / cancel / reschedule / list with `cal-api-version: 2024-08-13`.
* One shared `AsyncClient` (keep-alive pool, timeouts, connection limits) and one `RateLimiter`, which
  spends the API key's budget (shared by every process when the composition root gives it one).

Retries inside the client are short and safe: a 429 is waited out (the limiter knows how long) as long as
the caller's `max_wait` allows, and a 5xx or a broken connection on an idempotent call is retried a couple
of times with a short backoff. Anything longer is the caller's job (activities use Temporal's retries).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from calcom.budget import RateBudget
from calcom.errors import (
    CalcomProtocolError,
    CalcomRateLimited,
    CalcomServerError,
    CalcomUnavailable,
    error_from_response,
)
from calcom.ratelimit import NO_HEADERS, RateLimiter, RateLimitWait
from calcom.wire import (
    BOOKINGS_VERSION,
    SLOTS_VERSION,
    booking_payload,
    end_param,
    parse_booking,
    parse_bookings_page,
    parse_slots,
    utc_param,
)
from models.calcom import Booking, BookingsPage, CreateBooking, Slot
from rules.calcom_ratelimit import parse_rate_limit_headers, parse_retry_after, wait_after_429
from telemetry import metrics

USER_AGENT = "callback-engine/0.1 (+https://github.com/)"


@dataclass
class ClientStats:
    server_errors: int = 0
    transport_errors: int = 0
    retries: int = 0


class CalcomClient:
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        limiter: RateLimiter | None = None,
        timeout_seconds: float = 10.0,
        max_connections: int = 20,
        max_wait_seconds: float | None = 5.0,
        max_attempts: int = 3,
        retry_backoff_seconds: float = 0.2,
        max_rate_limit_retries: int = 5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(timeout_seconds, connect=min(5.0, timeout_seconds)),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            transport=transport,
        )
        self.limiter = limiter or RateLimiter()
        self.max_wait_seconds = max_wait_seconds
        self.max_attempts = max(1, max_attempts)
        self.retry_backoff_seconds = retry_backoff_seconds
        self.max_rate_limit_retries = max_rate_limit_retries
        self.stats = ClientStats()

    @classmethod
    def from_settings(cls, settings: Any, budget: RateBudget | None = None) -> CalcomClient:
        """Built from `config.Settings` (a real Cal.com, or the local fake when none is set). `budget`:
        the API key's budget shared with the other processes (without one, this process's own)."""
        return cls(
            settings.calcom_url(),
            settings.calcom_api_key,
            limiter=RateLimiter(
                budget,
                slowdown_below=settings.calcom_slowdown_below,
                backoff_base_seconds=settings.calcom_backoff_base_seconds,
            ),
            timeout_seconds=settings.calcom_timeout_seconds,
            max_connections=settings.calcom_max_connections,
            max_wait_seconds=settings.calcom_max_inline_wait_seconds,
        )

    @property
    def base_url(self) -> str:
        return str(self._http.base_url)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> CalcomClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- slots -----------------------------------------------------------------------------------------
    async def get_slots(
        self,
        event_type_id: int,
        start: datetime,
        end: datetime,
        time_zone: str | None = None,
        *,
        max_wait: float | None = None,
    ) -> list[Slot]:
        """Free slots of an event type starting in [start, end), in `time_zone` (date keys and offsets)."""
        if end <= start:
            raise ValueError("end must be after start")
        params = {
            "eventTypeId": str(event_type_id),
            "start": utc_param(start),
            "end": end_param(end),
            "format": "range",
        }
        if time_zone:
            params["timeZone"] = time_zone
        body = await self._request("GET", "/v2/slots", SLOTS_VERSION, params=params, max_wait=max_wait)
        return [slot for slot in parse_slots(body) if start <= slot.start < end]

    # -- bookings --------------------------------------------------------------------------------------
    async def create_booking(self, booking: CreateBooking, *, max_wait: float | None = None) -> Booking:
        payload = booking_payload(booking)
        # Not retried on 5xx here: a booking may have been made before the failure (the caller decides).
        body = await self._request(
            "POST", "/v2/bookings", BOOKINGS_VERSION, json=payload, max_wait=max_wait, retry_errors=False
        )
        return parse_booking(body)

    async def get_booking(self, uid: str, *, max_wait: float | None = None) -> Booking:
        body = await self._request(
            "GET", f"/v2/bookings/{_segment(uid)}", BOOKINGS_VERSION, max_wait=max_wait
        )
        return parse_booking(body)

    async def cancel_booking(
        self, uid: str, reason: str | None = None, *, max_wait: float | None = None
    ) -> Booking:
        payload: dict[str, Any] = {}
        if reason:
            payload["cancellationReason"] = reason
        body = await self._request(
            "POST", f"/v2/bookings/{_segment(uid)}/cancel", BOOKINGS_VERSION, json=payload, max_wait=max_wait
        )
        return parse_booking(body)

    async def reschedule_booking(
        self,
        uid: str,
        start: datetime,
        *,
        reason: str | None = None,
        rescheduled_by: str | None = None,
        max_wait: float | None = None,
    ) -> Booking:
        """Move a booking. Cal.com answers with a *new* booking (new uid, `rescheduledFromUid` = old uid);
        the old one becomes cancelled."""
        payload: dict[str, Any] = {"start": utc_param(start)}
        if reason:
            payload["reschedulingReason"] = reason
        if rescheduled_by:
            payload["rescheduledBy"] = rescheduled_by
        body = await self._request(
            "POST",
            f"/v2/bookings/{_segment(uid)}/reschedule",
            BOOKINGS_VERSION,
            json=payload,
            max_wait=max_wait,
            retry_errors=False,
        )
        return parse_booking(body)

    async def list_bookings(
        self,
        *,
        event_type_id: int,
        after_start: datetime,
        before_end: datetime,
        take: int = 100,
        skip: int = 0,
        max_wait: float | None = None,
    ) -> BookingsPage:
        """One page of the event type's bookings (every status) starting after `after_start` and ending
        before `before_end`, earliest first. Needs an API key (`BOOKING_READ`)."""
        params = {
            "eventTypeId": str(event_type_id),
            "afterStart": utc_param(after_start),
            "beforeEnd": utc_param(before_end),
            "sortStart": "asc",
            "take": str(take),
            "skip": str(skip),
        }
        body = await self._request("GET", "/v2/bookings", BOOKINGS_VERSION, params=params, max_wait=max_wait)
        return parse_bookings_page(body, take=take)

    # -- the one place requests are sent ---------------------------------------------------------------
    async def _request(
        self,
        method: str,
        path: str,
        version: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        max_wait: float | None = None,
        retry_errors: bool = True,
    ) -> Any:
        budget = self.max_wait_seconds if max_wait is None else max_wait
        deadline = None if budget is None else time.monotonic() + budget
        attempts = 0
        rate_limited = 0
        while True:
            remaining_budget = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                ticket = await self.limiter.acquire(remaining_budget)
            except RateLimitWait as held:
                raise CalcomRateLimited(
                    f"Cal.com rate limit: not sent, next request possible in {held.seconds:.1f} s",
                    retry_after=held.seconds,
                    status=429,
                    code="ThrottlerException",
                    path=path,
                ) from None
            attempts += 1
            try:
                response = await self._http.request(
                    method, path, params=params, json=json, headers={"cal-api-version": version}
                )
            except asyncio.CancelledError:
                # the caller gave up: if this was the probe, the next may go now, not when its lease ends
                await asyncio.shield(self.limiter.observe(ticket, NO_HEADERS))
                raise
            except httpx.TransportError as exc:
                await self.limiter.observe(ticket, NO_HEADERS)  # no answer: if this was the probe, ditto
                self.stats.transport_errors += 1
                metrics.CALCOM_REQUESTS.labels(method, "error").inc()
                if retry_errors and attempts < self.max_attempts:
                    await self._backoff(attempts)
                    continue
                raise CalcomUnavailable(f"Cal.com unreachable: {exc!r}", path=path) from exc
            metrics.CALCOM_REQUESTS.labels(method, str(response.status_code)).inc()
            snapshot = parse_rate_limit_headers(response.headers.items(), time.time())
            if response.status_code == 429:
                retry_after = parse_retry_after(response.headers.get("retry-after"), datetime.now(UTC))
                wait = wait_after_429(retry_after, snapshot.reset_seconds, self.limiter.default_wait_seconds)
                await self.limiter.observe_429(ticket, snapshot, wait)
                rate_limited += 1
                if rate_limited > self.max_rate_limit_retries:
                    raise CalcomRateLimited(
                        "Cal.com rate limit: still refused after waiting",
                        retry_after=wait.seconds,
                        status=429,
                        code="ThrottlerException",
                        path=path,
                        request_id=response.headers.get("x-request-id"),
                    )
                continue  # acquire() waits out the block, or raises when that is too long for the caller
            await self.limiter.observe(ticket, snapshot)
            if response.is_success:
                try:
                    return response.json()
                except ValueError as exc:
                    raise CalcomProtocolError(f"not JSON: {response.text[:200]!r}", path=path) from exc
            error = error_from_response(
                response.status_code,
                _body(response),
                request_id=response.headers.get("x-request-id"),
                path=path,
            )
            if isinstance(error, CalcomServerError):
                self.stats.server_errors += 1
                if retry_errors and attempts < self.max_attempts:
                    await self._backoff(attempts)
                    continue
            raise error

    async def _backoff(self, attempts: int) -> None:
        self.stats.retries += 1
        await asyncio.sleep(self.retry_backoff_seconds * 2 ** (attempts - 1))


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _segment(uid: str) -> str:
    """A booking uid as one path segment (never lets a uid walk the path)."""
    if not uid or "/" in uid or uid in (".", ".."):
        raise ValueError(f"invalid booking uid {uid!r}")
    return quote(uid, safe="")
