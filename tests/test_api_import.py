"""Bulk import through HTTP: 1,000 staff rows with 10 bad ones, the report, idempotent re-runs keyed by
external_id, dry runs that write nothing, services and customers, uploads, and a staff row that
deactivates a member (their callback is reassigned by its workflow)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from temporalio.testing import WorkflowEnvironment

from models.tables import Customer, Service, Staff, StaffService
from tests.api_fixtures import ApiEnv, Sessions, running_api
from tests.factories import make_tenant
from tests.test_api_callbacks import new_body
from tests.test_api_directory import ok, wait_for

STAFF_HEADER = "external_id,name,email,phone,branch,locale,max_open_callbacks,services,is_active"
BAD_ROWS = {
    # row index (0-based among data rows) → (cells, the start of the reason)
    17: ("S-0017,Broken Mail,not-an-email,,{branch},de,,,", "email:"),
    101: ("S-0101,Bad Phone,,12,{branch},de,,,", "phone:"),
    222: ("S-0222,Nowhere,,,Atlantis,de,,,", "branch: no branch is named 'Atlantis'"),
    333: ("S-0333,No Service,,,{branch},de,,SVC-404,", "services: no service has the external id 'SVC-404'"),
    444: ("S-0444,Parlez,,,{branch},fr,,,", "locale:"),
    555: ("S-0555,Negative,,,{branch},de,-1,,", "max_open_callbacks:"),
    666: ("S-0666,,,,{branch},de,,,", "name:"),
    777: (",No Id,,,{branch},de,,,", "external_id: required"),
    888: ("S-0001,Twice,,,{branch},de,,,", "external_id appears again (first on line 3)"),
    999: ("S-0999,Maybe,,,{branch},de,,,maybe", "is_active: 'maybe' is not yes/no"),
}


@pytest.fixture
async def api(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> AsyncIterator[ApiEnv]:
    async with running_api(time_skipping_env.client, sessions, task_queue) as env:
        yield env


def staff_csv(branch: str, count: int = 1000) -> str:
    lines = [STAFF_HEADER]
    for n in range(count):
        if n in BAD_ROWS:
            lines.append(BAD_ROWS[n][0].format(branch=branch))
            continue
        services = "SVC-1;SVC-2" if n % 3 == 0 else "SVC-1"
        phone = f"0151 2345{n:04d}" if n % 2 else ""
        lines.append(
            f"S-{n:04d},Mitarbeiter {n},m{n}@praxis.example,{phone},{branch},{'en' if n % 5 else 'de'},"
            f"{n % 7 or ''},{services},{'yes' if n % 11 else 'no'}"
        )
    return "\n".join(lines) + "\n"


async def count(sessions: Sessions, table: type) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def test_a_thousand_staff_rows_with_ten_bad_ones(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions, name="Praxis")
    key = await api.key("admin", tenant)
    admin = api.http(key, **{"Content-Type": "text/csv"})
    for n, service_id in enumerate(tenant.service_ids, start=1):
        await ok(await api.http(key).patch(f"/v1/services/{service_id}", json={"external_id": f"SVC-{n}"}))
    body = staff_csv("praxis berlin")  # the branch by its name, in any case
    staff_before = await count(sessions, Staff)

    dry = await ok(await admin.post("/v1/import/staff", params={"dry_run": "true"}, content=body))
    assert (dry["rows"], dry["valid"], dry["created"], dry["updated"], dry["unchanged"]) == (
        1000,
        990,
        990,
        0,
        0,
    )
    assert await count(sessions, Staff) == staff_before  # a dry run writes nothing
    assert await count(sessions, StaffService) == 0

    started = time.perf_counter()
    first = await ok(await admin.post("/v1/import/staff", content=body))
    took = time.perf_counter() - started
    print(f"import of 1,000 staff rows: {took:.2f} s")  # for the docs; tests never assert wall times
    assert first["dry_run"] is False
    assert (first["valid"], first["created"], first["updated"], first["unchanged"]) == (990, 990, 0, 0)
    assert await count(sessions, Staff) == staff_before + 990
    refused = {(r["row"], r["external_id"]): r["reason"] for r in first["refused"]}
    assert len(refused) == 10
    for index, (cells, reason) in BAD_ROWS.items():
        external_id = cells.split(",", 1)[0] or None
        assert refused[(index + 2, external_id)].startswith(reason), (
            index,
            refused[(index + 2, external_id)],
        )
    assert first["refused"] == dry["refused"]

    again = await ok(await admin.post("/v1/import/staff", content=body))
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 990)
    assert len(again["refused"]) == 10

    # What landed: references resolved, phones in E.164, services linked, flags read.
    listed = await ok(await admin.get("/v1/staff", params={"q": "S-0003"}))
    (member,) = listed["items"]
    assert member["phone_number"] == "+4915123450003"
    assert member["branch_id"] == tenant.branch_ids[0]
    assert member["service_ids"] == sorted(tenant.service_ids)
    assert (member["locale"], member["max_open_callbacks"], member["is_active"]) == ("en", 3, True)
    inactive = await ok(await admin.get("/v1/staff", params={"q": "S-0011"}))
    assert inactive["items"][0]["is_active"] is False  # 11 % 11 == 0 → "no"

    # One row changed: one update, the rest unchanged.
    changed = body.replace("m3@praxis.example", "anna@praxis.example")
    third = await ok(await admin.post("/v1/import/staff", content=changed))
    assert (third["created"], third["updated"], third["unchanged"]) == (0, 1, 989)


async def test_services_customers_uploads_and_refused_files(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    admin = api.http(await api.key("admin", tenant))
    services = "external_id;name;branch_id;duration_minutes;price;calcom_event_type_id\n"
    services += f"X-1;Röntgen;{tenant.branch_ids[1]};45;120,50;\nX-2;Beratung;;20;0;4711\nX-3;Teuer;;20;-5;\n"
    report = await ok(
        await admin.post(
            "/v1/import/services", content=services.encode(), headers={"Content-Type": "text/csv"}
        )
    )
    assert (report["created"], len(report["refused"])) == (2, 1)
    assert report["refused"][0]["row"] == 4
    assert report["refused"][0]["reason"].startswith("price:")
    xray = await ok(await admin.get("/v1/services", params={"q": "X-1"}))
    assert xray["items"][0]["price"] == "120.50"
    assert xray["items"][0]["branch_id"] == tenant.branch_ids[1]

    customers = "\ufeffexternal_id,name,phone,email,time_zone\nC-1,Erika,030 1234567,erika@example.org,\n"
    upload = await ok(
        await admin.post(
            "/v1/import/customers",
            files={"file": ("kunden.csv", customers.encode(), "text/csv")},
        )
    )
    assert upload["created"] == 1
    erika = await ok(await admin.get("/v1/customers", params={"q": "C-1"}))
    assert erika["items"][0]["phone_number"] == "+49301234567"
    rerun = await ok(await admin.post("/v1/import/customers", files={"file": ("k.csv", customers.encode())}))
    assert rerun["unchanged"] == 1

    # Larger than the API's usual body limit (256 KB): imports have their own (CALLBACKS_IMPORT_MAX_BYTES).
    big = "external_id,name,email\n" + "".join(
        f"B-{n:05d},Kundin Nummer {n:05d} mit langem Namen,kundin{n:05d}@example.org\n" for n in range(4000)
    )
    assert len(big.encode()) > api.deps.settings.api_max_body_bytes
    bulk = await ok(
        await admin.post("/v1/import/customers", content=big, headers={"Content-Type": "text/csv"})
    )
    assert (bulk["created"], bulk["refused"]) == (4000, [])
    too_big = await admin.post("/v1/callbacks", content=big, headers={"Content-Type": "application/json"})
    assert too_big.status_code == 413

    before = (await count(sessions, Customer), await count(sessions, Service))
    for body, field, message in [
        ("external_id,name,fax\nC-9,X,1\n", "columns", "unknown column 'fax'"),
        ("name\nX\n", "columns", "the column 'external_id' is missing"),
        ("", "file", "is empty"),
    ]:
        refused = await admin.post("/v1/import/customers", content=body, headers={"Content-Type": "text/csv"})
        assert refused.status_code == 422, refused.text
        assert any(e["field"] == field and message in e["message"] for e in refused.json()["errors"])
    latin1 = await admin.post(
        "/v1/import/customers", content="external_id,name\nC-8,Jürgen\n".encode("latin-1")
    )
    assert latin1.status_code == 422
    assert "UTF-8" in latin1.json()["detail"]
    assert (await admin.post("/v1/import/trucks", content="external_id,name\n")).status_code == 422
    assert (await count(sessions, Customer), await count(sessions, Service)) == before
    staff_key = api.http(await api.key("service", tenant))
    assert (await staff_key.post("/v1/import/customers", content=customers)).status_code == 403


async def test_an_import_that_deactivates_staff_reassigns_their_callbacks(
    api: ApiEnv, sessions: Sessions
) -> None:
    tenant = await make_tenant(sessions)
    admin = api.http(await api.key("admin", tenant))
    header = "external_id,name,branch_id,is_active\n"
    rows = f"A,Anna,{tenant.branch_ids[0]},yes\nB,Bert,{tenant.branch_ids[0]},yes\n"
    await ok(await admin.post("/v1/import/staff", content=header + rows))
    callback = await ok(await admin.post("/v1/callbacks", json=new_body(tenant, priority="urgent")), 201)
    holder = callback["assigned_to"]
    names = {item["id"]: item["external_id"] for item in (await ok(await admin.get("/v1/staff")))["items"]}
    leaving = names[holder]
    staying = next(i for i, e in names.items() if e != leaving)
    change = rows.replace(f"{leaving},{'Anna' if leaving == 'A' else 'Bert'},{tenant.branch_ids[0]},yes", "")
    change += f"{leaving},{'Anna' if leaving == 'A' else 'Bert'},{tenant.branch_ids[0]},no\n"
    report = await ok(await admin.post("/v1/import/staff", content=header + change))
    assert (report["updated"], report["unchanged"], report["deactivated"]) == (1, 1, 1)
    moved = await wait_for(admin, f"/v1/callbacks/{callback['id']}", lambda b: b["assigned_to"] == staying)
    assert moved["status"] == "assigned"
    await asyncio.sleep(0)
