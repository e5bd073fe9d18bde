"""Cancel and reschedule through HTTP: the real app, PostgreSQL, a worker on Temporal's time-skipping server
and, where the appointment is booked there, the fake Cal.com over HTTP."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update
from temporalio.testing import WorkflowEnvironment

from devstack.calcom_fake import FakeCalcom, RateLimitConfig, serve_fake
from models.tables import Appointment, Customer
from store.db import transaction
from tests.api_fixtures import ApiEnv, Sessions, running_api
from tests.appointment_fixtures import skipping
from tests.appointment_records import appointment_row, modifications
from tests.calcom_fixtures import DAILY, NOW, sample_event_types
from tests.factories import add_staff, make_tenant
from tests.test_api_tenancy import add_appointment

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
async def api(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> AsyncIterator[ApiEnv]:
    async with running_api(time_skipping_env.client, sessions, task_queue) as env:
        yield env


async def test_cancel_fee_denial_idempotency_and_tenancy(api: ApiEnv, sessions: Sessions) -> None:
    a = await make_tenant(sessions, name="A")
    b = await make_tenant(sessions, name="B")
    desk = await add_staff(sessions, a)
    admin = api.http(await api.key("admin", a))
    staff = api.http(await api.key("staff", a, staff_id=desk))
    b_admin = api.http(await api.key("admin", b))
    put = await admin.put(
        f"/v1/policies/company/{a.company_id}/cancellation", json={"config": {"hours_before": 24, "fee": 15}}
    )
    assert put.status_code == 200, put.text
    soon = await add_appointment(sessions, a, days=0.5)
    later = await add_appointment(sessions, a, days=10)
    theirs = await add_appointment(sessions, b, days=10)

    denied = await staff.post(f"/v1/appointments/{soon}/cancel", headers={"Idempotency-Key": "late-1"})
    assert denied.status_code == 409, denied.text
    assert denied.headers["content-type"] == "application/problem+json"
    problem = denied.json()
    assert problem["type"] == "/problems/change-denied"
    assert "needs 24 h notice" in problem["reason"]
    assert problem["reason"] in problem["detail"]
    assert (Decimal(problem["fee"]), problem["currency"]) == (Decimal("0"), "EUR")
    assert problem["sources"]["hours_before"] == {"level": "company", "entity_id": str(a.company_id)}
    assert await modifications(sessions, soon) == []
    assert (await appointment_row(sessions, soon)).status == "scheduled"

    first = await staff.post(
        f"/v1/appointments/{later}/cancel", json={"reason": "ill"}, headers={"Idempotency-Key": "cancel-7"}
    )
    assert first.status_code == 200, first.text
    outcome = first.json()
    assert (outcome["status"], outcome["change"], Decimal(outcome["fee_charged"])) == (
        "applied",
        "cancel",
        Decimal("15"),
    )
    assert outcome["request_id"] == "cancel-7"
    again = await staff.post(
        f"/v1/appointments/{later}/cancel", json={"reason": "ill"}, headers={"Idempotency-Key": "cancel-7"}
    )
    assert again.status_code == 200, again.text
    assert again.json() == outcome  # the stored outcome, not a second run
    [row] = await modifications(sessions, later)
    assert (row.id, row.fee_charged, row.reason) == (outcome["modification_id"], Decimal("15.00"), "ill")
    assert (row.modified_by_type, row.modified_by_id) == ("staff", str(desk))
    assert (await appointment_row(sessions, later)).status == "cancelled"

    reused = await staff.post(
        f"/v1/appointments/{later}/reschedule",
        json={"new_start": (datetime.now(UTC) + timedelta(days=11)).isoformat()},
        headers={"Idempotency-Key": "cancel-7"},
    )
    assert reused.status_code == 422, reused.text
    assert reused.json()["errors"][0]["field"] == "Idempotency-Key"
    closed = await admin.post(f"/v1/appointments/{later}/cancel", headers={"Idempotency-Key": "cancel-8"})
    assert closed.status_code == 409
    assert "the appointment is cancelled" in closed.json()["reason"]

    # Another company's appointment does not exist for this key, and stays as it was.
    for path in (f"/v1/appointments/{theirs}/cancel", "/v1/appointments/999999/cancel"):
        assert (await admin.post(path)).status_code == 404
    assert (await b_admin.post(f"/v1/appointments/{soon}/cancel")).status_code == 404
    assert (await appointment_row(sessions, theirs)).status == "scheduled"
    assert (await appointment_row(sessions, soon)).status == "scheduled"

    bad_key = await admin.post(f"/v1/appointments/{soon}/cancel", headers={"Idempotency-Key": "no spaces"})
    assert bad_key.status_code == 422
    assert bad_key.json()["errors"][0]["field"] == "Idempotency-Key"
    unknown = await admin.post(f"/v1/appointments/{soon}/cancel", json={"reason": "x", "fee": 0})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "fee"
    assert (await api.http().post(f"/v1/appointments/{soon}/cancel")).status_code == 401
    assert await modifications(sessions, soon) == []


async def test_reschedule_moves_the_appointment_and_notifies(
    api: ApiEnv, sessions: Sessions, time_skipping_env: WorkflowEnvironment
) -> None:
    tenant = await make_tenant(sessions)
    service = api.http(await api.key("service", tenant))
    admin = api.http(await api.key("admin", tenant))
    await admin.put(
        f"/v1/policies/company/{tenant.company_id}/reschedule",
        json={"config": {"max_reschedules_per_appointment": 1, "fee": 5}},
    )
    appointment = await add_appointment(sessions, tenant, days=5)
    before = await appointment_row(sessions, appointment)
    async with transaction(sessions) as session:  # someone to tell: the customer has an email address
        await session.execute(
            update(Customer).where(Customer.id == before.customer_id).values(email="erika@example.org")
        )
    new_start = (before.starts_at + timedelta(days=1)).replace(microsecond=0)
    path = f"/v1/appointments/{appointment}/reschedule"

    for body, field in (
        ({}, "new_start"),
        ({"new_start": "2031-01-01T09:00:00"}, "new_start"),
        ({"new_start": "2001-01-01T09:00:00Z"}, "new_start"),
        ({"new_start": "next tuesday"}, "new_start"),
    ):
        refused = await service.post(path, json=body)
        assert refused.status_code == 422, (body, refused.text)
        assert refused.json()["errors"][0]["field"] == field

    moved = await service.post(
        path,
        json={"new_start": new_start.isoformat(), "reason": "clash"},
        headers={"Idempotency-Key": "mv-1"},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["status"] == "applied"
    assert Decimal(moved.json()["fee_charged"]) == Decimal("5")
    assert datetime.fromisoformat(moved.json()["starts_at"]) == new_start
    row = await appointment_row(sessions, appointment)
    assert (row.starts_at, row.ends_at) == (new_start, new_start + (before.ends_at - before.starts_at))
    [recorded] = await modifications(sessions, appointment)
    assert recorded.modified_by_type == "service"
    assert recorded.modified_by_id is not None
    assert recorded.modified_by_id.startswith("service-key:")

    # The change published its event: a notification run of its own, under the change's id.
    notify = time_skipping_env.client.get_workflow_handle(
        f"c{tenant.company_id}.notify-appointment-{tenant.company_id}-mv-1"
    )
    started = await notify.describe()
    assert started.workflow_type == "NotifyEventWorkflow"

    over = await service.post(path, json={"new_start": (new_start + timedelta(days=1)).isoformat()})
    assert over.status_code == 409, over.text
    assert over.json()["remaining_quota"] == 0
    assert over.json()["reason"].startswith("reschedule limit reached")
    assert len(await modifications(sessions, appointment)) == 1


async def test_calcom_refusal_and_outage_as_problems(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    """Cal.com's 400 for a time the calendar does not offer is the caller's to fix (422, Cal.com's
    message); Cal.com out of reach for longer than the retry budget is 503 with Retry-After."""
    tenant = await make_tenant(sessions)
    fake = FakeCalcom(sample_event_types(), rate_limit=RateLimitConfig(limit=100_000), now=lambda: NOW)
    starts_at = datetime(2030, 3, 5, 9, 0, tzinfo=BERLIN)
    booking = fake.book(DAILY, starts_at)
    appointment = await add_appointment(sessions, tenant, days=3)
    async with transaction(sessions) as session:
        await session.execute(
            update(Appointment)
            .where(Appointment.id == appointment)
            .values(
                starts_at=starts_at, ends_at=starts_at + timedelta(minutes=30), calcom_booking_uid=booking.uid
            )
        )
    with socket.socket() as probe:  # a port for the fake, free again once it stops
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # One API (and worker) throughout, with a deadline longer than the skipped Cal.com retries: the
    # appointment's workflow stays open between the calls, and the test server never hands a stopped
    # worker's sticky workflow task to another one.
    async with running_api(
        time_skipping_env.client,
        sessions,
        task_queue,
        calcom_url=f"http://127.0.0.1:{port}",
        api_temporal_timeout_seconds=60,
    ) as api:
        service = api.http(await api.key("service", tenant))
        path = f"/v1/appointments/{appointment}/reschedule"
        async with serve_fake(fake, port=port):
            closed = await service.post(path, json={"new_start": "2030-03-05T15:00:00+01:00"})
            assert closed.status_code == 422, closed.text
            assert closed.json()["type"] == "/problems/calcom-refused"
            assert "Cal.com refused the reschedule" in closed.json()["detail"]
            assert closed.json()["errors"][0]["field"] == "new_start"
            moved = await service.post(path, json={"new_start": "2030-03-05T10:30:00+01:00"})
            assert moved.status_code == 200, moved.text
            assert moved.json()["calcom_booking_uid"] != booking.uid
            assert booking.status == "cancelled"

        # The fake is gone: nothing answers on its port any more.
        down = await skipping(
            time_skipping_env,
            service.post(f"/v1/appointments/{appointment}/cancel", headers={"Idempotency-Key": "while-down"}),
        )
        assert down.status_code == 503, down.text
        assert down.headers["retry-after"] == "60"
        assert "same Idempotency-Key" in down.json()["detail"]
    assert (await appointment_row(sessions, appointment)).status == "scheduled"
    assert len(await modifications(sessions, appointment)) == 1
