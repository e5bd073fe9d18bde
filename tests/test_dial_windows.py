"""Dial windows (issue 15): when a customer may be called, through the API, the workflow's state and the
console; and a business-hours deadline that comes before the customer may first be called moves to the
end of that first window, with an event the SLA report counts. Time-skipping server, PostgreSQL; the API
reads its clock from `api.callback_service.now`, which these tests set to the server's clock."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from api import callback_service
from models.callbacks import Complete, Priority, callback_workflow_id
from store import callback_queries
from tests.api_fixtures import ApiEnv, running_api
from tests.calendar_fixtures import LISBON, Sessions, at, close_to, next_day, skip_to
from tests.callback_harness import event_rows, new_callback, running_worker
from tests.console_fixtures import http_sign_in
from tests.factories import add_staff, make_tenant, set_callback_policy

PORTUGUESE_MOBILE = "+351 912 345 678"  # its region spans the Azores and Lisbon; the branch is in Berlin


@pytest.fixture
async def api(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> AsyncIterator[ApiEnv]:
    async with running_api(time_skipping_env.client, sessions, task_queue) as env:
        yield env


async def test_a_portuguese_customer_at_half_past_seven_lisbon_time_is_callable_from_eight(
    api: ApiEnv,
    time_skipping_env: WorkflowEnvironment,
    sessions: Sessions,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = time_skipping_env
    tenant = await make_tenant(sessions)
    await add_staff(sessions, tenant)
    day = next_day(await env.get_current_time(), lambda _: True)
    clock = [at(day, 7, 30, LISBON)]
    monkeypatch.setattr(callback_service, "now", lambda: clock[0])
    await skip_to(env, clock[0])
    service = api.http(await api.key("service", tenant))

    created = await service.post(
        "/v1/callbacks",
        json={"branch_id": tenant.branch_ids[0], "customer_name": "Rui", "phone_number": PORTUGUESE_MOBILE},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    path = f"/v1/callbacks/{body['id']}"
    for shown in (body, (await service.get(path)).json()):
        assert shown["callable_now"] is False
        assert datetime.fromisoformat(shown["next_callable_at"]) == at(day, 8, 0, LISBON)
        assert shown["dial_window"] == {
            "time_zone": "Europe/Lisbon",
            "start": "08:00:00",
            "end": "20:00:00",
            "not_before": None,
            "not_after": None,
        }
        assert shown["sla_clock"] == "calendar"

    async def listed(callable_now: bool) -> list[str]:
        found = await service.get("/v1/callbacks", params={"callable_now": str(callable_now).lower()})
        assert found.status_code == 200, found.text
        return [item["id"] for item in found.json()["items"]]

    assert (await listed(False), await listed(True)) == ([body["id"]], [])
    state = await api.callbacks.state(callback_workflow_id(body["company_id"], uuid.UUID(body["id"])))
    assert state is not None
    assert state.dial_window is not None
    assert (state.callable_now, state.next_callable_at) == (False, at(day, 8, 0, LISBON))

    clock[0] = at(day, 8, 0, LISBON) + timedelta(seconds=30)
    await skip_to(env, clock[0])
    now_callable = (await service.get(path)).json()
    assert now_callable["callable_now"] is True
    assert datetime.fromisoformat(now_callable["next_callable_at"]) == clock[0]
    assert (await listed(False), await listed(True)) == ([], [body["id"]])


async def test_a_business_hours_deadline_before_the_first_dial_window_moves_to_its_end_and_is_reported(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    env = time_skipping_env
    tenant = await make_tenant(sessions)  # its branches have no opening hours: always open
    await add_staff(sessions, tenant)
    await set_callback_policy(sessions, tenant, {"sla_clock": "business_hours"})
    day = next_day(await env.get_current_time(), lambda _: True)
    tomorrow = day + timedelta(days=1)
    await skip_to(env, at(day, 23, 0, LISBON))
    async with running_worker(env.client, sessions, task_queue) as client:
        request = new_callback(tenant, phone_number=PORTUGUESE_MOBILE, priority=Priority.URGENT)
        state = (await client.create(request)).state
        # Two hours would end at 01:00, when nobody may call a customer in Lisbon: the first window
        # (08:00–20:00) closes the deadline instead.
        assert state.expires_at == at(tomorrow, 20, 0, LISBON)
        events = await event_rows(sessions, state.id)
        await skip_to(env, at(tomorrow, 10, 0, LISBON))
        await client.act(state.workflow_id, Complete(notes="called at ten"))

    moved = [e for e in events if e.type == "callback.deadline_moved"]
    assert len(moved) == 1
    assert moved[0].payload["reason"] == "dial_window"
    assert close_to(datetime.fromisoformat(moved[0].payload["sla_deadline"]), at(tomorrow, 1, 0, LISBON))
    assert datetime.fromisoformat(moved[0].payload["expires_at"]) == at(tomorrow, 20, 0, LISBON)
    assert datetime.fromisoformat(moved[0].payload["next_callable_at"]) == at(tomorrow, 8, 0, LISBON)
    async with sessions() as session:
        summary = await callback_queries.summary(session, tenant.company_id, now=at(tomorrow, 11, 0, LISBON))
    assert summary["sla_by_clock"]["business_hours"] == {
        "completed": 1,
        "completed_on_time": 1,
        "sla_compliance_rate": 1.0,
        "deadlines_moved": 1,
    }
    assert summary["sla_by_clock"]["calendar"]["completed"] == 0


async def test_the_console_shows_the_dial_window_and_filters_the_queue_on_callable_now(
    api: ApiEnv, time_skipping_env: WorkflowEnvironment, sessions: Sessions
) -> None:
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant)
    service = api.http(await api.key("service", tenant))
    later = (await time_skipping_env.get_current_time()) + timedelta(days=2)
    window = {"start": later.isoformat(), "end": (later + timedelta(hours=3)).isoformat()}
    body = {
        "branch_id": tenant.branch_ids[0],
        "customer_name": "Later Larissa",
        "phone_number": "+49 30 1234567",
    }
    waiting = await service.post("/v1/callbacks", json={**body, "preferred_time_window": window})
    assert waiting.status_code == 201, waiting.text
    assert waiting.json()["callable_now"] is False
    assert datetime.fromisoformat(waiting.json()["next_callable_at"]) >= later

    browser = api.http()
    await http_sign_in(browser, await api.key("staff", tenant, staff_id=staff))
    not_yet = await browser.get("/console/queue", params={"callable": "no"})
    assert "Later Larissa" in not_yet.text
    assert "not-callable" in not_yet.text
    callable_now = await browser.get("/console/queue", params={"callable": "yes"})
    assert "Later Larissa" not in callable_now.text
    detail = await browser.get(f"/console/callbacks/{waiting.json()['id']}")
    assert 'id="cb-callable" data-callable="no"' in detail.text
    assert 'data-value="calendar"' in detail.text
    assert (await browser.get("/console/dashboard")).status_code == 200
