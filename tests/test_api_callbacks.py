"""The callback API through HTTP: life cycle, list filters and sorting, summary, bulk, delete/restore,
idempotency under concurrency and the creation rate limit — against PostgreSQL and Temporal."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from temporalio.testing import WorkflowEnvironment

from models.tables import Branch, CallbackRequest, Service
from store.db import transaction
from tests.api_fixtures import ApiEnv, Sessions, running_api
from tests.factories import Tenant, add_staff, make_tenant


@pytest.fixture
async def api(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> AsyncIterator[ApiEnv]:
    async with running_api(time_skipping_env.client, sessions, task_queue) as env:
        yield env


def new_body(tenant: Tenant, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "branch_id": tenant.branch_ids[0],
        "service_id": tenant.service_ids[0],
        "customer_name": "Erika Mustermann",
        "phone_number": "+49 30 1234567",
    }
    body.update(overrides)
    return body


async def test_whole_life_through_http(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant, services=(0,))
    service = api.http(await api.key("service", tenant))
    worker = api.http(await api.key("staff", tenant, staff_id=staff))

    created = await service.post("/v1/callbacks", json=new_body(tenant, phone_number="030 1234567"))
    assert created.status_code == 201, created.text
    callback = created.json()
    assert callback["created"] is True
    assert callback["status"] == "assigned"
    assert callback["assigned_to"] == str(staff)
    assert callback["phone_number"] == "+49301234567"  # national number read in the branch's country
    assert created.headers["location"] == f"/v1/callbacks/{callback['id']}"
    path = f"/v1/callbacks/{callback['id']}"

    refused = await service.post(f"{path}/contacted")
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"

    contacted = await worker.post(f"{path}/contacted")
    assert contacted.status_code == 200, contacted.text
    assert contacted.json()["status"] == "contacted"

    attempt = await worker.post(f"{path}/attempts", json={"outcome": "busy", "notes": "line busy"})
    assert attempt.json()["contact_attempts"] == 1

    empty_notes = await worker.post(f"{path}/complete", json={"notes": "   "})
    assert empty_notes.status_code == 422
    assert empty_notes.json()["errors"][0]["field"] == "notes"

    done = await worker.post(f"{path}/complete", json={"notes": "booked a checkup"})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"
    assert done.json()["completion_notes"] == "booked a checkup"

    again = await worker.post(f"{path}/complete", json={"notes": "again"})
    assert again.status_code == 409
    assert "completed" in again.json()["detail"]

    detail = (await service.get(path)).json()
    # The slot lookup runs beside the staff's actions, so its audit event may land anywhere after creation.
    lifecycle = [event for event in detail["events"] if event["type"] != "callback.slots_suggested"]
    assert [event["type"] for event in lifecycle] == [
        "callback.created",
        "callback.assigned",
        "callback.contacted",
        "callback.attempt_failed",
        "callback.completed",
    ]
    # The staff key's staff member is the actor of its actions.
    assert {event["actor"] for event in lifecycle[2:]} == {str(staff)}
    assert detail["attempts"] == [
        {
            "number": 1,
            "outcome": "busy",
            "notes": "line busy",
            "actor": str(staff),
            "at": detail["attempts"][0]["at"],
        }
    ]
    assert detail["escalations"] == []
    assert detail["suggested_slots"] is None


async def test_escalate_priority_assign_cancel(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    first = await add_staff(sessions, tenant)
    second = await add_staff(sessions, tenant)
    admin = api.http(await api.key("admin", tenant))
    callback = (await admin.post("/v1/callbacks", json=new_body(tenant, priority="urgent"))).json()
    path = f"/v1/callbacks/{callback['id']}"
    assert callback["assigned_to"] == str(first)

    no_reason = await admin.post(f"{path}/escalate", json={})
    assert no_reason.status_code == 422
    assert no_reason.json()["errors"][0]["field"] == "reason"
    escalated = await admin.post(
        f"{path}/escalate", json={"reason": "customer angry", "details": "called twice"}
    )
    assert escalated.status_code == 200, escalated.text
    assert escalated.json()["escalation_count"] == 1
    assert escalated.json()["assigned_to"] == str(second)

    priority = await admin.post(f"{path}/priority", json={"priority": "normal"})
    created_at = datetime.fromisoformat(priority.json()["created_at"])
    assert datetime.fromisoformat(priority.json()["expires_at"]) - created_at == timedelta(hours=24)

    back = await admin.post(f"{path}/assign", json={"staff_id": str(first)})
    assert back.json()["assigned_to"] == str(first)
    stranger = await admin.post(f"{path}/assign", json={"staff_id": str(uuid.uuid4())})
    assert stranger.status_code == 422
    assert stranger.json()["errors"][0]["field"] == "staff_id"
    no_staff = await admin.post(f"{path}/assign", json={})
    assert no_staff.status_code == 403  # an admin key has no staff member to stand for
    assert no_staff.json()["errors"][0]["field"] == "staff_id"

    cancelled = await admin.post(f"{path}/cancel", json={"reason": "customer called back"})
    assert cancelled.json()["status"] == "cancelled"
    detail = (await admin.get(path)).json()
    assert detail["escalations"][0]["reason"] == "manual"
    assert detail["escalations"][0]["details"] == "customer angry: called twice"
    assert detail["cancel_reason"] == "customer called back"


async def _set_row(sessions: Sessions, callback_id: str, **values: Any) -> None:
    async with transaction(sessions) as session:
        await session.execute(
            update(CallbackRequest).where(CallbackRequest.id == uuid.UUID(callback_id)).values(**values)
        )


async def test_list_filters_search_sorting_and_summary(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant)
    async with transaction(sessions) as session:
        await session.execute(update(Branch).where(Branch.id == tenant.branch_ids[1]).values(name="Aachen"))
        await session.execute(
            update(Service).where(Service.id == tenant.service_ids[1]).values(name="Annual")
        )
    admin = api.http(await api.key("admin", tenant))
    worker = api.http(await api.key("staff", tenant, staff_id=staff))
    # Created in this order; created_at is then set so that the order is certain.
    specs = [
        ("Zoe Zimmer", "+49 30 1111111", "normal", 0, 0),
        ("anna Adler", "+49 40 2222222", "urgent", 1, 1),
        ("Bert Braun", "+49 89 3333333", "high", 0, 1),
        ("Carla Adler", "+49 30 4444444", "normal", 1, 0),
    ]
    ids = []
    base = datetime(2031, 1, 1, tzinfo=UTC)
    for index, (name, phone, priority, branch, service) in enumerate(specs):
        body = new_body(
            tenant,
            customer_name=name,
            phone_number=phone,
            priority=priority,
            branch_id=tenant.branch_ids[branch],
            service_id=tenant.service_ids[service],
        )
        response = await admin.post("/v1/callbacks", json=body)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
        await _set_row(sessions, ids[-1], created_at=base + timedelta(hours=index))
    zoe, anna, bert, carla = ids
    # zoe and bert (branch 0) were auto-assigned to `staff`; anna and carla (branch 1) have nobody there.
    await worker.post(f"/v1/callbacks/{zoe}/contacted")
    await worker.post(f"/v1/callbacks/{zoe}/complete", json={"notes": "done"})
    await admin.post(f"/v1/callbacks/{bert}/escalate", json={"reason": "vip"})
    await _set_row(sessions, carla, expires_at=datetime.now(UTC) - timedelta(minutes=1))

    async def listed(**params: Any) -> list[str]:
        response = await admin.get("/v1/callbacks", params=params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert await listed() == [carla, bert, anna, zoe]  # default: newest first
    assert await listed(status=["completed"]) == [zoe]
    assert await listed(status=["pending", "completed"], sort="created_at") == [zoe, anna, carla]
    assert await listed(priority=["urgent", "high"], sort="created_at") == [anna, bert]
    assert await listed(branch_id=tenant.branch_ids[1], sort="created_at") == [anna, carla]
    assert await listed(assigned_to=str(staff), sort="created_at") == [zoe, bert]
    assert await listed(overdue="true") == [carla]
    assert carla not in await listed(overdue="false")
    assert await listed(q="adler", sort="created_at") == [anna, carla]
    assert await listed(q="2222") == [anna]
    assert await listed(q="%") == []  # wildcards are literal
    assert await listed(
        created_from=(base + timedelta(hours=1)).isoformat(),
        created_to=(base + timedelta(hours=3)).isoformat(),
        sort="created_at",
    ) == [anna, bert]

    assert await listed(sort="customer_name") == [anna, bert, carla, zoe]  # case-insensitive
    assert await listed(sort="-customer_name") == [zoe, carla, bert, anna]
    assert await listed(sort="priority") == [*sorted([zoe, carla], key=str), bert, anna]
    assert await listed(sort="-priority") == [anna, bert, *sorted([zoe, carla], key=str, reverse=True)]
    statuses = [
        item["status"]
        for item in (await admin.get("/v1/callbacks", params={"sort": "status"})).json()["items"]
    ]
    assert statuses == sorted(
        statuses, key=["pending", "assigned", "contacted", "completed", "cancelled", "expired"].index
    )
    assert (await listed(sort="branch"))[:2] == sorted([anna, carla], key=str)  # "Aachen" first
    assert (await listed(sort="service"))[:2] == sorted([anna, bert], key=str)  # "Annual" first
    assert await listed(sort="id") == sorted(ids)
    assert await listed(sort="-id") == sorted(ids, reverse=True)
    assert (await listed(sort="expires_at"))[0] == carla
    assert await listed(sort="created_at") == [zoe, anna, bert, carla]

    page = (await admin.get("/v1/callbacks", params={"page": 2, "page_size": 3, "sort": "created_at"})).json()
    assert page["total"] == 4
    assert [item["id"] for item in page["items"]] == [carla]

    summary = (await admin.get("/v1/callbacks/summary")).json()
    assert summary["pending"] == 2
    assert summary["overdue"] == 1
    assert summary["by_status"]["completed"] == 1
    assert summary["by_priority"] == {"urgent": 1, "high": 1, "normal": 2}
    assert summary["completed"] == 1
    assert summary["sla_compliance_rate"] == 1.0
    assert summary["escalations_24h"] == 1
    assert summary["escalations_7d"] == 1
    assert summary["open_per_staff"] == [
        {"staff_id": str(staff), "name": f"Staff {staff.int}", "open_callbacks": 1}  # bert
    ]


async def test_bulk_actions_report_each_id(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant)
    other = await add_staff(sessions, tenant)
    admin = api.http(await api.key("admin", tenant))
    ids = [(await admin.post("/v1/callbacks", json=new_body(tenant))).json()["id"] for _ in range(3)]
    await admin.post(f"/v1/callbacks/{ids[2]}/cancel")
    missing = str(uuid.uuid4())

    assigned = await admin.post(
        "/v1/callbacks/bulk/assign", json={"ids": [*ids, missing], "staff_id": str(other)}
    )
    assert assigned.status_code == 200, assigned.text
    results = assigned.json()["results"]
    assert [r["ok"] for r in results] == [True, True, False, False]
    assert results[2]["error"]["status"] == 409
    assert results[3]["error"]["status"] == 404
    assert assigned.json()["succeeded"] == 2

    done = await admin.post("/v1/callbacks/bulk/complete", json={"ids": ids[:2], "notes": "all called"})
    assert [r["status"] for r in done.json()["results"]] == ["completed", "completed"]
    assert staff != other


async def test_soft_delete_cancels_and_restore_brings_back(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    admin_key = await api.key("admin", tenant)
    admin = api.http(admin_key)
    worker = api.http(await api.key("staff", tenant, staff_id=await add_staff(sessions, tenant)))
    callback = (await admin.post("/v1/callbacks", json=new_body(tenant))).json()
    path = f"/v1/callbacks/{callback['id']}"
    assert (await worker.delete(path)).status_code == 403
    assert (await admin.delete(path)).status_code == 204
    assert (await admin.get(path)).status_code == 404
    assert (await admin.get("/v1/callbacks")).json()["total"] == 0
    deleted = (await admin.get(path, params={"include_deleted": "true"})).json()
    assert deleted["status"] == "cancelled"
    assert deleted["deleted_at"] is not None
    listed = (await admin.get("/v1/callbacks", params={"include_deleted": "true"})).json()
    assert listed["total"] == 1
    assert (await admin.delete(path)).status_code == 404
    restored = await admin.post(f"{path}/restore")
    assert restored.status_code == 200, restored.text
    assert restored.json()["deleted_at"] is None
    assert (await admin.post(f"{path}/restore")).status_code == 409


async def test_twenty_parallel_posts_with_one_key_make_one_callback(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    await add_staff(sessions, tenant)
    service = api.http(await api.key("service", tenant), **{"Idempotency-Key": "order-4711"})
    responses = await asyncio.gather(
        *(service.post("/v1/callbacks", json=new_body(tenant)) for _ in range(20))
    )
    assert {r.status_code for r in responses} <= {200, 201}
    assert sorted(r.status_code for r in responses) == [200] * 19 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert await api.callback_count() == 1
    different = await service.post("/v1/callbacks", json=new_body(tenant, customer_name="Someone Else"))
    assert different.status_code == 422
    assert different.json()["type"] == "/problems/idempotency-key-reused"


async def test_creation_is_rate_limited_per_key(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    async with running_api(
        time_skipping_env.client, sessions, task_queue, api_create_burst=2, api_create_rate_per_minute=0.01
    ) as api:
        tenant = await make_tenant(sessions)
        first = api.http(await api.key("service", tenant))
        second = api.http(await api.key("service", tenant))
        assert [(await first.post("/v1/callbacks", json=new_body(tenant))).status_code for _ in range(2)] == [
            201,
            201,
        ]
        limited = await first.post("/v1/callbacks", json=new_body(tenant))
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.headers["content-type"] == "application/problem+json"
        # The bucket is per key: another key of the same company still creates.
        assert (await second.post("/v1/callbacks", json=new_body(tenant))).status_code == 201
        # Reading is not limited.
        assert (await first.get("/v1/callbacks")).status_code == 200
