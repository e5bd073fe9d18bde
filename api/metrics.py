"""The API's part of observability: one JSON log line and two metrics per request, and the gauges that
describe the whole queue, computed from the read model when Prometheus scrapes.

The gauges come from PostgreSQL rather than from counters because they are facts about all callbacks,
not about this process: every API replica reports the same numbers, whichever of them is scraped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.callbacks import Priority, callback_base_id
from models.stuck import StuckStep
from store import callback_gauges
from telemetry import logs, metrics
from telemetry.server import metrics_app

log = logging.getLogger("callbacks.api")

SLA_WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
# The method label takes these values only: a client choosing the method must not choose the label set.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class ReadModelGauges:
    """Sets the queue gauges from the read model; scrapes within `min_interval` reuse the last values,
    so several Prometheus servers cost no more than one."""

    def __init__(self, min_interval: float = 5.0) -> None:
        self.min_interval = min_interval
        self._last = float("-inf")
        self._lock = asyncio.Lock()

    async def refresh(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        async with self._lock:
            if time.monotonic() - self._last < self.min_interval:
                return
            async with sessions() as session:
                await self._compute(session, datetime.now(UTC))
            self._last = time.monotonic()

    async def _compute(self, session: AsyncSession, now: datetime) -> None:
        counts = await callback_gauges.open_counts(session, now)
        overdue_by_priority = dict.fromkeys((p.value for p in Priority), 0)
        for status in callback_gauges.OPEN:
            for priority in Priority:
                count, overdue = counts.get((status, priority.value), (0, 0))
                metrics.OPEN_CALLBACKS.labels(status, priority.value).set(count)
                overdue_by_priority[priority.value] += overdue
        for priority_name, overdue in overdue_by_priority.items():
            metrics.OVERDUE_CALLBACKS.labels(priority_name).set(overdue)
        # Closed in the window: completed (on time or late) or expired. An empty window reports 1.0:
        # nothing was missed.
        closed = await callback_gauges.closed_since(session, now - max(SLA_WINDOWS.values()))
        for name, window in SLA_WINDOWS.items():
            since = now - window
            in_window = [met for at, met in closed if at is not None and at >= since]
            met = sum(1 for value in in_window if value)
            metrics.SLA_COMPLIANCE.labels(name).set(met / len(in_window) if in_window else 1.0)
        # Per branch: only branches that closed callbacks in the window have a series (no 1.0 for a branch
        # that did nothing); branches that stopped closing any lose theirs.
        windows = {name: now - window for name, window in SLA_WINDOWS.items()}
        by_branch = await callback_gauges.compliance_by_branch(session, windows)
        metrics.SLA_COMPLIANCE_BY_BRANCH.clear()
        for (branch_id, name), (closed_count, met_count) in by_branch.items():
            metrics.SLA_COMPLIANCE_BY_BRANCH.labels(str(branch_id), name).set(met_count / closed_count)
        stuck = await callback_gauges.stuck_counts(session)
        for step in StuckStep:
            for gave_up, state in ((False, "retrying"), (True, "gave_up")):
                metrics.STUCK_WORKFLOWS.labels(step.value, state).set(stuck.get((step.value, gave_up), 0))


read_model_gauges = ReadModelGauges()


def api_metrics_app(sessions: async_sessionmaker[AsyncSession], sdk_metrics_url: str | None) -> Starlette:
    """`/metrics` (and `/healthz`) of the API process for the scraper, on CALLBACKS_API_METRICS_PORT: the
    read-model gauges (refreshed now, at most every few seconds), this process's counters and the
    Temporal SDK's metrics. Unauthenticated, so it is not on the public API port."""
    return metrics_app(sdk_metrics_url, before_scrape=lambda: read_model_gauges.refresh(sessions))


def method_label(method: str) -> str:
    """The method as a metric label: one of the HTTP methods the API serves, anything else "other"."""
    return method if method in KNOWN_METHODS else "other"


class RequestLog:
    """Opens the log context of a request (so every line logged while handling it carries the request
    id, and the company and workflow id once the route knows them), then writes one access line and
    counts the request by its route template (not its path: ids would explode the label set)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex
        context = logs.open_context(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            callback_id = (scope.get("path_params") or {}).get("callback_id")
            if callback_id is not None and "workflow_id" not in context:
                with contextlib.suppress(ValueError):
                    # The route did not find the row (e.g. 404): the callback id, in its base form.
                    context["workflow_id"] = callback_base_id(uuid.UUID(str(callback_id)))
            method = str(scope.get("method", "GET"))[:16]
            if template != "/metrics":
                label = method_label(method)
                metrics.API_REQUESTS.labels(label, template, str(status)).inc()
                metrics.API_LATENCY.labels(label, template).observe(elapsed)
                log.info(
                    "%s %s %d",
                    method,
                    scope.get("path", ""),
                    status,
                    extra={
                        "method": method,
                        "path": scope.get("path", ""),
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 1),
                    },
                )
