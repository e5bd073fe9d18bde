"""The Temporal SDK's own metrics, exported by its Rust core and merged into our `/metrics`.

The core serves Prometheus text on an address of its own; we bind it to a free loopback port and append
its scrape to ours, so every process has one `/metrics` to scrape and the SDK's metric names stay exactly
those of Temporal's documentation and dashboards.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

import httpx
from opentelemetry.instrumentation.utils import suppress_http_instrumentation
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from telemetry import metrics

# The SDK's metrics that the Grafana dashboard and the alert rules read (deploy/grafana, deploy/prometheus),
# by family name (histograms add _bucket, _sum and _count). A worker exports each of them
# (tests/test_observability.py); the dashboard reads no other SDK metric (tests/test_dashboards.py).
SDK_METRICS: dict[str, str] = {
    "temporal_worker_task_slots_available": "gauge",
    "temporal_worker_task_slots_used": "gauge",
    "temporal_num_pollers": "gauge",
    "temporal_sticky_cache_size": "gauge",
    "temporal_workflow_task_schedule_to_start_latency": "histogram",
    "temporal_activity_schedule_to_start_latency": "histogram",
    "temporal_workflow_task_execution_latency": "histogram",
}


@dataclass(frozen=True)
class SdkMetrics:
    runtime: Runtime
    url: str


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def sdk_metrics(host: str = "127.0.0.1", port: int | None = None) -> SdkMetrics:
    """A Temporal runtime whose metrics are served on `host:port` (a free port when None); pass
    `.runtime` to `Client.connect` before any worker or client of this process is created."""
    port = port or free_port(host)
    runtime = Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=f"{host}:{port}", durations_as_seconds=True)
        )
    )
    return SdkMetrics(runtime=runtime, url=f"http://{host}:{port}/metrics")


async def scrape(sdk_url: str | None) -> bytes:
    """Our registry followed by the SDK's metrics. An unreachable SDK exporter costs only its part."""
    ours = metrics.render()
    if sdk_url is None:
        return ours
    try:
        # A scrape every few seconds is no request worth a trace (telemetry/tracing.py).
        with suppress_http_instrumentation():
            # Plain HTTP on loopback: without `verify=False` every scrape would build a TLS context with
            # the CA bundle (tens of milliseconds of the worker's event loop, seen in a py-spy profile).
            async with httpx.AsyncClient(timeout=5.0, verify=False) as http:
                response = await http.get(sdk_url)
                response.raise_for_status()
    except httpx.HTTPError as exc:
        return ours + f"# Temporal SDK metrics unavailable: {type(exc).__name__}\n".encode()
    return ours + response.content
