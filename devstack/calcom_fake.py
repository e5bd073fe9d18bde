"""A fake Cal.com that follows the real contract (`calcom-api.md`), for tests and the local stack.

What it reproduces, because our client must cope with exactly that:

* `cal-api-version` dispatch: `2024-09-04` → `GET /v2/slots`; a missing or unknown header falls back to
  `2024-04-15` → the legacy `GET /v2/slots/available`; a route of the other version answers 404. Bookings
  need `2024-08-13` (without it Cal.com ends up in an old controller; issue #16924 reports a 500).
* Strict query validation of `/v2/slots` (`whitelist` + `forbidNonWhitelisted`): one selector shape, any
  other parameter → 400 in Cal.com's error envelope.
* `start`/`end` read as UTC (date-only = midnight UTC), an `end` at exactly 00:00:00 UTC → 23:59:59, `end`
  clamped to now + 1 year, `start` in the past clamped to now + minimum notice.
* Date keys in the requested `timeZone`, luxon-style timestamps (`.000+02:00`, or `.000Z` without a zone),
  `data: {}` when nothing is free.
* Rate limiting per tracker (API key, token, client id, IP): a fixed window counted from the first hit, the
  `X-RateLimit-{Limit,Remaining,Reset}-Default` triple with Reset in seconds, a block once the limit is
  exceeded that further requests do not extend, the `ThrottlerException` 429 body and — switchable —
  a `Retry-After` header (real v2 sends none).
* Bookings: create (201), get, cancel (200), reschedule (201, a new uid; the old booking is cancelled).

Availability comes from weekly working hours in the event type's time zone, minus the host's bookings.
Test hooks: `force_block`, `fail_next`, the request log and counters, an injectable calendar clock.

Run it: `python -m devstack.calcom_fake --port 8788` (seeded with the demo event types 1001–1004).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from telemetry.asgi_server import serve_asgi, serve_forever

KNOWN_VERSIONS = ("2024-04-15", "2024-06-11", "2024-06-14", "2024-08-13", "2024-09-04")
DEFAULT_VERSION = "2024-04-15"
SLOTS_VERSION = "2024-09-04"
BOOKINGS_VERSION = "2024-08-13"
THROTTLED = "Too many requests. Please try again later."

# ----------------------------------------------------------------------------------------------------
# Calendar data


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass
class EventType:
    """A Cal.com event type. `hours` maps a weekday (0 = Monday) to working intervals in minutes after
    local midnight, e.g. `{0: [(540, 1020)]}` = Monday 09:00–17:00 in `time_zone`."""

    id: int
    slug: str
    length: int = 30
    time_zone: str = "UTC"
    hours: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    host: str = "host"
    slot_interval: int | None = None
    minimum_booking_notice: int = 0
    requires_confirmation: bool = False


def working_hours(days: str, start: str, end: str) -> dict[int, list[tuple[int, int]]]:
    """`working_hours("mon-fri", "09:00", "17:00")`; days as a range or a comma list of `mon`..`sun`."""

    def minutes(text: str) -> int:
        hours, mins = text.split(":")
        return int(hours) * 60 + int(mins)

    if "-" in days:
        first, last = (WEEKDAYS.index(d) for d in days.split("-"))
        selected = list(range(first, last + 1))
    else:
        selected = [WEEKDAYS.index(d) for d in days.split(",")]
    return {day: [(minutes(start), minutes(end))] for day in selected}


@dataclass
class FakeBooking:
    id: int
    uid: str
    event_type: EventType
    start: datetime
    end: datetime
    status: str
    attendee: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    cancellation_reason: str | None = None
    rescheduling_reason: str | None = None
    rescheduled_from_uid: str | None = None
    rescheduled: bool = False
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def blocks_time(self) -> bool:
        return self.status in ("accepted", "pending")


def demo_event_types() -> list[EventType]:
    """The event types of the demo tenant (`devstack/demo.py`): Mon–Fri 08:00–18:00."""
    weekdays = working_hours("mon-fri", "08:00", "18:00")
    return [
        EventType(1001, "checkup", 30, "Europe/Berlin", weekdays, host="anna"),
        EventType(1002, "cleaning", 45, "Europe/Berlin", weekdays, host="lena"),
        EventType(1003, "consultation", 20, "Europe/Lisbon", weekdays, host="mateus"),
        EventType(1004, "video-consultation", 15, "Europe/Berlin", weekdays, host="ines"),
    ]


# ----------------------------------------------------------------------------------------------------
# Rate limiting


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
    at: float = 0.0
    window: int | None = None  # which rate-limit window of its tracker counted it (1, 2, ...)
    validation_error: str | None = None  # the message when request validation refused it


class ApiError(Exception):
    """Raised inside handlers; becomes Cal.com's v2 error envelope."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        *,
        injected: bool = False,
        validation: bool = False,
    ) -> None:
        super().__init__(message)
        self.injected = injected
        self.validation = validation
        self.status = status
        self.code = code
        self.message = message
        self.details = details


_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
_CODES = {
    400: "BadRequestException",
    401: "UnauthorizedException",
    404: "NotFoundException",
    422: "UnprocessableEntityException",
    500: "InternalServerErrorException",
    502: "BadGatewayException",
    503: "ServiceUnavailableException",
}


def bad_request(message: str) -> ApiError:
    """A 400 for a well-formed request the calendar refuses (slot taken, in the past, ...)."""
    return ApiError(400, "BadRequestException", message)


def invalid(message: str) -> ApiError:
    """A 400 from request validation (ValidationPipe, the slots input pipe)."""
    return ApiError(400, "BadRequestException", message, validation=True)


def not_found(message: str) -> ApiError:
    return ApiError(404, "NotFoundException", message)


# ----------------------------------------------------------------------------------------------------
# Cal.com's formats

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})?)?$"
)


def parse_iso(value: str) -> datetime | None:
    """Strict ISO 8601 (class-validator's `IsDateString({strict:true})`), read as UTC when it has no
    offset; a date alone is midnight UTC. None when invalid (also for impossible dates)."""
    match = _ISO.match(value)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=UTC,
        )
    except ValueError:
        return None
    if offset and offset != "Z":
        sign = 1 if offset[0] == "+" else -1
        digits = offset[1:].replace(":", "")
        moment -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return moment


def js_iso(moment: datetime) -> str:
    """`Date.prototype.toISOString()`: UTC with milliseconds and `Z`."""
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def luxon_iso(moment: datetime, zone: str | None) -> str:
    """`DateTime.fromISO(t,{zone:"utc"}).setZone(tz).toISO()`: `.000` plus the zone's offset; luxon maps
    "UTC"/"GMT" to its fixed UTC zone, which it prints as `Z`. Without a zone the raw UTC ISO string."""
    if zone is None or zone.lower() in ("utc", "gmt"):
        return js_iso(moment)
    local = moment.astimezone(ZoneInfo(zone))
    offset = local.utcoffset() or timedelta(0)
    total = int(offset.total_seconds() // 60)
    sign = "+" if total >= 0 else "-"
    hours, minutes = divmod(abs(total), 60)
    return f"{local:%Y-%m-%dT%H:%M:%S}.{local.microsecond // 1000:03d}{sign}{hours:02d}:{minutes:02d}"


def _valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


# ----------------------------------------------------------------------------------------------------
# The fake

SLOT_SHAPES: dict[str, frozenset[str]] = {
    "byEventTypeId": frozenset({"eventTypeId"}),
    "byUsernameAndEventTypeSlug": frozenset({"eventTypeSlug", "username", "organizationSlug"}),
    "byTeamSlugAndEventTypeSlug": frozenset({"eventTypeSlug", "teamSlug", "organizationSlug"}),
    "byUsernames": frozenset({"usernames", "organizationSlug"}),
}
SLOT_COMMON = frozenset({"start", "end", "timeZone", "duration", "format", "bookingUidToReschedule"})


class FakeCalcom:
    def __init__(
        self,
        event_types: list[EventType] | None = None,
        *,
        rate_limit: RateLimitConfig | None = None,
        now: Callable[[], datetime] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.event_types: dict[int, EventType] = {}
        for event_type in event_types if event_types is not None else demo_event_types():
            self.add_event_type(event_type)
        self.bookings: dict[str, FakeBooking] = {}
        self.rate_limit = rate_limit or RateLimitConfig()
        self.now: Callable[[], datetime] = now or (lambda: datetime.now(UTC))
        self._monotonic = monotonic
        self._buckets: dict[str, _Bucket] = {}
        self._windows: dict[str, int] = {}
        self._forced_block_ends = 0.0
        self._faults: list[tuple[int, str]] = []
        self._next_booking_id = 1
        self.requests: list[RequestRecord] = []
        self.app = self._build_app()

    # -- test hooks ------------------------------------------------------------------------------------
    def add_event_type(self, event_type: EventType) -> EventType:
        self.event_types[event_type.id] = event_type
        return event_type

    def force_block(self, seconds: float | None = None) -> None:
        """Refuse every tracker with 429 for `seconds` (default: the configured block)."""
        duration = self.rate_limit.block_ms / 1000 if seconds is None else seconds
        self._forced_block_ends = self._monotonic() + duration

    def fail_next(self, status: int, count: int = 1, message: str | None = None) -> None:
        """The next `count` throttled requests answer `status` (after counting against the limit)."""
        text = message or ("Internal server error" if status >= 500 else "Injected failure")
        self._faults.extend([(status, text)] * count)

    def reset_log(self) -> None:
        self.requests.clear()

    def book(self, event_type_id: int, start: datetime, *, length: int | None = None) -> FakeBooking:
        """Put a booking straight into the calendar (no HTTP, no checks)."""
        event_type = self.event_types[event_type_id]
        return self._store_booking(
            event_type,
            start.astimezone(UTC),
            length or event_type.length,
            {"name": "Seeded", "timeZone": "UTC"},
        )

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
        routes = [
            Route("/v2/slots", self._endpoint(self._slots), methods=["GET"]),
            Route("/v2/slots/available", self._endpoint(self._slots_available), methods=["GET"]),
            Route("/v2/bookings", self._endpoint(self._create_booking), methods=["POST"]),
            Route("/v2/bookings/{uid}", self._endpoint(self._get_booking), methods=["GET"]),
            Route("/v2/bookings/{uid}/cancel", self._endpoint(self._cancel_booking), methods=["POST"]),
            Route(
                "/v2/bookings/{uid}/reschedule", self._endpoint(self._reschedule_booking), methods=["POST"]
            ),
            Route("/_fake/health", self._health, methods=["GET"]),
            Route("/_fake/block", self._admin_block, methods=["POST"]),
            Route("/_fake/fail", self._admin_fail, methods=["POST"]),
            Route("/_fake/stats", self._admin_stats, methods=["GET"]),
        ]
        return Starlette(routes=routes, exception_handlers={HTTPException: self._http_exception})

    async def _http_exception(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        message = f"Cannot {request.method} {request.url.path}"
        return self._error(request, ApiError(status, _CODES.get(status, "HttpException"), message))

    def _endpoint(
        self, handler: Callable[[Request, RequestRecord, str | None], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            version = request.headers.get("cal-api-version")
            record = RequestRecord(
                request.method,
                request.url.path,
                list(request.query_params.multi_items()),
                version,
                None,
                at=self._monotonic(),
            )
            self.requests.append(record)
            try:
                response: Response = await handler(
                    request, record, version if version in KNOWN_VERSIONS else None
                )
            except ApiError as error:
                if error.validation:
                    record.validation_error = error.message
                response = self._error(request, error)
                if record.window is not None:
                    self._rate_headers(response, record.tracker)
            record.status = response.status_code
            return response

        return endpoint

    def _error(self, request: Request, error: ApiError) -> JSONResponse:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        details = error.details
        if details is None:
            details = (
                error.message
                if error.code == "ThrottlerException"
                else {
                    "message": error.message,
                    "error": _REASONS.get(error.status, "Error"),
                    "statusCode": error.status,
                }
            )
        body = {
            "status": "error",
            "timestamp": js_iso(datetime.now(UTC)),
            "path": path,
            "error": {"code": error.code, "message": error.message, "details": details},
        }
        return JSONResponse(body, status_code=error.status, headers={"X-Request-Id": str(uuid.uuid4())})

    # -- rate limiting (the throttler guard runs before validation) -----------------------------------
    def _tracker(self, request: Request) -> tuple[str, int]:
        authorization = request.headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            token = authorization[7:].strip()
            if token.startswith("cal_"):
                return "api_key_" + hashlib.sha256(token.encode()).hexdigest()[:16], self.rate_limit.limit
            return "access_token_" + token[:16], self.rate_limit.token_limit
        client_id = request.headers.get("x-cal-client-id")
        if client_id:
            return "oauth_client_" + client_id, self.rate_limit.token_limit
        host = request.client.host if request.client else "unknown"
        return "ip_" + host, self.rate_limit.limit

    def _throttle(self, request: Request, record: RequestRecord) -> None:
        tracker, limit = self._tracker(request)
        record.tracker = tracker
        now = self._monotonic()
        bucket = self._buckets.setdefault(tracker, _Bucket())
        if now >= bucket.window_ends:
            bucket.hits = 0
            bucket.window_ends = now + self.rate_limit.window_ms / 1000
            self._windows[tracker] = self._windows.get(tracker, 0) + 1
        bucket.hits += 1
        record.window = self._windows[tracker]
        blocked = now < bucket.block_ends or now < self._forced_block_ends
        if not blocked and bucket.hits > limit:
            bucket.block_ends = now + self.rate_limit.block_ms / 1000
            blocked = True
        if blocked:
            raise ApiError(429, "ThrottlerException", THROTTLED)

    def _rate_headers(self, response: Response, tracker: str | None) -> None:
        if tracker is None:
            return
        bucket = self._buckets[tracker]
        limit = (
            self.rate_limit.token_limit if tracker.startswith(("access", "oauth")) else self.rate_limit.limit
        )
        now = self._monotonic()
        block_ends = max(bucket.block_ends, self._forced_block_ends)
        blocked = now < block_ends
        # `timeToBlockExpire || timeToExpire`, Math.ceil(PTTL / 1000)
        seconds = math.ceil((block_ends if blocked else bucket.window_ends) - now)
        response.headers["X-RateLimit-Limit-Default"] = str(limit)
        response.headers["X-RateLimit-Remaining-Default"] = (
            "0" if blocked else str(max(0, limit - bucket.hits))
        )
        response.headers["X-RateLimit-Reset-Default"] = str(max(seconds, 0))
        if response.status_code == 429 and self.rate_limit.retry_after is not None:
            wait = max(block_ends - now, 0.0)
            if self.rate_limit.retry_after == "seconds":
                response.headers["Retry-After"] = str(math.ceil(wait))
            else:  # an HTTP date has whole seconds: round up, never tell a client to come back too early
                moment = datetime.now(UTC) + timedelta(seconds=wait)
                if moment.microsecond:
                    moment = moment.replace(microsecond=0) + timedelta(seconds=1)
                response.headers["Retry-After"] = format_datetime(moment, usegmt=True)

    def _guarded(self, request: Request, record: RequestRecord) -> None:
        self._throttle(request, record)
        if self._faults:
            status, message = self._faults.pop(0)
            raise ApiError(status, _CODES.get(status, "HttpException"), message, injected=True)

    def _ok(self, body: Any, record: RequestRecord, status: int = 200) -> JSONResponse:
        response = JSONResponse(body, status_code=status)
        self._rate_headers(response, record.tracker)
        return response

    # -- GET /v2/slots (2024-09-04) --------------------------------------------------------------------
    async def _slots(self, request: Request, record: RequestRecord, version: str | None) -> Response:
        if version != SLOTS_VERSION:  # the default (2024-04-15) controller has no such route
            raise not_found(f"Cannot GET {request.url.path}")
        self._guarded(request, record)
        params = request.query_params
        keys = list(params.keys())
        present = set(keys)
        if "eventTypeId" in present:
            shape = "byEventTypeId"
        elif {"username", "eventTypeSlug"} <= present:
            shape = "byUsernameAndEventTypeSlug"
        elif {"teamSlug", "eventTypeSlug"} <= present:
            shape = "byTeamSlugAndEventTypeSlug"
        else:
            shape = "byUsernames"
        allowed = SLOT_SHAPES[shape] | SLOT_COMMON
        errors = [
            f"{key} property is wrong,property {key} should not exist "
            for key in dict.fromkeys(keys)
            if key not in allowed
        ]
        if errors:
            raise invalid(", ".join(errors).strip())
        if shape != "byEventTypeId":
            raise not_found("User not found")  # the fake only knows event types by id
        event_type_raw = params["eventTypeId"]
        if not re.fullmatch(r"\d+", event_type_raw):
            raise invalid("eventTypeId must be an integer number")
        for name in ("start", "end"):
            if name not in params or parse_iso(params[name]) is None:
                raise invalid(f"{name} must be a valid ISO 8601 date string")
        zone = params.get("timeZone")
        if zone is not None and not _valid_zone(zone):
            raise invalid("timeZone must be a valid IANA time-zone")
        duration_raw = params.get("duration")
        if duration_raw is not None and not re.fullmatch(r"\d+", duration_raw):
            raise invalid("duration must be an integer number")
        slot_format = params.get("format", "time").lower()
        if slot_format not in ("time", "range"):
            raise invalid("slotFormat must be either 'range' or 'time'")
        start = parse_iso(params["start"])
        end = parse_iso(params["end"])
        assert start is not None
        assert end is not None
        if (end.hour, end.minute, end.second, end.microsecond) == (0, 0, 0, 0):
            end = end.replace(hour=23, minute=59, second=59)
        now = self.now()
        end = min(end, now + timedelta(days=365))
        if end < start:
            raise invalid("Invalid time range given - check the 'start' and 'end' query parameters.")
        event_type = self.event_types.get(int(event_type_raw))
        if event_type is None:
            raise not_found("Event Type not found")
        length = int(duration_raw) if duration_raw else event_type.length
        exclude = params.get("bookingUidToReschedule")
        slots = self.free_slots(event_type, start, end, length=length, exclude_uid=exclude)
        data: dict[str, list[dict[str, Any]]] = {}
        key_zone = ZoneInfo(zone) if zone else UTC
        first_key = start.astimezone(key_zone).date()
        last_key = end.astimezone(key_zone).date()
        for slot_start in slots:
            day = slot_start.astimezone(key_zone).date()
            if not first_key <= day <= last_key:  # _filterSlotsByRequestedDateRange
                continue
            item = {"start": luxon_iso(slot_start, zone)}
            if slot_format == "range":
                item["end"] = luxon_iso(slot_start + timedelta(minutes=length), zone)
            data.setdefault(day.isoformat(), []).append(item)
        return self._ok({"status": "success", "data": data}, record)

    # -- GET /v2/slots/available (2024-04-15, the fallback for a missing header) ------------------------
    async def _slots_available(
        self, request: Request, record: RequestRecord, version: str | None
    ) -> Response:
        if version in (SLOTS_VERSION,):
            raise not_found(f"Cannot GET {request.url.path}")
        self._guarded(request, record)
        params = request.query_params  # whitelist: unknown parameters are stripped, not refused
        start = parse_iso(params.get("startTime", ""))
        end = parse_iso(params.get("endTime", ""))
        if start is None or end is None or end < start:
            raise invalid("Invalid time range given - check the 'startTime' and 'endTime' query parameters.")
        raw_id = params.get("eventTypeId")
        event_type = self.event_types.get(int(raw_id)) if raw_id and raw_id.isdigit() else None
        if event_type is None:
            raise ApiError(404, "TRPCError", "NOT_FOUND")
        zone = params.get("timeZone")
        if zone is not None and not _valid_zone(zone):
            zone = None
        length = int(params["duration"]) if params.get("duration", "").isdigit() else event_type.length
        range_format = params.get("slotFormat", "time").lower() == "range"
        slots: dict[str, list[dict[str, Any]]] = {}
        for slot_start in self.free_slots(event_type, start, end, length=length):
            day = slot_start.astimezone(ZoneInfo(zone) if zone else UTC).date().isoformat()
            if range_format:
                item = {
                    "startTime": luxon_iso(slot_start, zone),
                    "endTime": luxon_iso(slot_start + timedelta(minutes=length), zone),
                }
            else:
                item = {"time": luxon_iso(slot_start, zone)}
            slots.setdefault(day, []).append(item)
        return self._ok({"status": "success", "data": {"slots": slots}}, record)

    # -- availability ----------------------------------------------------------------------------------
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
        length = length or event_type.length
        step = timedelta(minutes=event_type.slot_interval or length)
        span = timedelta(minutes=length)
        earliest = max(start, self.now() + timedelta(minutes=event_type.minimum_booking_notice))
        zone = ZoneInfo(event_type.time_zone)
        busy = [
            (booking.start, booking.end)
            for booking in self.bookings.values()
            if booking.blocks_time
            and booking.event_type.host == event_type.host
            and booking.uid != exclude_uid
        ]
        found: list[datetime] = []
        day = earliest.astimezone(zone).date() - timedelta(days=1)
        last_day = end.astimezone(zone).date() + timedelta(days=1)
        while day <= last_day:
            midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
            for open_minute, close_minute in event_type.hours.get(day.weekday(), []):
                local = midnight + timedelta(minutes=open_minute)  # wall-clock arithmetic in `zone`
                close = midnight + timedelta(minutes=close_minute)
                while local + span <= close:
                    utc = local.astimezone(UTC)
                    if earliest <= utc <= end and not any(
                        utc < busy_end and busy_start < utc + span for busy_start, busy_end in busy
                    ):
                        found.append(utc)
                    local += step
            day += timedelta(days=1)
        return sorted(set(found))

    # -- bookings (2024-08-13) -------------------------------------------------------------------------
    def _bookings_version(self, request: Request, record: RequestRecord, version: str | None) -> None:
        self._guarded(request, record)
        if version != BOOKINGS_VERSION:  # the old controller; issue #16924
            raise ApiError(500, "InternalServerErrorException", "Internal server error")

    async def _json(self, request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError as exc:
            raise invalid("Unexpected token in JSON body") from exc
        if not isinstance(body, dict):
            raise invalid("body must be a JSON object")
        return body

    def _utc_start(self, raw: Any) -> datetime:
        if not isinstance(raw, str) or parse_iso(raw) is None:
            raise invalid("start must be a valid ISO 8601 date string")
        if not (raw.endswith("Z") or raw.endswith("+00:00")):
            raise invalid("start must be in UTC timezone, e.g. 2024-08-13T09:00:00Z")
        moment = parse_iso(raw)
        assert moment is not None
        return moment

    def _check_bookable(
        self, event_type: EventType, start: datetime, length: int, exclude_uid: str | None = None
    ) -> None:
        now = self.now()
        if start < now:
            raise bad_request("Attempting to book a meeting in the past.")
        if start < now + timedelta(minutes=event_type.minimum_booking_notice) or start > now + timedelta(
            days=365
        ):
            raise bad_request(
                "The event type can't be booked at the \"start\" time provided. This could be because it's "
                "too soon (violating the minimum booking notice) or too far in the future (outside the event "
                "type's booking window). Try fetching available slots first using the GET /v2/slots endpoint "
                'and then make a booking with "start" time equal to one of the available slots.'
            )
        if start not in self.free_slots(event_type, start, start, length=length, exclude_uid=exclude_uid):
            raise bad_request("User either already has booking at this time or is not available")

    def _store_booking(
        self,
        event_type: EventType,
        start: datetime,
        length: int,
        attendee: dict[str, Any],
        *,
        metadata: dict[str, Any] | None = None,
        rescheduled_from: str | None = None,
        reason: str | None = None,
    ) -> FakeBooking:
        booking = FakeBooking(
            id=self._next_booking_id,
            uid=uuid.uuid4().hex[:22],
            event_type=event_type,
            start=start,
            end=start + timedelta(minutes=length),
            status="pending" if event_type.requires_confirmation else "accepted",
            attendee=attendee,
            metadata=metadata or {},
            rescheduled_from_uid=rescheduled_from,
            rescheduling_reason=reason,
        )
        self._next_booking_id += 1
        self.bookings[booking.uid] = booking
        return booking

    def booking_json(self, booking: FakeBooking) -> dict[str, Any]:
        event_type = booking.event_type
        body: dict[str, Any] = {
            "id": booking.id,
            "uid": booking.uid,
            "title": f"{event_type.slug} between {event_type.host} and {booking.attendee.get('name')}",
            "description": "",
            "hosts": [
                {
                    "id": 1,
                    "name": event_type.host,
                    "email": f"{event_type.host}@example.com",
                    "timeZone": event_type.time_zone,
                }
            ],
            "status": booking.status,
            "start": js_iso(booking.start),
            "end": js_iso(booking.end),
            "duration": int((booking.end - booking.start).total_seconds() // 60),
            "eventTypeId": event_type.id,
            "eventType": {"id": event_type.id, "slug": event_type.slug},
            "location": "",
            "absentHost": False,
            "createdAt": js_iso(booking.created_at),
            "attendees": [
                {
                    "name": booking.attendee.get("name"),
                    "email": booking.attendee.get("email"),
                    "timeZone": booking.attendee.get("timeZone"),
                    "language": booking.attendee.get("language", "en"),
                    "absent": False,
                }
            ],
            "guests": [],
            "bookingFieldsResponses": {"name": booking.attendee.get("name")},
            "metadata": booking.metadata,
        }
        if booking.cancellation_reason is not None:
            body["cancellationReason"] = booking.cancellation_reason
        if booking.rescheduling_reason is not None:
            body["reschedulingReason"] = booking.rescheduling_reason
        if booking.rescheduled_from_uid is not None:
            body["rescheduledFromUid"] = booking.rescheduled_from_uid
        if booking.rescheduled:
            body["rescheduled"] = True
        return body

    async def _create_booking(self, request: Request, record: RequestRecord, version: str | None) -> Response:
        self._bookings_version(request, record, version)
        body = await self._json(request)
        start = self._utc_start(body.get("start"))
        event_type_id = body.get("eventTypeId")
        if not isinstance(event_type_id, int) or isinstance(event_type_id, bool):
            raise invalid("eventTypeId must be an integer number")
        attendee = body.get("attendee")
        if not isinstance(attendee, dict):
            raise invalid("attendee must be an object")
        if not isinstance(attendee.get("name"), str) or not attendee["name"].strip():
            raise invalid("attendee.name must be a string")
        if not isinstance(attendee.get("timeZone"), str) or not _valid_zone(attendee["timeZone"]):
            raise invalid("attendee.timeZone must be a valid IANA time zone")
        if not attendee.get("email") and not attendee.get("phoneNumber"):
            raise invalid("Either attendee.email or attendee.phoneNumber must be provided")
        metadata = body.get("metadata") or {}
        if (
            not isinstance(metadata, dict)
            or len(metadata) > 50
            or any(len(str(k)) > 40 or not isinstance(v, str) or len(v) > 500 for k, v in metadata.items())
        ):
            raise invalid("metadata: at most 50 keys, keys up to 40 and string values up to 500 characters")
        event_type = self.event_types.get(event_type_id)
        if event_type is None:
            raise not_found(f"Event type with id {event_type_id} not found.")
        length = body.get("lengthInMinutes") or event_type.length
        if not isinstance(length, int) or length <= 0:
            raise invalid("lengthInMinutes must be a positive integer")
        self._check_bookable(event_type, start, length)
        booking = self._store_booking(event_type, start, length, attendee, metadata=metadata)
        return self._ok({"status": "success", "data": self.booking_json(booking)}, record, status=201)

    def _find_booking(self, request: Request) -> FakeBooking:
        uid = request.path_params["uid"]
        booking = self.bookings.get(uid)
        if booking is None:
            raise not_found(f"Booking with uid={uid} was not found in the database")
        return booking

    async def _get_booking(self, request: Request, record: RequestRecord, version: str | None) -> Response:
        self._bookings_version(request, record, version)
        return self._ok({"status": "success", "data": self.booking_json(self._find_booking(request))}, record)

    async def _cancel_booking(self, request: Request, record: RequestRecord, version: str | None) -> Response:
        self._bookings_version(request, record, version)
        booking = self._find_booking(request)
        body = await self._json(request)
        if booking.status == "cancelled":
            raise bad_request("This booking has already been cancelled.")
        booking.status = "cancelled"
        reason = body.get("cancellationReason")
        booking.cancellation_reason = reason if isinstance(reason, str) else None
        return self._ok({"status": "success", "data": self.booking_json(booking)}, record)

    async def _reschedule_booking(
        self, request: Request, record: RequestRecord, version: str | None
    ) -> Response:
        self._bookings_version(request, record, version)
        old = self._find_booking(request)
        body = await self._json(request)
        start = self._utc_start(body.get("start"))
        if old.status == "cancelled":
            raise bad_request("Can't reschedule a cancelled booking")
        length = int((old.end - old.start).total_seconds() // 60)
        self._check_bookable(old.event_type, start, length, exclude_uid=old.uid)
        reason = body.get("reschedulingReason")
        new = self._store_booking(
            old.event_type,
            start,
            length,
            old.attendee,
            metadata=old.metadata,
            rescheduled_from=old.uid,
            reason=reason if isinstance(reason, str) else None,
        )
        old.status = "cancelled"
        old.rescheduled = True
        return self._ok({"status": "success", "data": self.booking_json(new)}, record, status=201)

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

    async def _admin_stats(self, request: Request) -> Response:
        return JSONResponse(
            {"requests": len(self.requests), "refused": self.refused, "bookings": len(self.bookings)}
        )


# ----------------------------------------------------------------------------------------------------
# Serving it


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
    args = parser.parse_args(argv)
    retry_after: Literal["seconds", "date"] | None = None if args.retry_after == "none" else args.retry_after
    fake = FakeCalcom(
        rate_limit=RateLimitConfig(
            limit=args.limit, window_ms=args.window_ms, block_ms=args.block_ms, retry_after=retry_after
        )
    )
    print(
        f"fake Cal.com on http://{args.host}:{args.port} (event types {sorted(fake.event_types)})", flush=True
    )
    serve_forever(fake.app, args.host, args.port)


if __name__ == "__main__":
    main()
