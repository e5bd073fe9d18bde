"""The tenant directory through HTTP, against PostgreSQL and Temporal: a new tenant moves in with nothing
but the API, deactivating a staff member reassigns their callback through its workflow and stops their
key, lists search and page, and webhook secrets rotate (bad input: tests/test_api_directory_input.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from models.callbacks import callback_workflow_id
from models.tables import Company
from store import notifications as notification_store
from tests.api_fixtures import ApiEnv, Sessions, running_api
from tests.factories import make_tenant

# Open around the clock (in two intervals a day): the callback below must find staff on shift whenever the
# suite runs (staff work their branch's hours).
HOURS = {
    day: [["00:00", "12:00"], ["12:00", "23:59"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}
PUBLIC_HOOK = "https://93.184.215.14/hooks/callbacks"


@pytest.fixture
async def api(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> AsyncIterator[ApiEnv]:
    async with running_api(time_skipping_env.client, sessions, task_queue) as env:
        yield env


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def wait_for(client: httpx.AsyncClient, path: str, check: Any, seconds: float = 20.0) -> Any:
    """Poll a GET until `check(body)` holds (the workflow works asynchronously after a Signal)."""
    async with asyncio.timeout(seconds):
        while True:
            body = (await client.get(path)).json()
            if check(body):
                return body
            await asyncio.sleep(0.1)


async def test_a_new_tenant_moves_in_through_http_only(api: ApiEnv) -> None:
    root = api.http(await api.key("super_admin"))
    company = await ok(
        await root.post("/v1/companies", json={"name": "Praxis Nord", "time_zone": "Europe/Berlin"}), 201
    )
    admin_key = await ok(
        await root.post("/v1/keys", json={"role": "admin", "company_id": company["id"], "name": "desk"}), 201
    )
    admin = api.http(admin_key["key"])
    branch = await ok(
        await admin.post(
            "/v1/branches",
            json={
                "name": "Praxis Nord Mitte",
                "country": "de",
                "subdivision": "be",
                "opening_hours": HOURS,
                "closures": [{"start": "2030-12-24", "end": "2030-12-26", "reason": "Weihnachten"}],
                "phone_number": "030 901820",
            },
        ),
        201,
    )
    assert branch["time_zone"] == "Europe/Berlin"  # the company's
    assert (branch["country"], branch["subdivision"]) == ("DE", "BE")
    assert branch["phone_number"] == "+4930901820"
    assert branch["opening_hours"] == HOURS
    service = await ok(
        await admin.post(
            "/v1/services", json={"name": "Checkup", "branch_id": branch["id"], "price": "80.00"}
        ),
        201,
    )
    anna, bert = [
        await ok(
            await admin.post(
                "/v1/staff",
                json={
                    "name": name,
                    "branch_id": branch["id"],
                    "service_ids": [service["id"]],
                    "email": f"{name.lower()}@praxis-nord.example",
                    "phone_number": "0151 23456789",
                },
            ),
            201,
        )
        for name in ("Anna", "Bert")
    ]
    assert anna["phone_number"] == "+4915123456789"  # read in the branch's country
    assert anna["service_ids"] == [service["id"]]
    staff_keys = {
        member["id"]: (
            await ok(await admin.post("/v1/keys", json={"role": "staff", "staff_id": member["id"]}), 201)
        )["key"]
        for member in (anna, bert)
    }

    created = await ok(
        await admin.post(
            "/v1/callbacks",
            json={
                "branch_id": branch["id"],
                "service_id": service["id"],
                "customer_name": "Erika Mustermann",
                "phone_number": "030 1234567",
                "priority": "high",
            },
        ),
        201,
    )
    holder = created["assigned_to"]
    assert created["status"] == "assigned"
    assert holder in (anna["id"], bert["id"])
    other = bert["id"] if holder == anna["id"] else anna["id"]
    holder_key = api.http(staff_keys[holder])
    assert (await holder_key.get(f"/v1/callbacks/{created['id']}")).status_code == 200

    deactivated = await ok(await admin.post(f"/v1/staff/{holder}/deactivate"))
    assert deactivated["is_active"] is False
    assert deactivated["reassignment"] == {"signalled": 1, "failed": []}
    # The key stops at once; the callback moves to the colleague through its workflow.
    refused = await holder_key.get(f"/v1/callbacks/{created['id']}")
    assert refused.status_code == 401
    assert refused.json()["detail"] == "the API key's staff member is deactivated"
    moved = await wait_for(admin, f"/v1/callbacks/{created['id']}", lambda b: b["assigned_to"] == other)
    assert moved["status"] == "assigned"
    reassigned = [e for e in moved["events"] if e["type"] == "callback.reassigned"]
    assert [e["payload"] for e in reassigned] == [
        {"reason": "staff_deactivated", "previous_staff_id": holder, "staff_id": other}
    ]
    assert reassigned[0]["actor"].startswith("admin-key:")
    state = await api.callbacks.state(callback_workflow_id(created["company_id"], uuid.UUID(created["id"])))
    assert state is not None
    assert state.assigned_to is not None
    assert str(state.assigned_to) == other
    # The other key still works; activating again lets the first key in again.
    assert (await api.http(staff_keys[other]).get(f"/v1/callbacks/{created['id']}")).status_code == 200
    await ok(await admin.post(f"/v1/staff/{holder}/activate"))
    assert (await holder_key.get(f"/v1/callbacks/{created['id']}")).status_code == 200

    # Deactivating the last one leaves the callback pending.
    await ok(await admin.post(f"/v1/staff/{holder}/deactivate"))
    await ok(await admin.post(f"/v1/staff/{other}/deactivate"))
    pending = await wait_for(admin, f"/v1/callbacks/{created['id']}", lambda b: b["status"] == "pending")
    assert pending["assigned_to"] is None


async def test_lists_search_and_page_like_the_callbacks(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    admin = api.http(await api.key("admin", tenant))
    service_key = api.http(await api.key("service", tenant))
    for n in range(7):
        await ok(
            await admin.post(
                "/v1/customers",
                json={"name": f"Kunde {n}", "phone_number": f"030 555000{n}", "external_id": f"K-{n}"},
            ),
            201,
        )
    assert (await service_key.get("/v1/customers")).status_code == 403  # personal data: not for services
    page = await ok(await admin.get("/v1/customers", params={"q": "kunde", "page_size": 3, "page": 3}))
    assert page["total"] == 7
    assert [item["name"] for item in page["items"]] == ["Kunde 6"]
    by_phone = await ok(await admin.get("/v1/customers", params={"q": "5550003"}))
    assert [item["external_id"] for item in by_phone["items"]] == ["K-3"]
    assert by_phone["items"][0]["phone_number"] == "+49305550003"
    taken = await admin.post("/v1/customers", json={"name": "Dup", "external_id": "K-1"})
    assert taken.status_code == 409
    assert taken.json()["errors"][0]["field"] == "external_id"
    # Staff: filters, the services they handle, absences.
    anna = await ok(
        await admin.post("/v1/staff", json={"name": "Anna", "branch_id": tenant.branch_ids[0]}), 201
    )
    await ok(await admin.post("/v1/staff", json={"name": "Bert", "branch_id": tenant.branch_ids[1]}), 201)
    in_first = await ok(await admin.get("/v1/staff", params={"branch_id": tenant.branch_ids[0]}))
    assert [item["name"] for item in in_first["items"]] == ["Anna"]
    linked = await ok(
        await admin.patch(f"/v1/staff/{anna['id']}", json={"service_ids": tenant.service_ids[::-1]})
    )
    assert linked["service_ids"] == sorted(tenant.service_ids)
    hours = await ok(await admin.patch(f"/v1/staff/{anna['id']}", json={"working_hours": HOURS}))
    assert hours["working_hours"] == HOURS
    assert hours["service_ids"] == sorted(tenant.service_ids)
    absence = await ok(
        await admin.post(
            f"/v1/staff/{anna['id']}/absences",
            json={"starts_at": "2030-07-01T00:00:00+02:00", "ends_at": "2030-07-15T00:00:00+02:00"},
        ),
        201,
    )
    assert absence["kind"] == "vacation"
    backwards = await admin.post(
        f"/v1/staff/{anna['id']}/absences",
        json={"starts_at": "2030-07-15T00:00:00Z", "ends_at": "2030-07-01T00:00:00Z"},
    )
    assert backwards.status_code == 422
    assert backwards.json()["errors"][0]["field"] == "ends_at"
    listed = await ok(await service_key.get(f"/v1/staff/{anna['id']}/absences"))
    assert [a["id"] for a in listed] == [absence["id"]]
    assert (await service_key.post(f"/v1/staff/{anna['id']}/absences", json={})).status_code == 403
    assert (await admin.delete(f"/v1/staff/{anna['id']}/absences/{absence['id']}")).status_code == 204
    assert await ok(await admin.get(f"/v1/staff/{anna['id']}/absences")) == []
    # Services: the company's own, filtered.
    services = await ok(await admin.get("/v1/services", params={"branch_id": tenant.branch_ids[0]}))
    assert services["total"] == 2
    off = await ok(await admin.patch(f"/v1/services/{tenant.service_ids[1]}", json={"is_active": False}))
    assert off["is_active"] is False
    active = await ok(await admin.get("/v1/services", params={"is_active": "true"}))
    assert [s["id"] for s in active["items"]] == [tenant.service_ids[0]]


async def test_company_settings_and_webhook_secret_rotation(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    admin = api.http(await api.key("admin", tenant))
    worker = api.http(await api.key("service", tenant))
    path = f"/v1/companies/{tenant.company_id}"

    assert (await admin.patch(path, json={"name": "Renamed"})).status_code == 403
    assert (await admin.post("/v1/companies", json={"name": "Mine"})).status_code == 403
    assert (await worker.patch(path, json={"currency": "CHF"})).status_code == 403
    first = await ok(
        await admin.patch(path, json={"webhook_url": PUBLIC_HOOK, "calcom_webhook_secret": "cal-secret-123"})
    )
    assert first["webhook_url"] == PUBLIC_HOOK
    secret = first["webhook_secret"]
    assert secret.startswith("whsec_")
    assert first["calcom_webhook_secret_set"] is True
    assert "calcom_webhook_secret" not in first
    shown = await ok(await worker.get(path))
    assert "webhook_secret" not in shown
    assert shown["webhook_secret_set"] is True
    assert "cal-secret-123" not in str(shown)

    rotated = await ok(await admin.post(f"{path}/webhook-secret"))
    assert rotated["webhook_secret"] not in (None, secret)
    assert rotated["webhook_secret_previous_until"] is not None
    async with sessions() as session:
        row = await session.get(Company, tenant.company_id)
        assert row is not None
        assert row.webhook_secret_previous == secret
        # Outgoing webhooks are signed with the current secret from now on.
        assert (
            await notification_store.webhook_secret(session, tenant.company_id) == rotated["webhook_secret"]
        )

    company_list = await ok(await admin.get("/v1/companies"))
    assert [c["id"] for c in company_list["items"]] == [tenant.company_id]
    # A private URL is fine when the operator allows it.
    refused = await admin.patch(path, json={"webhook_url": "http://10.0.0.7/hook"})
    assert refused.status_code == 422
    api.deps.settings = api.deps.settings.model_copy(update={"webhook_allow_private": True})
    allowed = await ok(await admin.patch(path, json={"webhook_url": "http://10.0.0.7/hook"}))
    assert allowed["webhook_url"] == "http://10.0.0.7/hook"
