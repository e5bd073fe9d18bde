"""Tenancy and roles through HTTP: another company's objects are 404 for every read and action, never
listed or counted; each role is limited to what it may do; keys are checked (missing, unknown, revoked)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from temporalio.testing import WorkflowEnvironment

from models.tables import Appointment
from store import api_keys
from store.db import transaction
from tests.api_fixtures import ApiEnv, Sessions, running_api
from tests.factories import Tenant, add_staff, make_tenant
from tests.test_api_callbacks import new_body


@pytest.fixture
async def api(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> AsyncIterator[ApiEnv]:
    async with running_api(time_skipping_env.client, sessions, task_queue) as env:
        yield env


async def add_appointment(sessions: Sessions, tenant: Tenant, *, days: float = 7) -> int:
    starts = datetime.now(UTC) + timedelta(days=days)
    async with transaction(sessions) as session:
        appointment = Appointment(
            company_id=tenant.company_id,
            branch_id=tenant.branch_ids[0],
            service_id=tenant.service_ids[0],
            staff_id=tenant.staff_ids[0] if tenant.staff_ids else None,
            customer_id=tenant.customer_ids[0],
            starts_at=starts,
            ends_at=starts + timedelta(minutes=30),
            price=Decimal("80.00"),
            status="scheduled",
        )
        session.add(appointment)
        await session.flush()
        return appointment.id


async def test_another_companys_objects_are_not_found(api: ApiEnv, sessions: Sessions) -> None:
    a = await make_tenant(sessions, name="A")
    b = await make_tenant(sessions, name="B")
    a_staff = await add_staff(sessions, a)
    b_staff = await add_staff(sessions, b)
    a_admin = api.http(await api.key("admin", a))
    a_worker = api.http(await api.key("staff", a, staff_id=a_staff))
    b_admin = api.http(await api.key("admin", b))
    mine = (await a_admin.post("/v1/callbacks", json=new_body(a, customer_name="Anna A"))).json()
    theirs = (await b_admin.post("/v1/callbacks", json=new_body(b, customer_name="Bob B"))).json()
    put = await b_admin.put(
        f"/v1/policies/branch/{b.branch_ids[0]}/cancellation", json={"config": {"fee": 5}}
    )
    assert put.status_code == 200, put.text
    appointment = await add_appointment(sessions, b)
    path = f"/v1/callbacks/{theirs['id']}"

    for client in (a_admin, a_worker):
        assert (await client.get(path)).status_code == 404
        for action, body in [
            ("assign", {"staff_id": str(a_staff)}),
            ("contacted", None),
            ("attempts", {"outcome": "busy"}),
            ("complete", {"notes": "x"}),
            ("cancel", {}),
            ("escalate", {"reason": "x"}),
            ("priority", {"priority": "urgent"}),
        ]:
            response = await client.post(f"{path}/{action}", json=body)
            assert response.status_code == 404, (action, response.text)
            assert response.json()["detail"] == f"callback {theirs['id']} not found"
        bulk = await client.post("/v1/callbacks/bulk/complete", json={"ids": [theirs["id"]], "notes": "x"})
        assert bulk.json()["results"][0]["error"]["status"] == 404
        assert (await client.get(f"/v1/appointments/{appointment}/policy?action=cancel")).status_code == 404
        assert (await client.get(f"/v1/customers/{b.customer_ids[0]}/quota")).status_code == 404
        window = {"start": "2030-03-04T00:00:00Z", "end": "2030-03-05T00:00:00Z"}
        assert (await client.get(f"/v1/services/{b.service_ids[0]}/slots", params=window)).status_code == 404
        assert (await client.get(f"/v1/services/{b.service_ids[0]}/slots/next")).status_code == 404
        listed = (await client.get("/v1/callbacks", params={"include_deleted": client is a_admin})).json()
        assert [item["id"] for item in listed["items"]] == [mine["id"]]
        assert (await client.get("/v1/callbacks", params={"q": "Bob"})).json()["total"] == 0
        assert (await client.get("/v1/callbacks/summary")).json()["by_status"]["assigned"] == 1
        # A company key cannot widen its scope with company_id.
        widened = await client.get("/v1/callbacks", params={"company_id": b.company_id})
        assert [item["id"] for item in widened.json()["items"]] == [mine["id"]]
        effective = await client.get(
            "/v1/policies/effective", params={"policy_type": "cancellation", "branch_id": b.branch_ids[0]}
        )
        assert effective.status_code == 404

    assert (await a_admin.delete(path)).status_code == 404
    assert (await a_admin.post(f"{path}/restore")).status_code == 404
    # Erasure: another company's customer does not exist for A.
    erase = await a_admin.delete(f"/v1/customers/{b.customer_ids[0]}", params={"erase": "true"})
    assert erase.status_code == 404
    assert erase.json()["detail"] == f"customer {b.customer_ids[0]} not found"
    for method in ("GET", "DELETE"):
        response = await a_admin.request(method, f"/v1/policies/branch/{b.branch_ids[0]}/cancellation")
        assert response.status_code == 404, method
    assert (
        await a_admin.put(f"/v1/policies/branch/{b.branch_ids[0]}/cancellation", json={"config": {"fee": 99}})
    ).status_code == 404
    assert (
        await a_admin.put(f"/v1/policies/staff/{b_staff}/callback", json={"config": {}})
    ).status_code == 404
    # A's key cannot put a callback into B's branch, or assign B's staff.
    foreign_branch = await a_admin.post("/v1/callbacks", json=new_body(a, branch_id=b.branch_ids[0]))
    assert foreign_branch.status_code == 422
    assert foreign_branch.json()["errors"][0]["field"] == "branch_id"
    foreign_staff = await a_admin.post(f"/v1/callbacks/{mine['id']}/assign", json={"staff_id": str(b_staff)})
    assert foreign_staff.status_code == 422

    # B's objects are untouched.
    after = (await b_admin.get(path)).json()
    assert after["status"] == "assigned"
    assert after["version"] == theirs["version"]
    policy = (await b_admin.get(f"/v1/policies/branch/{b.branch_ids[0]}/cancellation")).json()
    assert policy["config"] == {"fee": 5.0}
    assert (await b_admin.get("/v1/callbacks")).json()["total"] == 1


async def test_roles(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant)
    service = api.http(await api.key("service", tenant))
    worker = api.http(await api.key("staff", tenant, staff_id=staff))
    admin = api.http(await api.key("admin", tenant))
    callback = (await service.post("/v1/callbacks", json=new_body(tenant))).json()
    path = f"/v1/callbacks/{callback['id']}"
    policy = f"/v1/policies/company/{tenant.company_id}/cancellation"

    # service: create and read, never act, never touch policies.
    assert (await service.get(path)).status_code == 200
    assert (await service.post(f"{path}/cancel")).status_code == 403
    assert (
        await service.post("/v1/callbacks/bulk/complete", json={"ids": [callback["id"]], "notes": "x"})
    ).status_code == 403
    forbidden = await service.put(policy, json={"config": {"fee": 1}})
    assert forbidden.status_code == 403
    assert forbidden.json()["detail"] == "a service key may not do this (admin only)"
    assert (
        await service.get("/v1/policies/effective", params={"policy_type": "callback"})
    ).status_code == 403
    assert (await service.delete(path)).status_code == 403
    # staff: works callbacks and reads effective policies, but does not set policies or delete.
    assert (await worker.get("/v1/policies/effective", params={"policy_type": "callback"})).status_code == 200
    assert (await worker.put(policy, json={"config": {"fee": 1}})).status_code == 403
    assert (await worker.get(policy)).status_code == 403
    assert (await worker.delete(path)).status_code == 403
    erase = f"/v1/customers/{tenant.customer_ids[0]}?erase=true"
    assert (await worker.delete(erase)).status_code == 403
    assert (await service.delete(erase)).status_code == 403
    # admin: all of it.
    assert (await admin.put(policy, json={"config": {"fee": 1}})).status_code == 200
    assert (await admin.delete(policy)).status_code == 204
    assert (await admin.delete(path)).status_code == 204
    # No policy was written by the refused calls.
    assert (await admin.get(policy)).status_code == 404


async def test_keys_are_checked(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    key = await api.key("admin", tenant)
    anonymous = await api.http().get("/v1/callbacks")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert (await api.http("cbk_00000000_wrong").get("/v1/callbacks")).status_code == 401
    latin1 = await api.http().get(
        "/v1/callbacks", headers={"Authorization": "Bearer k\xfcy".encode("latin-1")}
    )
    assert latin1.status_code == 401
    assert (await api.http(key).get("/v1/callbacks")).status_code == 200
    async with transaction(sessions) as session:
        assert await api_keys.revoke_key(session, key.split("_")[1]) is not None
    assert (await api.http(key).get("/v1/callbacks")).status_code == 401


async def test_super_admin_sees_every_company_and_names_one_to_write(api: ApiEnv, sessions: Sessions) -> None:
    a = await make_tenant(sessions, name="A")
    b = await make_tenant(sessions, name="B")
    root = api.http(await api.key("super_admin"))
    needs_company = await root.post("/v1/callbacks", json=new_body(a))
    assert needs_company.status_code == 422
    assert needs_company.json()["errors"][0]["field"] == "company_id"
    first = await root.post("/v1/callbacks", json=new_body(a, company_id=a.company_id))
    second = await root.post("/v1/callbacks", json=new_body(b, company_id=b.company_id))
    assert first.status_code == second.status_code == 201
    assert (await root.get("/v1/callbacks")).json()["total"] == 2
    only_b = (await root.get("/v1/callbacks", params={"company_id": b.company_id})).json()
    assert [item["id"] for item in only_b["items"]] == [second.json()["id"]]
    assert (await root.post(f"/v1/callbacks/{first.json()['id']}/cancel")).status_code == 200
    company_key = api.http(await api.key("admin", a))
    assert (
        await company_key.post("/v1/callbacks", json=new_body(a, company_id=b.company_id))
    ).status_code == 403  # only a super_admin names another company
    assert uuid.UUID(first.json()["id"])


async def test_the_directory_answers_404_for_another_companys_ids(api: ApiEnv, sessions: Sessions) -> None:
    """Every directory endpoint that takes an id: another company's id is a 404 for reads, edits and
    actions alike, lists never show it, and references to it in a body are refused by field."""
    a = await make_tenant(sessions, name="A")
    b = await make_tenant(sessions, name="B")
    a_admin = api.http(await api.key("admin", a))
    a_staff = await add_staff(sessions, a)
    a_worker = api.http(await api.key("staff", a, staff_id=a_staff))
    b_admin = api.http(await api.key("admin", b))
    b_staff = await add_staff(sessions, b)
    absence = (
        await b_admin.post(
            f"/v1/staff/{b_staff}/absences",
            json={"starts_at": "2030-07-01T00:00:00Z", "ends_at": "2030-07-02T00:00:00Z"},
        )
    ).json()
    b_key = (await b_admin.post("/v1/keys", json={"role": "service", "name": "b"})).json()
    before = {
        path: (await b_admin.get(path)).json()
        for path in (
            f"/v1/companies/{b.company_id}",
            f"/v1/branches/{b.branch_ids[0]}",
            f"/v1/services/{b.service_ids[0]}",
            f"/v1/staff/{b_staff}",
            f"/v1/customers/{b.customer_ids[0]}",
        )
    }
    table: list[tuple[str, str, dict[str, object] | None]] = [
        ("GET", f"/v1/companies/{b.company_id}", None),
        ("PATCH", f"/v1/companies/{b.company_id}", {"time_zone": "UTC"}),
        ("POST", f"/v1/companies/{b.company_id}/webhook-secret", None),
        ("GET", f"/v1/branches/{b.branch_ids[0]}", None),
        ("PATCH", f"/v1/branches/{b.branch_ids[0]}", {"name": "Mine now"}),
        ("GET", f"/v1/services/{b.service_ids[0]}", None),
        ("PATCH", f"/v1/services/{b.service_ids[0]}", {"is_active": False}),
        ("GET", f"/v1/staff/{b_staff}", None),
        ("PATCH", f"/v1/staff/{b_staff}", {"name": "Mine now"}),
        ("POST", f"/v1/staff/{b_staff}/deactivate", None),
        ("POST", f"/v1/staff/{b_staff}/activate", None),
        ("GET", f"/v1/staff/{b_staff}/absences", None),
        (
            "POST",
            f"/v1/staff/{b_staff}/absences",
            {"starts_at": "2030-01-01T00:00Z", "ends_at": "2030-01-02T00:00Z"},
        ),
        ("DELETE", f"/v1/staff/{b_staff}/absences/{absence['id']}", None),
        ("DELETE", f"/v1/staff/{a_staff}/absences/{absence['id']}", None),  # their absence under my staff
        ("GET", f"/v1/customers/{b.customer_ids[0]}", None),
        ("PATCH", f"/v1/customers/{b.customer_ids[0]}", {"name": "Mine now"}),
        ("DELETE", f"/v1/keys/{b_key['id']}", None),
    ]
    for method, path, body in table:
        response = await a_admin.request(method, path, json=body)
        assert response.status_code == 404, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        if method == "GET":
            assert (await a_worker.get(path)).status_code == 404, path
    # Lists show only A's rows, whatever the filter says.
    for path in ("/v1/branches", "/v1/services", "/v1/staff", "/v1/customers", "/v1/companies"):
        listed = (await a_admin.get(path, params={"company_id": b.company_id, "q": "B"})).json()
        assert all(item.get("company_id", item["id"]) == a.company_id for item in listed["items"]), path
    assert b_key["id"] not in [k["id"] for k in (await a_admin.get("/v1/keys")).json()]
    # References to B's rows in A's bodies are refused by field (422; naming B itself is a 403: only a
    # super_admin names another company), nothing is written.
    for path, body, field, status in [
        ("/v1/services", {"name": "X", "branch_id": b.branch_ids[0]}, "branch_id", 422),
        ("/v1/staff", {"name": "X", "branch_id": b.branch_ids[0]}, "branch_id", 422),
        ("/v1/staff", {"name": "X", "service_ids": [b.service_ids[0]]}, "service_ids", 422),
        ("/v1/keys", {"role": "staff", "staff_id": str(b_staff)}, "staff_id", 422),
        ("/v1/branches", {"name": "X", "company_id": b.company_id}, "company_id", 403),
    ]:
        response = await a_admin.post(path, json=body)
        assert response.status_code == status, (path, response.text)
        assert response.json()["errors"][0]["field"] == field
    imported = (
        await a_admin.post(
            "/v1/import/staff",
            content=f"external_id,name,branch_id\nX-1,X,{b.branch_ids[0]}\n",
            headers={"Content-Type": "text/csv"},
        )
    ).json()
    assert imported["created"] == 0
    assert imported["refused"][0]["reason"].startswith("branch_id: no such branch")
    # B's rows are as they were; B's key still works.
    for path, body in before.items():
        assert (await b_admin.get(path)).json() == body, path
    assert (await b_admin.get(f"/v1/staff/{b_staff}/absences")).json() == [absence]
    assert (await api.http(b_key["key"]).get("/v1/branches")).status_code == 200
