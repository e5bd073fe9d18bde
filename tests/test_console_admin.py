"""The console's admin section over plain HTTP (the real app, PostgreSQL and Temporal): resource pages for
branches, services, staff, customers and companies, with the API's checks shown next to the fields, staff
deactivation reassigning through the workflows, CSRF on every form, admins only, and tenancy."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select
from temporalio.testing import WorkflowEnvironment

from models.tables import Branch, Company, Staff
from tests.api_fixtures import ApiEnv, Sessions, running_api
from tests.console_fixtures import http_sign_in
from tests.factories import add_staff, make_tenant
from tests.test_api_callbacks import new_body
from tests.test_api_directory import wait_for


@pytest.fixture
async def api(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> AsyncIterator[ApiEnv]:
    async with running_api(time_skipping_env.client, sessions, task_queue) as env:
        yield env


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


async def signed_in(api: ApiEnv, key: str) -> tuple[httpx.AsyncClient, str]:
    browser = api.http(**{"Accept-Language": "en"})
    signed = await http_sign_in(browser, key)
    assert signed["response"].status_code == 303, signed["response"].text
    page = await browser.get("/console/queue")
    return browser, csrf_of(page.text)


async def count(sessions: Sessions, table: type) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def test_admin_pages_for_branches_services_and_customers(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions, name="Praxis")
    browser, token = await signed_in(api, await api.key("admin", tenant))

    queue = await browser.get("/console/queue")
    assert 'id="nav-admin"' in queue.text
    home = await browser.get("/console/admin")
    assert home.status_code == 303
    assert home.headers["location"] == "/console/admin/branches"
    listed = await browser.get("/console/admin/branches", params={"q": "berlin"})
    assert listed.status_code == 200
    assert "Praxis Berlin" in listed.text
    assert "Praxis Hamburg" not in listed.text
    assert 'data-total="1"' in listed.text
    assert "Companies" not in listed.text  # the companies tab is for super_admins

    form = await browser.get("/console/admin/branches/new")
    assert form.status_code == 200
    assert 'name="opening_hours"' in form.text
    before = await count(sessions, Branch)
    refused = await browser.post(
        "/console/admin/branches/new",
        data={
            "csrf": token,
            "name": "Altona",
            "time_zone": "Europe/Hamburg",
            "opening_hours": '{"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}',
            "country": "DE",
            "subdivision": "XX",
            "phone_number": "040 12",
        },
    )
    assert refused.status_code == 422
    errors = dict(re.findall(r'id="error-(\w+)">([^<]+)<', refused.text))
    assert "unknown time zone" in errors["time_zone"]
    assert "mon: 09:00–12:00 and 11:00–13:00 overlap" in errors["opening_hours"]
    assert 'value="Altona"' in refused.text  # what was typed stays
    assert await count(sessions, Branch) == before
    created = await browser.post(
        "/console/admin/branches/new",
        data={
            "csrf": token,
            "name": "Altona",
            "time_zone": "Europe/Berlin",
            "opening_hours": '{"mon": [["09:00", "12:00"], ["13:00", "17:00"]]}',
            "country": "DE",
            "subdivision": "HH",
            "phone_number": "040 3890 00",
        },
    )
    assert created.status_code == 303, created.text
    edit_url = created.headers["location"].split("?")[0]
    edit = await browser.get(created.headers["location"])
    assert "Created." in edit.text
    assert "+49403890" in edit.text
    renamed = await browser.post(
        edit_url,
        data={
            "csrf": token,
            "name": "Hamburg-Altona",
            "time_zone": "Europe/Berlin",
            "opening_hours": "",
            "country": "DE",
            "subdivision": "HH",
        },
    )
    assert renamed.status_code == 303, renamed.text
    branch_id = int(edit_url.rsplit("/", 1)[1])
    api_admin = api.http(await api.key("admin", tenant))
    stored = (await api_admin.get(f"/v1/branches/{branch_id}")).json()
    assert (stored["name"], stored["opening_hours"], stored["phone_number"]) == ("Hamburg-Altona", {}, None)

    service = await browser.post(
        "/console/admin/services/new",
        data={
            "csrf": token,
            "name": "Röntgen",
            "branch_id": str(branch_id),
            "duration_minutes": "20",
            "price": "49.90",
            "is_active": "on",
        },
    )
    assert service.status_code == 303, service.text
    service_url = service.headers["location"].split("?")[0]
    switched_off = await browser.post(
        service_url, data={"csrf": token, "name": "Röntgen", "duration_minutes": "20", "price": "49.90"}
    )
    assert switched_off.status_code == 303
    service_id = int(service_url.rsplit("/", 1)[1])
    assert (await api_admin.get(f"/v1/services/{service_id}")).json()["is_active"] is False

    bad_customer = await browser.post(
        "/console/admin/customers/new", data={"csrf": token, "name": "Erika", "phone_number": "12"}
    )
    assert bad_customer.status_code == 422
    assert "phone number" in bad_customer.text
    good = await browser.post(
        "/console/admin/customers/new",
        data={"csrf": token, "name": "Max Muster", "phone_number": "030 1234567", "locale": "en"},
    )
    assert good.status_code == 303, good.text
    customers = await browser.get("/console/admin/customers", params={"q": "1234567"})
    assert "Max Muster" in customers.text
    assert "+49301234567" in customers.text

    # No token, no change.
    assert (await browser.post(edit_url, data={"name": "Hijacked"})).status_code == 403
    assert (await api_admin.get(f"/v1/branches/{branch_id}")).json()["name"] == "Hamburg-Altona"


async def test_staff_pages_deactivate_through_the_workflows(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    anna = await add_staff(sessions, tenant, services=(0,))
    bert = await add_staff(sessions, tenant)
    api_admin = api.http(await api.key("admin", tenant))
    callback = (await api_admin.post("/v1/callbacks", json=new_body(tenant, priority="high"))).json()
    assert callback["assigned_to"] == str(anna)
    anna_key = await api.key("staff", tenant, staff_id=anna)
    anna_browser, _ = await signed_in(api, anna_key)
    assert (await anna_browser.get("/console/admin/staff")).status_code == 403
    assert 'id="nav-admin"' not in (await anna_browser.get("/console/queue")).text

    browser, token = await signed_in(api, await api.key("admin", tenant))
    page = await browser.get(f"/console/admin/staff/{anna}")
    assert page.status_code == 200
    assert 'id="admin-deactivate"' in page.text
    created = await browser.post(
        "/console/admin/staff/new",
        data={
            "csrf": token,
            "name": "Carla",
            "branch_id": str(tenant.branch_ids[0]),
            "service_ids": [str(tenant.service_ids[0]), str(tenant.service_ids[1])],
            "max_open_callbacks": "4",
            "locale": "en",
            "working_hours": '{"tue": [["10:00", "16:00"]]}',
        },
    )
    assert created.status_code == 303, created.text
    carla = created.headers["location"].split("?")[0].rsplit("/", 1)[1]
    stored = (await api_admin.get(f"/v1/staff/{carla}")).json()
    assert stored["service_ids"] == sorted(tenant.service_ids)
    assert stored["working_hours"] == {"tue": [["10:00", "16:00"]]}

    deactivated = await browser.post(f"/console/admin/staff/{anna}/deactivate", data={"csrf": token})
    assert deactivated.status_code == 303
    after = await browser.get(deactivated.headers["location"])
    assert "Deactivated" in after.text
    assert "1 open callbacks are being reassigned" in after.text
    assert 'id="admin-activate"' in after.text
    moved = await wait_for(
        api_admin, f"/v1/callbacks/{callback['id']}", lambda b: b["assigned_to"] != str(anna)
    )
    assert moved["assigned_to"] in (str(bert), carla)
    # Anna's console session ended with her deactivation.
    assert (await anna_browser.get("/console/queue")).status_code == 303
    reactivated = await browser.post(f"/console/admin/staff/{anna}/activate", data={"csrf": token})
    assert reactivated.status_code == 303
    async with sessions() as session:
        row = await session.get(Staff, anna)
        assert row is not None
        assert row.is_active is True


async def test_companies_are_for_super_admins_and_tenants_stay_apart(api: ApiEnv, sessions: Sessions) -> None:
    a = await make_tenant(sessions, name="A")
    b = await make_tenant(sessions, name="B")
    b_staff = await add_staff(sessions, b)
    admin, token = await signed_in(api, await api.key("admin", a))
    assert (await admin.get("/console/admin/companies")).status_code == 403
    for path in (
        f"/console/admin/branches/{b.branch_ids[0]}",
        f"/console/admin/services/{b.service_ids[0]}",
        f"/console/admin/staff/{b_staff}",
        f"/console/admin/customers/{b.customer_ids[0]}",
        "/console/admin/staff/not-a-uuid",
    ):
        assert (await admin.get(path)).status_code == 404, path
    assert (
        await admin.post(f"/console/admin/staff/{b_staff}/deactivate", data={"csrf": token})
    ).status_code == 404
    assert (
        await admin.post(f"/console/admin/branches/{b.branch_ids[0]}", data={"csrf": token, "name": "Mine"})
    ).status_code == 404
    listed = await admin.get("/console/admin/customers")
    assert listed.text.count("Erika Mustermann") == 1  # A's customer only (B's has the same name)
    async with sessions() as session:
        row = await session.get(Staff, b_staff)
        assert row is not None
        assert row.is_active is True
        branch = await session.get(Branch, b.branch_ids[0])
        assert branch is not None
        assert branch.name == "B Berlin"

    root, root_token = await signed_in(api, await api.key("super_admin"))
    companies = await root.get("/console/admin/companies")
    assert companies.status_code == 200
    assert "A" in companies.text
    before = await count(sessions, Company)
    private = await root.post(
        "/console/admin/companies/new",
        data={
            "csrf": root_token,
            "name": "Salon",
            "time_zone": "Europe/Berlin",
            "currency": "EUR",
            "webhook_url": "http://192.168.1.20/hook",
        },
    )
    assert private.status_code == 422
    assert "non-public address" in private.text
    assert await count(sessions, Company) == before
    created = await root.post(
        "/console/admin/companies/new",
        data={
            "csrf": root_token,
            "name": "Salon",
            "time_zone": "Europe/Berlin",
            "currency": "EUR",
            "webhook_url": "https://93.184.215.14/hook",
            "calcom_webhook_secret": "cal-secret-xyz",
        },
    )
    assert created.status_code == 200, created.text  # the page shows the new secret once
    first = re.search(r'id="admin-secret">[^<]*<code class="mono">(whsec_[^<]+)</code>', created.text)
    assert first is not None
    assert "cal-secret-xyz" not in created.text
    company_id = re.search(r'action="/console/admin/companies/(\d+)"', created.text)
    assert company_id is not None
    rotated = await root.post(
        f"/console/admin/companies/{company_id.group(1)}/webhook-secret", data={"csrf": root_token}
    )
    assert rotated.status_code == 200
    second = re.search(r'<code class="mono">(whsec_[^<]+)</code>', rotated.text)
    assert second is not None
    assert second.group(1) != first.group(1)
    assert "the old one stays valid" in rotated.text
    # A super_admin creates a branch in a company it names.
    branch = await root.post(
        "/console/admin/branches/new",
        data={"csrf": root_token, "company_id": company_id.group(1), "name": "Salon Mitte"},
    )
    assert branch.status_code == 303, branch.text
