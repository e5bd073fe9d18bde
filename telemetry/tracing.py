"""Distributed tracing with OpenTelemetry: one trace from an API request through the Temporal
Update-With-Start, the workflow task and its (local) activities to the SQL statements and the Cal.com call.

Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set (config/settings.py): then no tracer provider exists,
nothing is instrumented, and the only cost left is the log formatter asking for the current span (an
invalid one). On, spans are cleaned of personal data (telemetry/private_spans.py) and sent in batches by
OTLP over HTTP; the JSON log lines written inside a span carry its trace and span id (telemetry/logs.py).

The composition root (wiring/, worker.py, the dev stack) sets it up once per process (`process_tracing`)
and hands the `Tracing` to what it builds:
- the Temporal client gets the SDK's `TracingInterceptor`, and the worker inherits it from the client:
  client calls (StartUpdateWithStartWorkflow, …), workflow tasks (RunWorkflow, HandleUpdate, StartActivity)
  and activities, local ones included (RunActivity);
- the FastAPI app (the staff console with it), except health checks and scrapes;
- the SQLAlchemy engine: one span per statement, with placeholders, never the bound values;
- httpx, once per process: every client (Cal.com, webhooks, the SMS gateway).
"""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, Interceptor
from temporalio.contrib.opentelemetry import TracingInterceptor

from config import Settings
from telemetry.private_spans import PrivateSpans

# Asked every few seconds by health checks and scrapers: traces of these would drown the real ones.
UNTRACED_PATHS = "/healthz,/readyz,/metrics"
TRACER = "callbacks"


class Tracing:
    """The tracing of one process: `provider` None = off (every method does nothing)."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self.provider = provider
        self._httpx: HTTPXClientInstrumentor | None = None

    @classmethod
    def exporting_to(cls, exporter: SpanExporter, service: str, *, batch: bool = True) -> Tracing:
        """Spans to `exporter` (cleaned of personal data first); `batch=False` exports each span as it
        ends (tests)."""
        # A batching provider flushes what it holds when the process exits.
        provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}), shutdown_on_exit=batch)
        private = PrivateSpans(exporter)
        provider.add_span_processor(BatchSpanProcessor(private) if batch else SimpleSpanProcessor(private))
        return cls(provider)

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    def client_interceptors(self) -> list[Interceptor]:
        """For `Client.connect`: the SDK's interceptor, which the worker of the client uses too."""
        if self.provider is None:
            return []
        return [TracingInterceptor(self.provider.get_tracer(TRACER))]

    def traced(self, client: Client) -> Client:
        """`client` with the tracing interceptor (for a client built elsewhere, e.g. by a test); itself when
        tracing is off or the client traces already."""
        if self.provider is None:
            return client
        config = client.config()
        if any(isinstance(i, TracingInterceptor) for i in config["interceptors"]):
            return client
        config["interceptors"] = [*config["interceptors"], *self.client_interceptors()]
        return Client(**config)

    def instrument_app(self, app: FastAPI) -> None:
        if self.provider is not None:
            FastAPIInstrumentor.instrument_app(
                app,
                tracer_provider=self.provider,
                excluded_urls=UNTRACED_PATHS,
                # One span per request; ASGI's per-message receive/send spans only add noise.
                exclude_spans=["receive", "send"],
            )

    def instrument_engine(self, engine: AsyncEngine) -> None:
        """A span per statement of this engine (its event listeners: no global patching)."""
        if self.provider is not None:
            connections = NoOpMeterProvider().get_meter(TRACER).create_up_down_counter("db.connections")
            EngineTracer(self.provider.get_tracer(TRACER), engine.sync_engine, connections)  # type: ignore[no-untyped-call]

    def instrument_httpx(self) -> None:
        """Every httpx client of the process (httpx's transports are patched: process-wide)."""
        if self.provider is not None and self._httpx is None:
            self._httpx = HTTPXClientInstrumentor()
            self._httpx.instrument(tracer_provider=self.provider)

    def shutdown(self) -> None:
        """Export what is left and undo the process-wide instrumentation."""
        if self._httpx is not None:
            self._httpx.uninstrument()
            self._httpx = None
        if self.provider is not None:
            self.provider.shutdown()


def otlp_traces_endpoint(settings: Settings) -> str | None:
    """Where spans go: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as is, else OTEL_EXPORTER_OTLP_ENDPOINT +
    `/v1/traces` (the OTLP exporters' rule); None (off) when neither is set or both are empty."""
    traces = (settings.otel_exporter_otlp_traces_endpoint or "").strip()
    if traces:
        return traces
    base = (settings.otel_exporter_otlp_endpoint or "").strip()
    return f"{base.rstrip('/')}/v1/traces" if base else None


def tracing_from_settings(settings: Settings, service: str) -> Tracing:
    endpoint = otlp_traces_endpoint(settings)
    if endpoint is None:
        return Tracing()
    return Tracing.exporting_to(OTLPSpanExporter(endpoint=endpoint), settings.otel_service_name or service)


_process: Tracing | None = None


def process_tracing(settings: Settings, service: str) -> Tracing:
    """This process's tracing, set up by the first call (the composition root's) and the same after it:
    with an endpoint, the global tracer provider (for libraries that use it) and httpx instrumented."""
    global _process
    if _process is None:
        _process = tracing_from_settings(settings, service)
        if _process.provider is not None:
            trace.set_tracer_provider(_process.provider)
            _process.instrument_httpx()
    return _process
