"""Policies, the appointment dry run, customer quota and slots through HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update
from temporalio.testing import WorkflowEnvironment

from devstack.calcom_fake import FakeCalcom, RateLimitConfig, serve_fake
from models.policies import ModificationType
from models.tables import AppointmentModification, PolicyConfiguration, Service
from store.appointment_policies import record_modification
from store.db import transaction
from tests.api_fixtures import ApiEnv, Sessions, running_api
from tests.calcom_fixtures import DAILY, NOW, sample_event_types
from tests.factories import add_staff, make_tenant
from tests.test_api_tenancy import add_appointment


@pytest.fixture
async def api(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> AsyncIterator[ApiEnv]:
    async with running_api(time_skipping_env.client, sessions, task_queue) as env:
        yield env


async def test_policy_round_trip_and_effective_sources(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant)
    admin = api.http(await api.key("admin", tenant))
    company = f"/v1/policies/company/{tenant.company_id}/cancellation"
    branch = f"/v1/policies/branch/{tenant.branch_ids[0]}/cancellation"
    assert (await admin.get(company)).status_code == 404
    put = await admin.put(company, json={"config": {"hours_before": 24, "fee": 10}})
    assert put.status_code == 200, put.text
    assert put.json()["config"] == {"hours_before": 24.0, "fee": 10.0}
    await admin.put(branch, json={"config": {"fee_percentage": 50}})
    replaced = await admin.put(company, json={"config": {"hours_before": 48, "fee": 10}})
    assert replaced.json()["id"] == put.json()["id"]

    effective = await admin.get(
        "/v1/policies/effective",
        params={"policy_type": "cancellation", "branch_id": tenant.branch_ids[0], "staff_id": str(staff)},
    )
    assert effective.status_code == 200, effective.text
    assert effective.json()["config"] == {"hours_before": 48.0, "fee": 10.0, "fee_percentage": 50.0}
    assert effective.json()["sources"]["hours_before"] == {
        "level": "company",
        "entity_id": str(tenant.company_id),
    }
    assert effective.json()["sources"]["fee_percentage"] == {
        "level": "branch",
        "entity_id": str(tenant.branch_ids[0]),
    }

    assert (await admin.delete(branch)).status_code == 204
    assert (await admin.delete(branch)).status_code == 404
    after = await admin.get(
        "/v1/policies/effective", params={"policy_type": "cancellation", "branch_id": tenant.branch_ids[0]}
    )
    assert "fee_percentage" not in after.json()["config"]


async def test_invalid_policies_change_nothing(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    admin = api.http(await api.key("admin", tenant))
    path = f"/v1/policies/company/{tenant.company_id}/cancellation"
    cases = [
        ({"config": {"hours_before": -1}}, "config.hours_before"),
        ({"config": {"fee": 1, "fee_percentage": 2}}, "config"),
        ({"config": {"surprise": 1}}, "config.surprise"),
        ({"config": {"fee_tiers": [{"min_hours": 24, "fee": 5}]}}, "config.fee_tiers"),
        ({"config": {}, "extra": 1}, "extra"),
        ({}, "config"),
    ]
    for body, field in cases:
        response = await admin.put(path, json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert field in [error["field"] for error in response.json()["errors"]], response.json()
    assert (await admin.put("/v1/policies/planet/1/cancellation", json={"config": {}})).status_code == 422
    assert (await admin.put("/v1/policies/company/1/haircut", json={"config": {}})).status_code == 422
    assert (await admin.put("/v1/policies/staff/not-a-uuid/callback", json={"config": {}})).status_code == 422
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(PolicyConfiguration)) == 0


async def test_dry_run_and_quota(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    await add_staff(sessions, tenant)
    service = api.http(await api.key("service", tenant))
    admin = api.http(await api.key("admin", tenant))
    soon = await add_appointment(sessions, tenant, days=0.5)
    later = await add_appointment(sessions, tenant, days=10)
    await admin.put(
        f"/v1/policies/company/{tenant.company_id}/cancellation",
        json={"config": {"hours_before": 24, "fee": 15, "max_cancellations_per_month": 2}},
    )
    await admin.put(
        f"/v1/policies/company/{tenant.company_id}/reschedule",
        json={"config": {"max_reschedules_per_appointment": 1}},
    )
    late = await service.get(f"/v1/appointments/{soon}/policy", params={"action": "cancel"})
    assert late.status_code == 200, late.text
    assert late.json()["allowed"] is False
    assert "24" in late.json()["reason"]
    early = (await service.get(f"/v1/appointments/{later}/policy", params={"action": "cancel"})).json()
    assert early["allowed"] is True
    assert Decimal(str(early["fee"])) == Decimal("15")
    assert early["sources"]["fee"]["level"] == "company"
    assert (
        await service.get(f"/v1/appointments/{later}/policy", params={"action": "move"})
    ).status_code == 422
    assert (
        await service.get("/v1/appointments/999999/policy", params={"action": "cancel"})
    ).status_code == 404

    async with transaction(sessions) as session:
        await record_modification(
            session,
            company_id=tenant.company_id,
            appointment_id=later,
            customer_id=tenant.customer_ids[0],
            change=ModificationType.RESCHEDULE,
            within_policy=True,
            fee_charged=Decimal(0),
            request_id="r1",
        )
        await record_modification(
            session,
            company_id=tenant.company_id,
            appointment_id=soon,
            customer_id=tenant.customer_ids[0],
            change=ModificationType.CANCEL,
            within_policy=True,
            fee_charged=Decimal(0),
            request_id="c1",
        )
        assert await session.scalar(select(func.count()).select_from(AppointmentModification)) == 2
    quota = await service.get(f"/v1/customers/{tenant.customer_ids[0]}/quota")
    assert quota.status_code == 200, quota.text
    body = quota.json()
    assert body["cancellations_remaining"] == 1
    by_id = {item["appointment_id"]: item for item in body["appointments"]}
    assert by_id[later]["reschedules_remaining"] == 0
    assert by_id[soon]["reschedules_remaining"] == 1
    assert by_id[later]["cancellations_remaining"] == 1
    assert (await service.get("/v1/customers/999999/quota")).status_code == 404


async def test_slots_from_the_fake_calcom(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    tenant = await make_tenant(sessions)
    async with transaction(sessions) as session:
        await session.execute(
            update(Service).where(Service.id == tenant.service_ids[0]).values(calcom_event_type_id=DAILY)
        )
    fake = FakeCalcom(sample_event_types(), rate_limit=RateLimitConfig(limit=100_000), now=lambda: NOW)
    async with (
        serve_fake(fake) as url,
        running_api(
            time_skipping_env.client, sessions, task_queue, calcom_url=url, finder_clock=lambda: NOW
        ) as api,
    ):
        service = api.http(await api.key("service", tenant))
        window = await service.get(
            f"/v1/services/{tenant.service_ids[0]}/slots",
            params={
                "start": "2030-03-04T00:00:00+01:00",
                "end": "2030-03-05T00:00:00+01:00",
                "time_zone": "Europe/Berlin",
            },
        )
        assert window.status_code == 200, window.text
        starts = [slot["start"] for slot in window.json()["slots"]]
        assert starts[0] == "2030-03-04T09:00:00+01:00"
        assert len(starts) == 6  # 09:00-12:00 in 30-minute slots
        nxt = await service.get(
            f"/v1/services/{tenant.service_ids[0]}/slots/next",
            params={"after": "2030-03-04T10:10:00+01:00", "limit": 2, "time_zone": "Europe/Berlin"},
        )
        assert [slot["start"] for slot in nxt.json()["slots"]] == [
            "2030-03-04T10:30:00+01:00",
            "2030-03-04T11:00:00+01:00",
        ]
        too_long = await service.get(
            f"/v1/services/{tenant.service_ids[0]}/slots",
            params={"start": "2030-03-04T00:00:00Z", "end": "2030-07-04T00:00:00Z"},
        )
        assert too_long.status_code == 422
        naive = await service.get(
            f"/v1/services/{tenant.service_ids[0]}/slots",
            params={"start": "2030-03-04T00:00:00", "end": "2030-03-05T00:00:00Z"},
        )
        assert naive.status_code == 422
        assert naive.json()["errors"][0]["field"] == "start"
        # Cal.com looks a year ahead at most, nothing past is free: a start further out either way is ours to
        # refuse, by field, before asking it (its 400 would be a 502).
        for path, params, field in (
            ("slots/next", {"after": "7362-01-01T00:00:00Z"}, "after"),
            ("slots", {"start": "9999-12-01T00:00:00Z", "end": "9999-12-31T00:00:00Z"}, "start"),
            ("slots/next", {"after": "0238-08-09T11:20:15-11:55"}, "after"),
            ("slots", {"start": "0001-01-01T00:00:00+01:00", "end": "2030-03-05T00:00:00Z"}, "start"),
        ):
            far = await service.get(f"/v1/services/{tenant.service_ids[0]}/{path}", params=params)
            assert far.status_code == 422, far.text
            assert far.json()["errors"][0]["field"] == field
        no_calendar = await service.get(f"/v1/services/{tenant.service_ids[1]}/slots/next")
        assert no_calendar.status_code == 409
