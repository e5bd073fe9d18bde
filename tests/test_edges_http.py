"""The HTTP edges of issue 19 (defect 10): metric labels the client cannot choose, console input in any
characters, deactivated staff, deleted callbacks for admins only, and sign-out that ends the session on the
server — against the real app, PostgreSQL and Temporal."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import update
from temporalio.testing import WorkflowEnvironment

from models.tables import Staff
from store.db import transaction
from telemetry import metrics
from tests.api_fixtures import ApiEnv, Sessions, running_api
from tests.console_fixtures import http_sign_in
from tests.factories import add_staff, make_tenant


@pytest.fixture
async def api(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> AsyncIterator[ApiEnv]:
    async with running_api(time_skipping_env.client, sessions, task_queue) as env:
        yield env


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def _label_sets(name: str) -> list[dict[str, str]]:
    return [
        dict(sample.labels)
        for family in metrics.REGISTRY.collect()
        for sample in family.samples
        if sample.name == name
    ]


async def test_request_metrics_label_known_methods_and_route_templates(
    api: ApiEnv, sessions: Sessions
) -> None:
    tenant = await make_tenant(sessions)
    admin = api.http(await api.key("admin", tenant))
    missing = uuid.uuid4()
    for method in ("BREW", "X-" + uuid.uuid4().hex):
        response = await admin.request(method, f"/v1/callbacks/{missing}")
        assert response.status_code == 405, (method, response.text)
    assert (await admin.get(f"/v1/callbacks/{missing}")).status_code == 404

    labels = _label_sets("callbacks_api_requests_total")
    methods = {found["method"] for found in labels}
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
    routes = {found["route"] for found in labels}
    assert str(missing) not in " ".join(routes)
    assert {"method": "other", "route": "/v1/callbacks/{callback_id}", "status": "405"} in labels
    assert {"method": "GET", "route": "/v1/callbacks/{callback_id}", "status": "404"} in labels


async def test_console_answers_non_ascii_cookies_and_tokens_without_500(
    api: ApiEnv, sessions: Sessions
) -> None:
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant)
    key = await api.key("staff", tenant, staff_id=staff)
    stranger = api.http()
    # Non-ASCII cookies (sent as raw latin-1 bytes, as a browser may) are no session: sign in again.
    for cookie in (b"cbc_session=\xe4\xf6.\xfc", b"cbc_session=abc.d\xc3\xa9f"):
        page = await stranger.get("/console/queue", headers={"Cookie": cookie})
        assert page.status_code == 303, page.text
        assert page.headers["location"].startswith("/console/login")
    login = await stranger.get("/console/login")
    token = _csrf(login.text)
    refused = await stranger.post(
        "/console/login", data={"csrf": "\u00e4" + token[1:], "api_key": key, "next": "/console/queue"}
    )
    assert refused.status_code == 403

    browser = api.http()
    assert (await http_sign_in(browser, key))["response"].status_code == 303
    created = await api.http(await api.key("service", tenant)).post(
        "/v1/callbacks",
        json={"branch_id": tenant.branch_ids[0], "customer_name": "Erika", "phone_number": "+49 30 1234567"},
    )
    callback_id = created.json()["id"]
    for token in ("\u00e4" * 43, "\u2603"):
        bad = await browser.post(f"/console/callbacks/{callback_id}/contacted", data={"csrf": token})
        assert bad.status_code == 403, bad.text
        header = await browser.post(
            f"/console/callbacks/{callback_id}/contacted",
            headers={"X-CSRF-Token": "\u00e4\u00f6".encode()},
        )
        assert header.status_code == 403, header.text
    assert (await browser.get(f"/console/callbacks/{callback_id}")).status_code == 200


async def test_keys_of_deactivated_staff_open_nothing(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant)
    key = await api.key("staff", tenant, staff_id=staff)
    client = api.http(key)
    browser = api.http()
    assert (await client.get("/v1/callbacks")).status_code == 200
    assert (await http_sign_in(browser, key))["response"].status_code == 303
    assert (await browser.get("/console/queue")).status_code == 200

    # Deactivated by any means (here: straight in the database, as an import or an operator might).
    async with transaction(sessions) as session:
        await session.execute(update(Staff).where(Staff.id == staff).values(is_active=False))
    refused = await client.get("/v1/callbacks")
    assert refused.status_code == 401
    assert refused.json()["detail"] == "the API key's staff member is deactivated"
    assert (await browser.get("/console/queue")).status_code == 303
    assert (await http_sign_in(api.http(), key))["response"].status_code == 401


async def test_only_admins_read_deleted_callbacks(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant)
    admin_key = await api.key("admin", tenant)
    staff_key = await api.key("staff", tenant, staff_id=staff)
    admin, worker = api.http(admin_key), api.http(staff_key)
    service = api.http(await api.key("service", tenant))
    created = await admin.post(
        "/v1/callbacks",
        json={
            "branch_id": tenant.branch_ids[0],
            "customer_name": "Deleted Dora",
            "phone_number": "+4930123456",
        },
    )
    path = f"/v1/callbacks/{created.json()['id']}"
    assert (await admin.delete(path)).status_code == 204

    for client in (worker, service):
        listed = await client.get("/v1/callbacks", params={"include_deleted": "true"})
        assert listed.status_code == 403, listed.text
        assert "admin only" in listed.json()["detail"]
        one = await client.get(path, params={"include_deleted": "true"})
        assert one.status_code == 403
        assert (await client.get(path)).status_code == 404
        assert (await client.get("/v1/callbacks")).json()["total"] == 0
    assert (await admin.get(path, params={"include_deleted": "true"})).status_code == 200
    assert (await admin.get("/v1/callbacks", params={"include_deleted": "true"})).json()["total"] == 1

    # The console follows the same rule: staff see neither the deleted callback nor the filter for it.
    staff_browser, admin_browser = api.http(), api.http()
    await http_sign_in(staff_browser, staff_key)
    await http_sign_in(admin_browser, admin_key)
    assert (await staff_browser.get(f"/console/callbacks/{created.json()['id']}")).status_code == 404
    staff_queue = await staff_browser.get("/console/queue?trashed=only")
    assert "Deleted Dora" not in staff_queue.text
    assert 'name="trashed"' not in staff_queue.text
    admin_queue = await admin_browser.get("/console/queue?trashed=only")
    assert "Deleted Dora" in admin_queue.text
    assert (await admin_browser.get(f"/console/callbacks/{created.json()['id']}")).status_code == 200


async def test_sign_out_ends_the_session_on_the_server(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    key = await api.key("admin", tenant)
    browser = api.http()
    assert (await http_sign_in(browser, key))["response"].status_code == 303
    cookie = browser.cookies.get("cbc_session", path="/console")
    assert cookie
    # A copy of the cookie (another tab, another machine, or a thief) works while the session lives.
    copy = api.http()
    copy.cookies.set("cbc_session", cookie, path="/console")
    page = await copy.get("/console/queue")
    assert page.status_code == 200

    assert (await browser.post("/console/logout", data={"csrf": _csrf(page.text)})).status_code == 303
    after = await copy.get("/console/queue")
    assert after.status_code == 303
    assert after.headers["location"].startswith("/console/login")
    # Signing in again opens a new session; the old cookie stays dead.
    assert (await http_sign_in(browser, key))["response"].status_code == 303
    assert (await browser.get("/console/queue")).status_code == 200
    assert (await copy.get("/console/queue")).status_code == 303
