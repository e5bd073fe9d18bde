"""Typed errors for Cal.com's responses: the v2 envelope `{status:"error", error:{code, message, details}}`
(older snapshots without `details`, v1's plain `{"message": ...}` understood too)."""

from __future__ import annotations

from typing import Any


class CalcomError(Exception):
    """Any failed Cal.com call. `retryable` says whether the same request may succeed later."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        details: Any = None,
        request_id: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details = details
        self.request_id = request_id
        self.path = path

    def __str__(self) -> str:
        parts = [f"Cal.com {self.status}" if self.status else "Cal.com", self.code or "", self.message]
        return " ".join(p for p in parts if p).strip()


class CalcomClientError(CalcomError):
    """A 4xx that will not change by asking again (bad input, unknown event type, missing permission)."""


class CalcomBadRequest(CalcomClientError):
    """400/422: validation failed, or the slot is taken / outside the booking window."""


class CalcomUnauthorized(CalcomClientError):
    """401/403: the API key is missing, wrong or lacks the permission."""


class CalcomNotFound(CalcomClientError):
    """404: unknown event type or booking, or a route that does not exist for the `cal-api-version`."""


class CalcomRateLimited(CalcomError):
    """429, or a request the client did not send because the budget is known to be used up.
    `retry_after` is how many seconds to stay away."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class CalcomServerError(CalcomError):
    """5xx (and 408/425): Cal.com failed; the same request may succeed later."""

    retryable = True


class CalcomUnavailable(CalcomError):
    """No answer: connection refused, timeout, broken connection."""

    retryable = True


class CalcomProtocolError(CalcomError):
    """A 2xx whose body is not what the contract says."""


def error_from_response(status: int, body: Any, *, request_id: str | None, path: str | None) -> CalcomError:
    """Map a non-2xx response to the typed error, reading whichever envelope Cal.com sent."""
    code: str | None = None
    message = f"HTTP {status}"
    details: Any = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            code = _str_or_none(error.get("code"))
            message = _message(error.get("message")) or message
            details = error.get("details")
        elif isinstance(error, str):  # Nest's bare {"statusCode", "message", "error"}
            code = error
            message = _message(body.get("message")) or message
        else:
            message = _message(body.get("message")) or message
    elif isinstance(body, str) and body.strip():
        message = body.strip()[:500]
    kwargs: dict[str, Any] = {
        "status": status,
        "code": code,
        "details": details,
        "request_id": request_id,
        "path": path,
    }
    if status in (400, 422):
        return CalcomBadRequest(message, **kwargs)
    if status in (401, 403):
        return CalcomUnauthorized(message, **kwargs)
    if status == 404:
        return CalcomNotFound(message, **kwargs)
    if status in (408, 425) or status >= 500:
        return CalcomServerError(message, **kwargs)
    return CalcomClientError(message, **kwargs)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _message(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # class-validator returns a list of messages
        return ", ".join(str(v) for v in value)
    return None
