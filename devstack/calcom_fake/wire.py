"""Cal.com's wire formats as its NestJS/luxon code produces and reads them: API versions, strict ISO 8601
input, `toISOString()` and luxon timestamps, and the v2 error envelope."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.requests import Request
from starlette.responses import JSONResponse

KNOWN_VERSIONS = ("2024-04-15", "2024-06-11", "2024-06-14", "2024-08-13", "2024-09-04")
DEFAULT_VERSION = "2024-04-15"
SLOTS_VERSION = "2024-09-04"
BOOKINGS_VERSION = "2024-08-13"
THROTTLED = "Too many requests. Please try again later."


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


REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
CODES = {
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


def error_response(request: Request, error: ApiError) -> JSONResponse:
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    details = error.details
    if details is None:
        details = (
            error.message
            if error.code == "ThrottlerException"
            else {
                "message": error.message,
                "error": REASONS.get(error.status, "Error"),
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


def valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
