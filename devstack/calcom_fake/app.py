"""`FakeCalcom`: the calendar, the throttler and the routes as one ASGI app, with the hooks tests and the
chaos runs drive it by (`force_block`, `fail_next`, `slow_down`, `book`, the request log and its counters,
`ignored_waits`) and the small admin routes the local stack uses for the same."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devstack.calcom_fake.bookings import BookingRoutes, booking_json
from devstack.calcom_fake.calendar import Calendar, EventType, FakeBooking, demo_event_types
from devstack.calcom_fake.ratelimit import Gate, RateLimitConfig, RequestRecord
from devstack.calcom_fake.slots import SlotRoutes
from devstack.calcom_fake.webhooks import SentWebhook, WebhookSender, WebhookSubscription
from devstack.calcom_fake.wire import CODES, KNOWN_VERSIONS, ApiError, error_response
from telemetry.asgi_server import serve_asgi, serve_forever

Handler = Callable[[Request, RequestRecord, str | None], Awaitable[Response]]


@dataclass
class SlowAnswer:
    seconds: float
    path_suffix: str | None  # None: any path
    method: str | None  # None: any method
    left: int

    def matches(self, request: Request) -> bool:
        return (self.path_suffix is None or request.url.path.endswith(self.path_suffix)) and (
            self.method is None or request.method == self.method
        )


class FakeCalcom:
    def __init__(
        self,
        event_types: list[EventType] | None = None,
        *,
        rate_limit: RateLimitConfig | None = None,
        now: Callable[[], datetime] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        latency_seconds: float = 0.0,
    ) -> None:
        """`latency_seconds`: every API answer takes this long, so what a client has in flight at once
        shows in the request log (`at` … `done_at`)."""
        self.latency_seconds = latency_seconds
        self.calendar = Calendar(
            event_types if event_types is not None else demo_event_types(),
            now or (lambda: datetime.now(UTC)),
        )
        self.gate = Gate(rate_limit or RateLimitConfig(), monotonic)
        # Webhook times are wall-clock (like `createdAt` of bookings), whatever the calendar's clock says.
        self.webhooks = WebhookSender(
            WebhookSubscription(webhook_url, webhook_secret), lambda: datetime.now(UTC)
        )
        self.requests: list[RequestRecord] = []
        self._slow: list[SlowAnswer] = []
        self.app = self._build_app()

    @property
    def event_types(self) -> dict[int, EventType]:
        return self.calendar.event_types

    @property
    def bookings(self) -> dict[str, FakeBooking]:
        return self.calendar.bookings

    @property
    def rate_limit(self) -> RateLimitConfig:
        return self.gate.config

    @property
    def now(self) -> Callable[[], datetime]:
        return self.calendar.now

    @property
    def sent_webhooks(self) -> list[SentWebhook]:
        return self.webhooks.sent

    def subscribe(self, url: str | None, secret: str | None = None) -> None:
        """Send booking webhooks to `url`, signed with `secret` (None: stop sending)."""
        self.webhooks.subscription = WebhookSubscription(url, secret)

    def pause_webhooks(self, paused: bool = True) -> None:
        """While paused, webhooks are recorded as dropped and never sent (a lost delivery)."""
        self.webhooks.subscription.paused = paused

    async def drain_webhooks(self) -> None:
        await self.webhooks.drain()

    # -- test hooks ------------------------------------------------------------------------------------
    def add_event_type(self, event_type: EventType) -> EventType:
        return self.calendar.add_event_type(event_type)

    def force_block(self, seconds: float | None = None) -> None:
        """Refuse every tracker with 429 for `seconds` (default: the configured block)."""
        self.gate.force_block(seconds)

    def fail_next(self, status: int, count: int = 1, message: str | None = None) -> None:
        """The next `count` throttled requests answer `status` (after counting against the limit)."""
        self.gate.fail_next(status, count, message)

    def slow_down(
        self, seconds: float, *, path_suffix: str | None = None, method: str | None = None, count: int = 1
    ) -> None:
        """The next `count` matching requests are carried out at once (the booking really changes) but
        answered only after `seconds`: an answer that comes after the client's timeout."""
        self._slow.append(SlowAnswer(seconds, path_suffix, method, count))

    def _answer_delay(self, request: Request) -> float:
        for rule in self._slow:
            if rule.left > 0 and rule.matches(request):
                rule.left -= 1
                return rule.seconds
        return 0.0

    def ignored_waits(self, grace: float = 0.5) -> list[RequestRecord]:
        """Requests that arrived while an earlier 429 to the same tracker still told it to wait, more
        than `grace` seconds after that 429 (requests already on their way when it was answered)."""
        ignored: list[RequestRecord] = []
        told: dict[str | None, list[tuple[float, float]]] = {}
        for record in sorted(self.requests, key=lambda r: r.at):
            for answered_at, until in told.get(record.tracker, []):
                if answered_at + grace < record.at < until:
                    ignored.append(record)
                    break
            if record.status == 429 and record.quiet_until is not None:
                told.setdefault(record.tracker, []).append((record.at, record.quiet_until))
        return ignored

    def answer_late(self, seconds: float, count: int = 1, path_suffix: str | None = None) -> None:
        """`slow_down` for any method: a client whose timeout is shorter loses the answer of a change that
        happened (a reschedule made, a booking cancelled)."""
        self.slow_down(seconds, path_suffix=path_suffix, count=count)

    def reset_log(self) -> None:
        self.requests.clear()

    def book(self, event_type_id: int, start: datetime, *, length: int | None = None) -> FakeBooking:
        """Put a booking straight into the calendar (no HTTP, no checks)."""
        event_type = self.event_types[event_type_id]
        return self.calendar.store_booking(
            event_type,
            start.astimezone(UTC),
            length or event_type.length,
            {"name": "Seeded", "timeZone": "UTC"},
        )

    def free_slots(
        self,
        event_type: EventType,
        start: datetime,
        end: datetime,
        *,
        length: int | None = None,
        exclude_uid: str | None = None,
    ) -> list[datetime]:
        """UTC starts of the free slots in [max(start, now + notice), end]."""
        return self.calendar.free_slots(event_type, start, end, length=length, exclude_uid=exclude_uid)

    def booking_json(self, booking: FakeBooking) -> dict[str, Any]:
        return booking_json(booking)

    def validation_errors(self) -> list[RequestRecord]:
        """Requests the strict request validation refused."""
        return [record for record in self.requests if record.validation_error is not None]

    @property
    def refused(self) -> int:
        return sum(1 for record in self.requests if record.status == 429)

    def count(self, path: str | None = None, status: int | None = None) -> int:
        return sum(
            1
            for record in self.requests
            if (path is None or record.path == path) and (status is None or record.status == status)
        )

    def accepted_per_window(self) -> dict[tuple[str | None, int], int]:
        """Requests let through by the rate limiter, per (tracker, window number)."""
        counts: dict[tuple[str | None, int], int] = {}
        for record in self.requests:
            if record.window is not None and record.status != 429:
                key = (record.tracker, record.window)
                counts[key] = counts.get(key, 0) + 1
        return counts

    # -- ASGI app --------------------------------------------------------------------------------------
    def _build_app(self) -> Starlette:
        slots = SlotRoutes(self.calendar, self.gate)
        bookings = BookingRoutes(self.calendar, self.gate, self.webhooks)
        routes = [
            Route("/v2/slots", self._endpoint(slots.slots), methods=["GET"]),
            Route("/v2/slots/available", self._endpoint(slots.slots_available), methods=["GET"]),
            Route("/v2/bookings", self._endpoint(bookings.create), methods=["POST"]),
            Route("/v2/bookings", self._endpoint(bookings.list_bookings), methods=["GET"]),
            Route("/v2/bookings/{uid}", self._endpoint(bookings.get), methods=["GET"]),
            Route("/v2/bookings/{uid}/cancel", self._endpoint(bookings.cancel), methods=["POST"]),
            Route("/v2/bookings/{uid}/reschedule", self._endpoint(bookings.reschedule), methods=["POST"]),
            Route("/_fake/health", self._health, methods=["GET"]),
            Route("/_fake/block", self._admin_block, methods=["POST"]),
            Route("/_fake/fail", self._admin_fail, methods=["POST"]),
            Route("/_fake/late", self._admin_late, methods=["POST"]),
            Route("/_fake/stats", self._admin_stats, methods=["GET"]),
            Route("/_fake/webhook", self._admin_webhook, methods=["POST"]),
        ]
        return Starlette(routes=routes, exception_handlers={HTTPException: self._http_exception})

    async def _http_exception(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        message = f"Cannot {request.method} {request.url.path}"
        return error_response(request, ApiError(status, CODES.get(status, "HttpException"), message))

    def _endpoint(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Logs every API request and turns a raised `ApiError` into the error envelope (with the rate
        headers once the throttler has counted the request)."""

        async def endpoint(request: Request) -> Response:
            version = request.headers.get("cal-api-version")
            record = RequestRecord(
                request.method,
                request.url.path,
                list(request.query_params.multi_items()),
                version,
                None,
                at=self.gate.monotonic(),
            )
            self.requests.append(record)
            if self.latency_seconds:
                await asyncio.sleep(self.latency_seconds)
            delay = self._answer_delay(request)
            try:
                response: Response = await handler(
                    request, record, version if version in KNOWN_VERSIONS else None
                )
            except ApiError as error:
                if error.validation:
                    record.validation_error = error.message
                response = error_response(request, error)
                if record.window is not None:
                    self.gate.rate_headers(response, record.tracker)
            record.status = response.status_code
            if response.status_code == 429:
                record.quiet_until = self.gate.quiet_until(record.tracker)
            if delay:
                record.answer_delay = delay
                await asyncio.sleep(delay)
            record.done_at = self.gate.monotonic()
            return response

        return endpoint

    # -- admin (for the local stack; tests use the Python hooks) ---------------------------------------
    async def _health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def _admin_block(self, request: Request) -> Response:
        seconds = request.query_params.get("seconds")
        self.force_block(float(seconds) if seconds else None)
        return JSONResponse({"status": "ok"})

    async def _admin_fail(self, request: Request) -> Response:
        self.fail_next(
            int(request.query_params.get("status", "500")), int(request.query_params.get("count", "1"))
        )
        return JSONResponse({"status": "ok"})

    async def _admin_late(self, request: Request) -> Response:
        """`?seconds=&count=&path=`: see `answer_late`."""
        params = request.query_params
        self.answer_late(
            float(params.get("seconds", "30")), int(params.get("count", "1")), params.get("path") or None
        )
        return JSONResponse({"status": "ok"})

    async def _admin_webhook(self, request: Request) -> Response:
        """`{"url": ..., "secret": ...}`: where the booking webhooks go (the local stack sets it)."""
        body = await request.json()
        self.subscribe(body.get("url") or None, body.get("secret") or None)
        return JSONResponse({"status": "ok"})

    async def _admin_stats(self, request: Request) -> Response:
        return JSONResponse(
            {
                "requests": len(self.requests),
                "refused": self.refused,
                "bookings": len(self.bookings),
                "webhooks": len(self.sent_webhooks),
            }
        )


@contextlib.asynccontextmanager
async def serve_fake(fake: FakeCalcom, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve the fake in this event loop on `host:port` (0 = a free port); yields its base URL."""
    async with serve_asgi(fake.app, host, port) as url:
        yield url


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake Cal.com API v2 (slots, bookings, rate limits).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8788)
    parser.add_argument("--limit", type=int, default=120, help="requests per window and API key")
    parser.add_argument("--window-ms", type=int, default=60_000)
    parser.add_argument("--block-ms", type=int, default=60_000)
    parser.add_argument("--retry-after", choices=["none", "seconds", "date"], default="none")
    parser.add_argument("--webhook-url", default=None, help="where booking webhooks are sent")
    parser.add_argument("--webhook-secret", default=None, help="signs them (X-Cal-Signature-256)")
    args = parser.parse_args(argv)
    retry_after: Literal["seconds", "date"] | None = None if args.retry_after == "none" else args.retry_after
    fake = FakeCalcom(
        rate_limit=RateLimitConfig(
            limit=args.limit, window_ms=args.window_ms, block_ms=args.block_ms, retry_after=retry_after
        ),
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
    )
    print(
        f"fake Cal.com on http://{args.host}:{args.port} (event types {sorted(fake.event_types)})", flush=True
    )
    serve_forever(fake.app, args.host, args.port)
