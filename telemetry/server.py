"""The worker's small HTTP side: `/metrics` for Prometheus and `/healthz` for the orchestrator.

A worker has no API of its own, but it must be scraped and health-checked like any service; this app is
served inside the worker's event loop (telemetry/asgi_server.py), so it adds no thread and no process.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from telemetry import metrics
from telemetry.runtime import scrape


def metrics_app(sdk_url: str | None, healthy: Callable[[], bool] = lambda: True) -> Starlette:
    async def metrics_endpoint(request: Request) -> Response:
        return Response(await scrape(sdk_url), media_type=metrics.CONTENT_TYPE)

    async def healthz(request: Request) -> JSONResponse:
        ok = healthy()
        return JSONResponse({"status": "ok" if ok else "failing"}, status_code=200 if ok else 503)

    return Starlette(routes=[Route("/metrics", metrics_endpoint), Route("/healthz", healthz)])
