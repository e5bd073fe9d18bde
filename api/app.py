"""The HTTP API: `create_app(settings, deps)` for tests and benchmarks, `wiring.web` for servers.

Without `deps` the app opens them with `open_deps` at startup (the composition root passes
`wiring.services.open_api_deps`) and closes them at shutdown; with `deps` the caller owns them, so a test can
point the app at its database and its in-process worker without any global state. The process serves it
with the staff console mounted: see `wiring/web.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import (
    calcom_webhooks,
    codec_server,
    customers_erase,
    engine_errors,
    routes_appointments,
    routes_branches,
    routes_callbacks,
    routes_companies,
    routes_customers,
    routes_import,
    routes_keys,
    routes_notifications,
    routes_policies,
    routes_services,
    routes_slots,
    routes_staff,
)
from api.deps import Deps
from api.methods import MethodNotAllowed
from api.metrics import RequestLog, api_metrics_app, read_model_gauges
from api.problems import PROBLEM_JSON, Problem, install, problem_response
from config import Settings, get_settings
from store.db import ping
from telemetry import metrics
from telemetry.asgi_server import serve_asgi
from telemetry.runtime import scrape

log = logging.getLogger("callbacks.api")

READY_TIMEOUT_SECONDS = 3.0

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": description}
    for code, description in {
        400: "bad request",
        401: "no or bad API key",
        403: "the key's role may not do this",
        404: "not found (also another company's object)",
        409: "refused transition or denied policy",
        413: "body too large",
        422: "validation error with a field list",
        429: "rate limited (see Retry-After)",
        503: "a service the engine depends on is unavailable (see Retry-After)",
    }.items()
}


class BodyLimit:
    """Refuse bodies over `limit` bytes before they are read into memory (announced or streamed);
    `overrides` gives paths starting with a prefix their own limit (e.g. CSV imports)."""

    def __init__(self, app: ASGIApp, limit: int, overrides: dict[str, int] | None = None) -> None:
        self.app = app
        self.default_limit = limit
        self.overrides = overrides or {}

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.overrides.items():
            if path.startswith(prefix):
                return limit
        return self.default_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(scope, send, limit)
            return
        seen = 0
        too_large = False
        refused = False

        async def counting() -> Message:
            nonlocal seen, too_large
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    too_large = True
                    raise _TooLarge
            return message

        async def replacing(message: Message) -> None:
            # Whatever the app answers to a body cut short is replaced by the one true answer: 413.
            nonlocal refused
            if not too_large:
                await send(message)
            elif not refused:
                refused = True
                await self._refuse(scope, send, limit)

        try:
            await self.app(scope, counting, replacing)
        except _TooLarge:
            if not refused:
                await self._refuse(scope, send, limit)

    async def _refuse(self, scope: Scope, send: Send, limit: int) -> None:
        body = json.dumps(
            {
                "type": "/problems/body-too-large",
                "title": "Content Too Large",
                "status": 413,
                "detail": f"the body is larger than {limit} bytes",
                "instance": scope.get("path", ""),
                "errors": [{"field": "body", "message": f"at most {limit} bytes are accepted"}],
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


DepsOpener = Callable[[Settings], contextlib.AbstractAsyncContextManager[Deps]]


def create_app(
    settings: Settings | None = None, deps: Deps | None = None, open_deps: DepsOpener | None = None
) -> FastAPI:
    settings = settings or (deps.settings if deps else get_settings())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if deps is None:
                if open_deps is None:
                    raise RuntimeError("create_app needs `deps` or `open_deps` (see wiring.web)")
                app.state.deps = await stack.enter_async_context(open_deps(settings))
            if settings.api_metrics_port:
                # The scraper's port, beside the public one (docs/operations.md, Metrics).
                current: Deps = app.state.deps
                url = await stack.enter_async_context(
                    serve_asgi(
                        api_metrics_app(current.sessions, current.sdk_metrics_url),
                        settings.api_metrics_host,
                        settings.api_metrics_port,
                    )
                )
                log.info("API metrics at %s/metrics", url)
            yield

    app = FastAPI(
        title="Callback engine API",
        version="1",
        description="Callbacks with SLA clocks on Temporal, appointment policies and changes, Cal.com "
        "slots and notification settings. "
        "Authenticate with `Authorization: Bearer <API key>` (create one with `callbacks keys create`). "
        "Errors are `application/problem+json` (RFC 9457).",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
    )
    if deps is not None:
        app.state.deps = deps
    install(app)
    engine_errors.install(app)
    app.include_router(routes_callbacks.bulk_router)
    app.include_router(routes_callbacks.router)
    app.include_router(routes_policies.router)
    app.include_router(routes_slots.router)
    app.include_router(routes_appointments.router)
    app.include_router(routes_notifications.router)
    for directory in (
        routes_companies,
        routes_branches,
        routes_services,
        routes_staff,
        routes_customers,
        routes_import,
        routes_keys,
    ):
        app.include_router(directory.router)
    app.include_router(customers_erase.router)
    app.include_router(calcom_webhooks.router)
    app.include_router(codec_server.router)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz(request: Request) -> JSONResponse:
        """Readiness: PostgreSQL and Temporal both answer within a few seconds."""
        current: Deps = request.app.state.deps
        checks: dict[str, str] = {}
        try:
            async with asyncio.timeout(READY_TIMEOUT_SECONDS), current.sessions() as session:
                await ping(session)
            checks["postgres"] = "ok"
        except Exception as exc:
            checks["postgres"] = f"failing: {type(exc).__name__}"
        try:
            await current.callbacks.temporal.service_client.check_health(
                timeout=timedelta(seconds=READY_TIMEOUT_SECONDS)
            )
            checks["temporal"] = "ok"
        except Exception as exc:
            checks["temporal"] = f"failing: {type(exc).__name__}"
        if all(value == "ok" for value in checks.values()):
            return JSONResponse({"status": "ready", "checks": checks})
        failing = ", ".join(name for name, value in checks.items() if value != "ok")
        response = problem_response(
            request, 503, detail=f"not ready: {failing}", slug="not-ready", extra={"checks": checks}
        )
        return response

    if settings.api_public_metrics:

        @app.get("/metrics", include_in_schema=False)
        async def prometheus_metrics(request: Request) -> Response:
            """The metrics port's /metrics on the API port too (CALLBACKS_API_PUBLIC_METRICS): only for a
            network where the API port is not public."""
            current: Deps = request.app.state.deps
            await read_model_gauges.refresh(current.sessions)
            return Response(await scrape(current.sdk_metrics_url), media_type=metrics.CONTENT_TYPE)

    # Innermost of the three: a 405 is logged and counted under its template, and needs no body.
    app.add_middleware(MethodNotAllowed)
    app.add_middleware(
        BodyLimit,
        limit=settings.api_max_body_bytes,
        overrides={routes_import.PREFIX + "/": settings.import_max_bytes},
    )
    # Outermost: the log line and the metrics see every answer, the 413 of BodyLimit included.
    app.add_middleware(RequestLog)
    return app
