"""The small HTTP side of the worker and the API: `/metrics` for Prometheus and `/healthz`.

A worker has no API of its own, but it must be scraped and health-checked like any service; the API keeps
its metrics off the public port. This app is served inside the process's event loop
(telemetry/asgi_server.py) on a port of its own, so it adds no thread and no process.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from telemetry import metrics
from telemetry.runtime import scrape


def metrics_app(
    sdk_url: str | None,
    healthy: Callable[[], bool] = lambda: True,
    before_scrape: Callable[[], Awaitable[None]] | None = None,
) -> Starlette:
    """`before_scrape`: brings gauges up to date first (the API's read-model gauges)."""

    async def metrics_endpoint(request: Request) -> Response:
        if before_scrape is not None:
            await before_scrape()
        return Response(await scrape(sdk_url), media_type=metrics.CONTENT_TYPE)

    async def healthz(request: Request) -> JSONResponse:
        ok = healthy()
        return JSONResponse({"status": "ok" if ok else "failing"}, status_code=200 if ok else 503)

    return Starlette(routes=[Route("/metrics", metrics_endpoint), Route("/healthz", healthz)])
