"""Erasure (GDPR Art. 17) through HTTP: DELETE /v1/customers/{id}?erase=true leaves no personal data in any
PostgreSQL row nor in the open callbacks' `state` query, and both callbacks keep running their SLA clock."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from temporalio.testing import WorkflowEnvironment

from models.callbacks import ERASED, callback_workflow_id
from models.tables import Appointment, Base, Customer
from store.db import transaction
from tests.api_fixtures import ApiEnv, Sessions, running_api
from tests.callback_harness import event_rows
from tests.factories import Tenant, add_staff, make_tenant
from tests.test_api_callbacks import new_body

NAME = "Zoe Quellwasser"
PHONE = "+4915799887766"
EMAIL = "zoe.quellwasser@example.org"
# Every trace of her a search must not find anywhere afterwards.
TRACES = ("Quellwasser", "799887766", "zoe.quellwasser", "penicillin", "after five", "her daughter")


@pytest.fixture
async def api(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> AsyncIterator[ApiEnv]:
    async with running_api(time_skipping_env.client, sessions, task_queue) as env:
        yield env


async def _customer(sessions: Sessions, tenant: Tenant) -> int:
    async with transaction(sessions) as session:
        customer = Customer(
            company_id=tenant.company_id, name=NAME, phone_number=PHONE, email=EMAIL, external_id="P-77"
        )
        session.add(customer)
        await session.flush()
        starts = datetime.now(UTC) + timedelta(days=3)
        session.add(
            Appointment(
                company_id=tenant.company_id,
                branch_id=tenant.branch_ids[0],
                customer_id=customer.id,
                starts_at=starts,
                ends_at=starts + timedelta(minutes=30),
                price=Decimal("10"),
            )
        )
        return customer.id


async def _traces_in_postgres(sessions: Sessions) -> list[str]:
    """Every row of every table, as JSON text, that still holds one of the traces."""
    found = []
    async with sessions() as session:
        for table in Base.metadata.sorted_tables:
            rows = await session.execute(text(f"SELECT to_jsonb(t)::text FROM {table.name} t"))
            for (row,) in rows:
                found.extend(f"{table.name}: {trace}" for trace in TRACES if trace.lower() in row.lower())
    return found


async def _tables_with_traces_once_notified(sessions: Sessions) -> set[str]:
    """The tables holding her traces once the outbox dispatcher wrote the confirmation mail's delivery: the
    dispatcher drains the outbox after the callback's step committed, so the row comes a moment later."""
    for _ in range(200):
        tables = {found.split(":")[0] for found in await _traces_in_postgres(sessions)}
        if "notification_deliveries" in tables:
            break
        await asyncio.sleep(0.1)
    return tables


async def test_erasing_a_customer_with_two_open_callbacks(
    api: ApiEnv, sessions: Sessions, time_skipping_env: WorkflowEnvironment
) -> None:
    tenant = await make_tenant(sessions)
    first_staff = await add_staff(sessions, tenant, services=(0,))
    await add_staff(sessions, tenant, services=(0,))
    customer = await _customer(sessions, tenant)
    admin = api.http(await api.key("admin", tenant))
    staff = api.http(await api.key("staff", tenant, staff_id=first_staff))
    person = {"customer_name": NAME, "phone_number": PHONE, "email": EMAIL}

    opened = []
    for priority in ("high", "normal"):
        created = await admin.post(
            "/v1/callbacks",
            json=new_body(
                tenant,
                customer_id=customer,
                priority=priority,
                notes="allergic to penicillin",
                metadata={"relative": "her daughter"},
                **person,
            ),
        )
        assert created.status_code == 201, created.text
        opened.append(created.json()["id"])
    attempt = await staff.post(
        f"/v1/callbacks/{opened[0]}/attempts", json={"outcome": "busy", "notes": "after five"}
    )
    assert attempt.status_code == 200, attempt.text
    escalated = await admin.post(
        f"/v1/callbacks/{opened[1]}/escalate", json={"reason": "vip", "details": "Zoe Quellwasser insists"}
    )
    assert escalated.status_code == 200, escalated.text
    # A callback taken on the phone without the customer's row, and a closed one: theirs as well.
    unlinked = await admin.post("/v1/callbacks", json=new_body(tenant, **person))
    closed = (await admin.post("/v1/callbacks", json=new_body(tenant, customer_id=customer, **person))).json()
    await admin.post(
        f"/v1/callbacks/{closed['id']}/cancel", json={"reason": "Quellwasser called back herself"}
    )
    someone_else = (await admin.post("/v1/callbacks", json=new_body(tenant))).json()
    before = await _tables_with_traces_once_notified(sessions)
    assert before == {
        "customers",
        "callback_requests",
        "callback_events",
        "callback_escalations",
        "notification_deliveries",  # the confirmation mail to the customer
    }

    refused = await admin.delete(f"/v1/customers/{customer}?erase=false")
    assert refused.status_code == 400
    assert "only erased" in refused.json()["detail"]
    unsaid = await admin.delete(f"/v1/customers/{customer}")  # `erase` is required (true)
    assert unsaid.status_code == 422
    assert unsaid.json()["errors"][0]["field"] == "erase"
    assert (await staff.delete(f"/v1/customers/{customer}?erase=true")).status_code == 403

    erased = await admin.delete(f"/v1/customers/{customer}", params={"erase": "true"})
    assert erased.status_code == 200, erased.text
    report = erased.json()
    assert (report["callbacks"], report["open_callbacks_erased"], report["already_erased"]) == (4, 3, False)

    assert await _traces_in_postgres(sessions) == []
    ids = [uuid.UUID(opened[0]), uuid.UUID(opened[1]), uuid.UUID(unlinked.json()["id"])]
    workflows = {
        cid: callback_workflow_id((await admin.get(f"/v1/callbacks/{cid}")).json()["company_id"], cid)
        for cid in ids
    }
    for callback_id in ids:
        state = await api.callbacks.state(workflows[callback_id])
        assert state is not None
        dumped = state.model_dump_json()
        assert not [trace for trace in TRACES if trace.lower() in dumped.lower()], dumped
        assert (state.request.customer_name, state.request.phone_number, state.request.email) == (
            ERASED,
            ERASED,
            None,
        )
        assert not state.status.is_terminal
    async with sessions() as session:
        row = await session.get(Customer, customer)
    assert row is not None
    assert (row.name, row.phone_number, row.email, row.external_id) == (ERASED, None, None, None)
    assert row.erased_at is not None
    # Gone for reads by id (DELETE erased it: 410, not a blanked 200); the list still shows the tombstone.
    for path in (f"/v1/customers/{customer}", f"/v1/customers/{customer}/quota"):
        gone = await admin.get(path)
        assert gone.status_code == 410, gone.text
        assert gone.json()["type"] == "/problems/customer-erased"
        assert gone.json()["erased_at"] == row.erased_at.isoformat()
    listed = (await admin.get("/v1/customers", params={"page_size": 200})).json()["items"]
    assert [item["name"] for item in listed if item["id"] == customer] == [ERASED]
    events = [event.type for event in await event_rows(sessions, ids[0])]
    assert events[-1] == "callback.personal_data_erased"
    shown = await admin.get(f"/v1/callbacks/{opened[0]}")
    assert shown.status_code == 200, shown.text
    assert (shown.json()["customer_name"], shown.json()["phone_number"], shown.json()["notes"]) == (
        ERASED,
        ERASED,
        None,
    )
    listed = await admin.get("/v1/callbacks", params={"q": "Quellwasser"})
    assert listed.json()["total"] == 0
    # Someone else's callback is untouched.
    other = (await admin.get(f"/v1/callbacks/{someone_else['id']}")).json()
    assert other["customer_name"] == "Erika Mustermann"

    # Both callbacks still run their SLA clock: warnings, then the breach escalates.
    versions = {
        callback_id: (await api.callbacks.state(workflows[callback_id])).version for callback_id in ids[:2]
    }  # type: ignore[union-attr]
    await time_skipping_env.sleep(timedelta(hours=4, minutes=1))
    high = await api.callbacks.state(workflows[ids[0]])
    assert high is not None
    assert high.version > versions[ids[0]]
    assert high.warnings_sent == [50, 75]
    assert high.escalation_count >= 1
    normal = await api.callbacks.state(workflows[ids[1]])
    assert normal is not None
    assert normal.warnings_sent == []  # its first warning is due at 12 h
    await time_skipping_env.sleep(timedelta(hours=8))
    normal = await api.callbacks.state(workflows[ids[1]])
    assert normal is not None
    assert normal.warnings_sent == [50]
    assert await _traces_in_postgres(sessions) == []
    assert json.dumps(normal.model_dump(mode="json")).count(ERASED) >= 2

    again = await admin.delete(f"/v1/customers/{customer}", params={"erase": "true"})
    assert again.status_code == 200
    assert again.json()["already_erased"] is True


async def test_erasure_is_tenant_scoped(api: ApiEnv, sessions: Sessions) -> None:
    a = await make_tenant(sessions, name="A")
    b = await make_tenant(sessions, name="B")
    a_admin = api.http(await api.key("admin", a))
    response = await a_admin.delete(f"/v1/customers/{b.customer_ids[0]}", params={"erase": "true"})
    assert response.status_code == 404
    async with sessions() as session:
        untouched = await session.scalar(select(Customer.name).where(Customer.id == b.customer_ids[0]))
    assert untouched == "Erika Mustermann"
    root = api.http(await api.key("super_admin"))
    assert (
        await root.delete(f"/v1/customers/{b.customer_ids[0]}", params={"erase": "true"})
    ).status_code == 200
