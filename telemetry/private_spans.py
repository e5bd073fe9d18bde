"""No personal data leaves the process in a span: every span is cleaned on its way to the exporter.

What instrumentation records that could carry personal data, and what happens to it here:
- URLs with their query string (`url.full`, `url.query`, `http.url`, `http.target`): our API's search
  parameters (`GET /v1/callbacks?q=…`, the directory's `q`) hold parts of names and phone numbers, and a
  webhook URL may hold a token. The query's values are replaced by `…`; the parameter names stay.
- the client's address (`client.address`, `net.peer.ip`, …): dropped.
- exception messages and stack traces (span events, status descriptions): redacted like log lines
  (`telemetry.logs.redact`: phone numbers masked, email addresses replaced), status descriptions cut to
  their first line (a database error's DETAIL line quotes the row).
- every other string attribute: redacted as well, so a value that slipped in anyway is masked.
SQL statements are recorded with their placeholders (`$1`): SQLAlchemy's instrumentation never records
bound values, and our engines hide them from error texts too (store/db.py). Request and response bodies
and headers are never recorded (the instrumentations' defaults, left alone).
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Status
from opentelemetry.util.types import Attributes, AttributeValue

from telemetry.logs import redact

URL_KEYS = frozenset({"url.full", "http.url", "http.target"})
QUERY_KEYS = frozenset({"url.query"})
DROPPED_KEYS = frozenset(
    {"client.address", "client.port", "net.peer.ip", "net.sock.peer.addr", "http.client_ip", "net.peer.port"}
)


def without_query_values(url: str) -> str:
    """The URL with each query value replaced by `…` (the names say what was asked, not for whom)."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    return urlunsplit(parts._replace(query=masked_query(parts.query)))


def masked_query(query: str) -> str:
    return "&".join(f"{name}=…" for name, _ in parse_qsl(query.lstrip("?"), keep_blank_values=True))


def _clean_value(key: str, value: AttributeValue) -> AttributeValue:
    if isinstance(value, str):
        if key in URL_KEYS:
            value = without_query_values(value)
        elif key in QUERY_KEYS:
            value = masked_query(value)
        return redact(value)
    if isinstance(value, Sequence) and value and all(isinstance(item, str) for item in value):
        return tuple(redact(str(item)) for item in value)
    return value


def clean_attributes(attributes: Attributes) -> dict[str, AttributeValue]:
    return {
        key: _clean_value(key, value) for key, value in (attributes or {}).items() if key not in DROPPED_KEYS
    }


def clean_span(span: ReadableSpan) -> ReadableSpan:
    status = span.status
    if status.description:
        status = Status(status.status_code, redact(status.description.splitlines()[0]))
    return ReadableSpan(
        name=redact(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=clean_attributes(span.attributes),
        events=[
            Event(event.name, clean_attributes(event.attributes), event.timestamp) for event in span.events
        ],
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class PrivateSpans(SpanExporter):
    """Wraps the real exporter (OTLP, or the in-memory one of the tests): it sees only cleaned spans."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.exporter.export([clean_span(span) for span in spans])

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.exporter.force_flush(timeout_millis)
