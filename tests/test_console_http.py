"""The console's security over plain HTTP: session cookie flags, CSRF on every form, sign-in rules, and
that a revoked key's session ends at once — against the real app, PostgreSQL and Temporal."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from store import api_keys
from store.db import transaction
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


async def test_session_cookie_flags_and_csrf(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant, services=(0,))
    key = await api.key("staff", tenant, staff_id=staff)
    service = api.http(await api.key("service", tenant))
    created = await service.post(
        "/v1/callbacks",
        json={"branch_id": tenant.branch_ids[0], "customer_name": "Erika", "phone_number": "+49 30 1234567"},
    )
    assert created.status_code == 201, created.text
    callback_id = created.json()["id"]
    assert created.json()["status"] == "assigned"

    browser = api.http()
    anonymous = await browser.get("/console/queue?status=pending")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/console/login?next=%2Fconsole%2Fqueue%3Fstatus%3Dpending"

    signed = await http_sign_in(browser, key)
    assert signed["response"].status_code == 303, signed["response"].text
    session_cookie = next(c for c in signed["set_cookie"] if c.startswith("cbc_session="))
    flags = [part.strip().lower() for part in session_cookie.split(";")]
    assert "httponly" in flags
    assert "samesite=lax" in flags
    assert "path=/console" in flags
    assert key not in session_cookie  # the cookie names the key; it never carries the secret

    page = await browser.get("/console/queue")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    token = _csrf(page.text)

    no_token = await browser.post(f"/console/callbacks/{callback_id}/contacted", data={})
    assert no_token.status_code == 403
    wrong_token = await browser.post(f"/console/callbacks/{callback_id}/contacted", data={"csrf": "x" * 43})
    assert wrong_token.status_code == 403
    other_origin = await browser.post(
        f"/console/callbacks/{callback_id}/contacted",
        data={"csrf": token},
        headers={"Origin": "http://evil.example"},
    )
    assert other_origin.status_code == 403
    bulk_without = await browser.post("/console/bulk/assign", data={"ids": callback_id})
    assert bulk_without.status_code == 403
    still = await service.get(f"/v1/callbacks/{callback_id}")
    assert still.json()["status"] == "assigned"  # none of the refused posts changed anything

    with_token = await browser.post(f"/console/callbacks/{callback_id}/contacted", data={"csrf": token})
    assert with_token.status_code == 303
    assert (await service.get(f"/v1/callbacks/{callback_id}")).json()["status"] == "contacted"

    # The header form (what htmx sends) is accepted too.
    header = await browser.post(
        f"/console/callbacks/{callback_id}/attempt",
        data={"outcome": "busy"},
        headers={"X-CSRF-Token": token},
    )
    assert header.status_code == 303
    assert (await service.get(f"/v1/callbacks/{callback_id}")).json()["contact_attempts"] == 1

    # Revoking the key ends its console session at once.
    async with transaction(sessions) as session:
        prefix = key.split("_")[1]
        assert await api_keys.revoke_key(session, prefix) is not None
    after = await browser.get("/console/queue")
    assert after.status_code == 303
    assert after.headers["location"].startswith("/console/login")


async def test_sign_in_rules(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    browser = api.http(**{"Accept-Language": "en-GB,en;q=0.8"})

    without_form_token = await browser.post(
        "/console/login", data={"api_key": await api.key("admin", tenant)}
    )
    assert without_form_token.status_code == 403

    service_key = await http_sign_in(browser, await api.key("service", tenant))
    assert service_key["response"].status_code == 403
    assert "cannot sign in" in service_key["response"].text
    assert not any(c.startswith("cbc_session=") for c in service_key["set_cookie"])

    unknown = await http_sign_in(browser, "cbk_nope_nope")
    assert unknown["response"].status_code == 401

    admin = await http_sign_in(browser, await api.key("admin", tenant))
    assert admin["response"].status_code == 303
    page = await browser.get("/console/queue")
    assert page.status_code == 200
    logout_without = await browser.post("/console/logout", data={})
    assert logout_without.status_code == 403
    logout = await browser.post("/console/logout", data={"csrf": _csrf(page.text)})
    assert logout.status_code == 303
    assert (await browser.get("/console/queue")).status_code == 303

    evil_next = await browser.get("/console/lang/en?next=https://evil.example/")
    assert evil_next.headers["location"] == "/console/queue"
