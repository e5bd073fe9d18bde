"""Tracing as ops see it (telemetry/tracing.py): one API create through the composition root is one trace
— the HTTP request, the Update-With-Start, the workflow task, the local activities with their SQL, the
slot-suggestion activity and its Cal.com call — the JSON log lines written inside it carry its trace id,
and no span holds personal data (search strings in URLs included)."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Iterator

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import update
from sqlalchemy.engine import URL
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from temporalio.testing import WorkflowEnvironment

from activities import names
from config import Settings
from devstack.calcom_fake import FakeCalcom, serve_fake
from models.tables import Service
from store import api_keys
from store.db import transaction
from telemetry.asgi_server import serve_asgi
from telemetry.private_spans import clean_attributes, without_query_values
from telemetry.tracing import Tracing, otlp_traces_endpoint, tracing_from_settings
from tests.api_fixtures import Sessions
from tests.conftest import render
from tests.factories import make_tenant
from tests.privacy_fixtures import E164, EMAIL, NAME, NATIONAL, PHONE, SECRETS
from tests.test_observability import captured_json_lines
from wiring import api_deps, open_services
from wiring.web import create_app
from worker import worker_for

DEMO_EVENT_TYPE = 1001  # the fake's weekday calendar (devstack/calcom_fake)


def hex_id(span: ReadableSpan) -> str:
    assert span.context is not None
    return format(span.context.trace_id, "032x")


def ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> Iterator[ReadableSpan]:
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        yield span


def texts(span: ReadableSpan) -> list[str]:
    """Every string a span carries to the backend."""
    found = [span.name, span.status.description or ""]
    for attributes in [span.attributes, *(event.attributes for event in span.events)]:
        for value in (attributes or {}).values():
            found.extend(str(item) for item in (value if isinstance(value, tuple) else (value,)))
    return found


async def test_one_create_is_one_trace_from_the_request_to_the_calcom_call(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, database_url: URL, task_queue: str
) -> None:
    tenant = await make_tenant(sessions, staff=1)
    async with transaction(sessions) as session:
        bookable = update(Service).where(Service.id == tenant.service_ids[0])
        await session.execute(bookable.values(calcom_event_type_id=DEMO_EVENT_TYPE))
        key = (
            await api_keys.create_key(session, name="ops", role="admin", company_id=tenant.company_id)
        ).secret
    exporter = InMemorySpanExporter()
    tracing = Tracing.exporting_to(exporter, "callbacks-test", batch=False)
    tracing.instrument_httpx()
    try:
        async with serve_fake(FakeCalcom()) as calcom_url:
            settings = Settings(task_queue=task_queue, calcom_base_url=calcom_url, calcom_api_key="cal_test")
            app = functools.partial(create_app, settings, tracing=tracing)
            async with (
                open_services(
                    settings,
                    database_url=render(database_url),
                    temporal=time_skipping_env.client,
                    tracing=tracing,
                ) as services,
                worker_for(services),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app(api_deps(services))),
                    base_url="http://api.test",
                    headers={"Authorization": f"Bearer {key}"},
                ) as http,
            ):
                with captured_json_lines() as lines:
                    created = await http.post(
                        "/v1/callbacks",
                        json={
                            "branch_id": tenant.branch_ids[0],
                            "service_id": tenant.service_ids[0],
                            "customer_name": NAME,
                            "phone_number": PHONE,
                            "email": EMAIL,
                        },
                    )
                    assert created.status_code == 201, created.text
                    path = f"/v1/callbacks/{created.json()['id']}"
                    for _ in range(200):  # bounded: the slot lookup runs right after creation
                        if (await http.get(path)).json()["suggested_slots"]:
                            break
                        await asyncio.sleep(0.05)
                    assert (await http.get(path)).json()["suggested_slots"], "no slots suggested"
                # Staff search by name and number: the query string must not reach a span.
                for query in (NAME.split()[1], PHONE, NATIONAL):
                    assert (await http.get("/v1/callbacks", params={"q": query})).status_code == 200
    finally:
        tracing.shutdown()

    spans = list(exporter.get_finished_spans())
    roots = [s for s in spans if s.name == "POST /v1/callbacks" and s.kind == SpanKind.SERVER]
    assert len(roots) == 1, [s.name for s in spans]
    root = roots[0]
    assert root.parent is None
    trace = [s for s in spans if hex_id(s) == hex_id(root)]
    by_id = {s.context.span_id: s for s in trace if s.context is not None}
    # One trace: every span of it descends from the request.
    for span in trace:
        assert span is root or root in ancestors(span, by_id), f"{span.name} is cut off from the request"
    named = {s.name: s for s in trace}
    for expected in (
        "StartWorkflow:CallbackWorkflow",
        "RunWorkflow:CallbackWorkflow",
        f"StartActivity:{names.PERSIST_TRANSITION}",
        f"RunActivity:{names.PERSIST_TRANSITION}",
        f"RunActivity:{names.CALCOM_FIND_SLOTS}",
    ):
        assert expected in named, f"no {expected} span in {sorted(named)}"
    # The API prepared and wrote the callback before starting it (starter/opening.py): no prepare step.
    assert f"StartActivity:{names.PREPARE_CALLBACK}" not in named
    # Temporal's spans are nowhere else: the create made no second trace. (The step's notification runs are
    # started by the outbox dispatcher of the worker, after the write committed: a trace of their own.)
    dispatched = {hex_id(s) for s in spans if s.name == "StartWorkflow:NotifyEventWorkflow"}
    elsewhere = [s.name for s in spans if hex_id(s) not in {hex_id(root), *dispatched} and ":" in s.name]
    assert not [name for name in elsewhere if "CallbackWorkflow" in name or "Activity:" in name], elsewhere
    # The Cal.com call, inside the slot-suggestion activity.
    calcom_calls = [
        s
        for s in trace
        if s.kind == SpanKind.CLIENT
        and str((s.attributes or {}).get("url.full", (s.attributes or {}).get("http.url", ""))).startswith(
            calcom_url
        )
    ]
    assert calcom_calls, "no span of the Cal.com request"
    assert named[f"RunActivity:{names.CALCOM_FIND_SLOTS}"] in ancestors(calcom_calls[0], by_id)
    # SQL: the API's own and the local activities', with placeholders and without the values.
    statements = [s for s in trace if (s.attributes or {}).get("db.system") == "postgresql"]
    assert any(named[f"RunActivity:{names.PERSIST_TRANSITION}"] in ancestors(s, by_id) for s in statements)
    temporal = ("Run", "Start", "Handle")
    assert any(all(not a.name.startswith(temporal) for a in ancestors(s, by_id)) for s in statements), (
        "no SQL span of the API itself"
    )
    inserts = [
        str((s.attributes or {}).get("db.statement", ""))
        for s in statements
        if "INSERT INTO callback_requests" in str((s.attributes or {}).get("db.statement", ""))
    ]
    assert inserts, "the callback's INSERT was not traced"
    assert "$1" in inserts[0]
    # The first step is the API's own write (activities/opening.py); the slot suggestion, the run's.
    first, *later = [s for s in statements if "INSERT INTO callback_requests" in str(s.attributes)]
    assert all(not a.name.startswith(temporal) for a in ancestors(first, by_id))
    assert later
    assert named[f"RunActivity:{names.PERSIST_TRANSITION}"] in ancestors(later[0], by_id)

    # The log lines written inside the trace carry its id: the API's access line and the worker's.
    entries = [json.loads(line) for line in lines]
    traced = [entry for entry in entries if entry.get("trace_id") == hex_id(root)]
    assert any(entry.get("path") == "/v1/callbacks" and entry.get("method") == "POST" for entry in traced)
    assert any(entry.get("activity_type") == names.PERSIST_TRANSITION for entry in traced)
    assert all(len(entry["span_id"]) == 16 for entry in traced)

    # No span holds personal data: not the body, not the search strings, not a database value.
    searches = [s for s in spans if s.name == "GET /v1/callbacks"]
    assert len(searches) == 3
    for span in spans:
        text = " ".join(texts(span))
        leaked = [secret for secret in (*SECRETS, E164, NATIONAL[-7:], "Vogelsang") if secret in text]
        assert not leaked, f"{leaked} in span {span.name}: {text}"
    assert any("q=…" in " ".join(texts(span)) for span in searches)


def test_urls_lose_their_query_values_and_the_client_address_is_dropped() -> None:
    assert without_query_values("http://api/v1/callbacks?q=Vogelsang&page=2") == (
        "http://api/v1/callbacks?q=…&page=…"
    )
    assert without_query_values("http://api/v1/callbacks") == "http://api/v1/callbacks"
    cleaned = clean_attributes(
        {
            "url.query": "q=%2B49+151+23456789",
            "http.target": "/v1/customers?q=henriette",
            "client.address": "203.0.113.9",
            "exception.message": f"refused {EMAIL} at {PHONE}",
            "db.statement": "SELECT 1 WHERE id = $1",
            "http.status_code": 200,
        }
    )
    assert cleaned == {
        "url.query": "q=…",
        "http.target": "/v1/customers?q=…",
        "exception.message": "refused <email> at +49…89",
        "db.statement": "SELECT 1 WHERE id = $1",
        "http.status_code": 200,
    }


async def test_with_an_endpoint_spans_go_out_by_otlp_over_http_cleaned() -> None:
    """The real exporter against a loopback OTLP receiver: what leaves the process is what PrivateSpans made
    of the span."""
    received: list[ExportTraceServiceRequest] = []

    async def traces(request: Request) -> Response:
        received.append(ExportTraceServiceRequest.FromString(await request.body()))
        return Response(b"", media_type="application/x-protobuf")

    receiver = Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])])
    async with serve_asgi(receiver) as url:
        tracing = tracing_from_settings(Settings(otel_exporter_otlp_endpoint=url), "callbacks-api")
        assert tracing.provider is not None
        with tracing.provider.get_tracer("test").start_as_current_span(
            "GET /v1/callbacks", attributes={"http.url": f"http://api/v1/callbacks?q={NATIONAL}"}
        ):
            pass
        await asyncio.to_thread(tracing.shutdown)  # flushes the batch; the receiver answers meanwhile
    spans = [
        span
        for request in received
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    assert [span.name for span in spans] == ["GET /v1/callbacks"]
    attributes = {item.key: item.value.string_value for item in spans[0].attributes}
    assert attributes == {"http.url": "http://api/v1/callbacks?q=…"}
    resource = received[0].resource_spans[0].resource
    service = {item.key: item.value.string_value for item in resource.attributes}
    assert service["service.name"] == "callbacks-api"


def test_tracing_is_off_without_an_endpoint_and_follows_the_otlp_rules_with_one() -> None:
    off = Settings(otel_exporter_otlp_endpoint=None, otel_exporter_otlp_traces_endpoint=None)
    assert otlp_traces_endpoint(off) is None
    assert otlp_traces_endpoint(Settings(otel_exporter_otlp_endpoint=" ")) is None
    tracing = tracing_from_settings(off, "callbacks-api")
    assert not tracing.enabled
    assert tracing.client_interceptors() == []
    base = Settings(otel_exporter_otlp_endpoint="http://collector:4318/")
    assert otlp_traces_endpoint(base) == "http://collector:4318/v1/traces"
    full = Settings(
        otel_exporter_otlp_endpoint="http://collector:4318",
        otel_exporter_otlp_traces_endpoint="http://tempo:4318/v1/traces",
    )
    assert otlp_traces_endpoint(full) == "http://tempo:4318/v1/traces"
    on = tracing_from_settings(base, "callbacks-api")
    try:
        assert on.enabled
        assert len(on.client_interceptors()) == 1
    finally:
        on.shutdown()
