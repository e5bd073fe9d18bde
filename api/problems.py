"""RFC 9457 problem details for every error the API answers, including FastAPI's own.

Clients get one shape for every failure: `type`, `title`, `status`, `detail`, `instance` and, for input
errors, `errors: [{field, message}]` so a form can put each message next to its field. Nothing internal
(stack traces, SQL) ever leaves the process: an unexpected error is logged and answered as a bare 500.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("callbacks.api")

PROBLEM_JSON = "application/problem+json"


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """The body of every error response (`application/problem+json`)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None


class ApiProblem(Exception):
    """Raised anywhere in a request to answer with a problem; `slug` names the problem type."""

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        slug: str | None = None,
        title: str | None = None,
        errors: Sequence[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or title or HTTPStatus(status).phrase)
        self.status = status
        self.detail = detail
        self.slug = slug
        self.title = title or HTTPStatus(status).phrase
        self.errors = list(errors) if errors else None
        self.headers = headers
        self.extra = extra or {}


def not_found(thing: str, identifier: object) -> ApiProblem:
    """Also the answer for another company's objects: their existence is never confirmed."""
    return ApiProblem(404, f"{thing} {identifier} not found", slug="not-found")


def invalid(field: str, message: str, detail: str | None = None) -> ApiProblem:
    return ApiProblem(
        422,
        detail or f"{field}: {message}",
        slug="validation-error",
        title="Invalid request",
        errors=[FieldError(field=field, message=message)],
    )


def problem_response(
    request: Request,
    status: int,
    *,
    detail: str | None = None,
    slug: str | None = None,
    title: str | None = None,
    errors: Sequence[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body = Problem(
        type=f"/problems/{slug}" if slug else "about:blank",
        title=title or HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=request.url.path,
        errors=list(errors) if errors else None,
    ).model_dump(exclude_none=True)
    body.update(extra or {})
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _field(loc: Sequence[Any]) -> str:
    """`("body", "phone_number")` → `phone_number`; `("query", "page_size")` → `page_size`."""
    parts = [str(part) for part in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def _message(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid"))
    message = message.removeprefix("Value error, ")
    if error.get("type") == "extra_forbidden":
        return "unknown field"
    if error.get("type") == "json_invalid":
        return "the body is not valid JSON"
    return message


def validation_errors(raw: Sequence[Any]) -> list[FieldError]:
    return [
        FieldError(
            field="body" if e.get("type") == "json_invalid" else _field(e.get("loc", ())),
            message=_message(e),
        )
        for e in raw
    ]


def install(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiProblem)
        return problem_response(
            request,
            exc.status,
            detail=exc.detail,
            slug=exc.slug,
            title=exc.title,
            errors=exc.errors,
            headers=exc.headers,
            extra=exc.extra,
        )

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = validation_errors(exc.errors())
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
        return problem_response(
            request, 422, detail=detail, slug="validation-error", title="Invalid request", errors=errors
        )

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return problem_response(
            request,
            exc.status_code,
            detail=str(exc.detail) if exc.detail else None,
            headers=dict(exc.headers) if exc.headers else None,
        )

    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(request, 500, detail="an unexpected error occurred; it has been logged")

    app.add_exception_handler(ApiProblem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_error)
