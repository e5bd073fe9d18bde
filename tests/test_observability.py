"""Metrics and logs as ops see them: `/metrics` of a worker and of the API after a short scenario (each
metric of docs/operations.md with a sensible value, the Temporal SDK's own included), and JSON log lines
that all carry the workflow id of the callback they were written for."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from datetime import UTC, datetime, timedelta

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.deps import Deps
from api.metrics import api_metrics_app
from devstack.calcom_fake import RateLimitConfig
from devstack.temporal import binary, register_search_attributes
from models.callbacks import Priority
from starter.client import CallbackClient
from store import api_keys
from store.db import transaction
from store.policies import PolicyCache, PolicyResolver
from telemetry.asgi_server import serve_asgi
from telemetry.logs import ContextFilter, JsonFormatter
from telemetry.runtime import SDK_METRICS, sdk_metrics
from telemetry.server import metrics_app
from tests.api_fixtures import running_api
from tests.calcom_fixtures import DAILY, calcom_env
from tests.codec_fixtures import CONVERTER
from tests.factories import make_tenant
from tests.notify_fixtures import notify_tenant, outside_world
from wiring.web import create_app
from worker import build_worker

Sessions = async_sessionmaker[AsyncSession]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
DAILY_SERVICE = 1


def samples(text: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def total(found: Samples, name: str) -> float:
    return sum(v for (n, _), v in found.items() if n == name)


async def scrape(http: httpx.AsyncClient, url: str) -> tuple[str, Samples]:
    response = await http.get(url)
    assert response.status_code == 200
    return response.text, samples(response.text)


async def test_metrics_of_the_worker_and_the_api_after_a_short_scenario(
    sessions: Sessions, database_url: URL, task_queue: str
) -> None:
    sdk = sdk_metrics()
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=CONVERTER,
        test_server_existing_path=binary("temporal-test-server"),
        runtime=sdk.runtime,
    )
    async with AsyncExitStack() as stack:
        stack.push_async_callback(env.shutdown)
        await register_search_attributes(env.client)
        outside = await stack.enter_async_context(outside_world())
        people = await notify_tenant(sessions, webhook_url=outside.hook_url)
        tenant = people.tenant
        settings = outside.settings(task_queue)
        policies = PolicyResolver(sessions, PolicyCache(ttl_seconds=300))
        await policies.listen(database_url.render_as_string(hide_password=False))
        stack.push_async_callback(policies.close)
        calcom = await stack.enter_async_context(
            calcom_env(
                rate_limit=RateLimitConfig(limit=1, window_ms=500, block_ms=500, retry_after="seconds")
            )
        )
        await stack.enter_async_context(
            build_worker(env.client, settings, sessions, policies=policies, calcom=calcom.client)
        )
        worker_url = await stack.enter_async_context(serve_asgi(metrics_app(sdk.url)))
        callbacks = CallbackClient(env.client, task_queue)
        # One listening resolver for the API and the worker, as the composition root shares it.
        deps = Deps.build(
            settings, sessions, callbacks, calcom.finder, policies=policies, sdk_metrics_url=sdk.url
        )
        api = create_app(settings, deps)
        async with transaction(sessions) as session:
            key = (
                await api_keys.create_key(session, name="ops", role="admin", company_id=tenant.company_id)
            ).secret
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=30))
        client = await stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=api),
                base_url="http://api.test",
                headers={"Authorization": f"Bearer {key}"},
            )
        )
        _, worker_before = await scrape(http, f"{worker_url}/metrics")

        # The scenario: a normal callback worked to completion, an urgent one left to expire.
        ids = {}
        for priority in (Priority.NORMAL, Priority.URGENT):
            created = await client.post(
                "/v1/callbacks",
                json={
                    "branch_id": tenant.branch_ids[0],
                    "customer_name": "Erika Mustermann",
                    "phone_number": "+49 30 1234567",
                    "priority": priority.value,
                },
            )
            assert created.status_code == 201, created.text
            ids[priority] = uuid.UUID(created.json()["id"])
        assert (await client.post(f"/v1/callbacks/{ids[Priority.NORMAL]}/contacted")).status_code == 200
        done = await client.post(f"/v1/callbacks/{ids[Priority.NORMAL]}/complete", json={"notes": "booked"})
        assert done.status_code == 200, done.text
        await env.sleep(timedelta(hours=15))  # urgent: escalations at 2 h, 6 h, 10 h, expiry at 14 h
        # Cal.com: the same window twice (a cache hit), then a second client that runs into the 429.
        start = datetime(2030, 3, 4, tzinfo=UTC)
        for _ in range(2):
            await calcom.finder.find_in_window(
                DAILY_SERVICE, start, start + timedelta(days=1), "Europe/Berlin"
            )
        await calcom.new_client().get_slots(
            DAILY, start + timedelta(days=2), start + timedelta(days=3), time_zone="Europe/Berlin"
        )

        worker_text, worker_after = await scrape(http, f"{worker_url}/metrics")
        # The API's metrics are on the scraper's port (api_metrics_app), not on the public API.
        assert (await client.get("/metrics")).status_code == 404
        api_metrics = await stack.enter_async_context(
            serve_asgi(api_metrics_app(sessions, deps.sdk_metrics_url))
        )
        api_text, api_after = await scrape(http, f"{api_metrics}/metrics")

    def delta(name: str, **labels: str) -> float:
        return value(worker_after, name, **labels) - value(worker_before, name, **labels)

    assert delta("callbacks_created_total", priority="normal") == 1
    assert delta("callbacks_created_total", priority="urgent") == 1
    assert delta("callbacks_completed_total", priority="normal", on_time="true") == 1
    assert delta("callbacks_expired_total", priority="urgent") == 1
    assert delta("callbacks_sla_outcomes_total", priority="normal", outcome="met") == 1
    assert delta("callbacks_sla_outcomes_total", priority="urgent", outcome="breached") == 1
    assert delta("callbacks_escalations_total", reason="sla_breach") == 3
    assert delta("callbacks_time_to_first_contact_seconds_count", priority="normal") == 1
    assert delta("callbacks_time_to_first_contact_seconds_count", priority="urgent") == 0
    assert delta("callbacks_time_to_completion_seconds_count", priority="normal") == 1
    assert delta("callbacks_policy_cache_lookups_total", result="hit") >= 1
    assert delta("callbacks_policy_cache_lookups_total", result="miss") >= 1
    assert delta("callbacks_calcom_requests_total", method="GET", status="200") >= 2
    assert delta("callbacks_calcom_requests_total", method="GET", status="429") >= 1
    assert delta("callbacks_calcom_rate_limited_total") >= 1
    assert total(worker_after, "callbacks_calcom_waits_total") > total(
        worker_before, "callbacks_calcom_waits_total"
    )
    assert delta("callbacks_calcom_cache_lookups_total", result="hit") == 1
    assert delta("callbacks_notification_deliveries_total", channel="email", outcome="sent") >= 1
    assert delta("callbacks_notification_deliveries_total", channel="webhook", outcome="sent") >= 1
    # The Temporal SDK's own metrics ride along on the same endpoint, those the dashboard reads included.
    assert "temporal_request" in worker_text
    families = {family.name: family.type for family in text_string_to_metric_families(worker_text)}
    assert {name: families.get(name) for name in SDK_METRICS} == SDK_METRICS
    # Cal.com's budget as the limiter saw it (a limit of 1 per window, used up by the 429).
    assert value(worker_after, "callbacks_calcom_budget_limit") == 1
    assert value(worker_after, "callbacks_calcom_budget_remaining") == 0
    assert "temporal_workflow_completed" in worker_text or "temporal_workflow_task_queue_poll" in worker_text
    # The API: read-model gauges (this database only has the two closed callbacks) and request counts.
    assert value(api_after, "callbacks_sla_compliance_ratio", window="24h") == 0.5
    branch = str(tenant.branch_ids[0])
    assert value(api_after, "callbacks_sla_compliance_by_branch_ratio", branch_id=branch, window="24h") == 0.5
    assert value(api_after, "callbacks_sla_compliance_by_branch_ratio", branch_id=branch, window="30d") == 0.5
    # A branch that closed nothing has no series (rather than a perfect 1.0).
    idle = str(tenant.branch_ids[1])
    assert not [labels for name, labels in api_after if ("branch_id", idle) in labels]
    assert (
        sum(
            value(api_after, "callbacks_open", status=s, priority=p)
            for s in ("pending", "assigned", "contacted")
            for p in ("urgent", "high", "normal")
        )
        == 0
    )
    assert (
        value(api_after, "callbacks_api_requests_total", method="POST", route="/v1/callbacks", status="201")
        >= 2
    )
    assert "temporal_request" in api_text


@contextmanager
def captured_json_lines() -> Iterator[list[str]]:
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect()
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    quiet = logging.getLogger("httpx")  # the test's own HTTP client, not the engine
    quiet_level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        quiet.setLevel(quiet_level)


async def test_every_log_line_about_one_callback_carries_its_workflow_id(
    sessions: Sessions, time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    tenant = await make_tenant(sessions, staff=1)
    async with running_api(time_skipping_env.client, sessions, task_queue) as api:
        key = await api.key("admin", tenant)
        client = api.http(key)
        with captured_json_lines() as lines:
            created = await client.post(
                "/v1/callbacks",
                json={
                    "branch_id": tenant.branch_ids[0],
                    "customer_name": "Erika",
                    "phone_number": "+49 30 1234567",
                },
            )
            assert created.status_code == 201, created.text
            callback_id = created.json()["id"]
            assert (await client.post(f"/v1/callbacks/{callback_id}/contacted")).status_code == 200
            assert (
                await client.post(f"/v1/callbacks/{callback_id}/complete", json={"notes": "ok"})
            ).status_code == 200
    entries = [json.loads(line) for line in lines]
    assert len(entries) >= 6, entries  # 3 transitions written by activities + 3 API access lines
    for entry in entries:
        assert callback_id in entry.get("workflow_id", ""), entry
        assert entry.get("company_id") == tenant.company_id, entry
    api_lines = [e for e in entries if e["logger"] == "callbacks.api"]
    assert [e["status"] for e in api_lines] == [201, 200, 200]
    assert all(e["request_id"] for e in api_lines)
    assert any(e.get("activity_type") == "persist_transition" for e in entries)
