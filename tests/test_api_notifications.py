"""Notification settings, the effective settings, the catalogue and the delivery log through HTTP, against
the real app, PostgreSQL and a worker delivering to a real SMTP sink on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import time

import pytest
from sqlalchemy import func, select, update
from temporalio.testing import WorkflowEnvironment

from models.tables import Branch, Company, Customer, NotificationConfiguration
from store.db import transaction
from tests.api_fixtures import ApiEnv, Sessions, running_api
from tests.factories import add_staff, make_tenant
from tests.notify_fixtures import SECRET, outside_world
from tests.test_api_tenancy import add_appointment

EMAIL = "/v1/notification-settings/{scope}/{scope_id}/callback.escalated/email"


@pytest.fixture
async def api(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> AsyncIterator[ApiEnv]:
    async with running_api(time_skipping_env.client, sessions, task_queue) as env:
        yield env


async def _rows(sessions: Sessions) -> int:
    async with sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(NotificationConfiguration)
            .where(NotificationConfiguration.deleted_at.is_(None))
        )
    return int(count or 0)


async def test_settings_round_trip_effective_sources_and_tenancy(api: ApiEnv, sessions: Sessions) -> None:
    a = await make_tenant(sessions, name="A")
    b = await make_tenant(sessions, name="B")
    staff = await add_staff(sessions, a)
    admin = api.http(await api.key("admin", a))
    b_admin = api.http(await api.key("admin", b))
    company = EMAIL.format(scope="company", scope_id=a.company_id)
    mine = EMAIL.format(scope="staff", scope_id=staff)

    assert (await admin.get(company)).status_code == 404
    put = await admin.put(company, json={"is_enabled": True, "retry_count": 2})
    assert put.status_code == 200, put.text
    assert put.json() | {"id": 0} == {
        "id": 0,
        "company_id": a.company_id,
        "scope": "company",
        "scope_id": str(a.company_id),
        "event_type": "callback.escalated",
        "channel": "email",
        "is_enabled": True,
        "fallback_channel": None,
        "retry_count": 2,
        "retry_delay_minutes": api.deps.settings.notify_retry_delay_minutes,
        "template_override": None,
    }
    replaced = await admin.put(company, json={"is_enabled": True, "retry_count": 4})
    assert replaced.json()["id"] == put.json()["id"]
    assert (await admin.get(company)).json()["retry_count"] == 4
    staff_off = await admin.put(mine, json={"is_enabled": False, "fallback_channel": "sms"})
    assert staff_off.status_code == 200, staff_off.text

    listed = await admin.get("/v1/notification-settings", params={"event_type": "callback.escalated"})
    assert [(s["scope"], s["is_enabled"]) for s in listed.json()] == [("company", True), ("staff", False)]

    effective = await admin.get(
        "/v1/notification-settings/effective",
        params={"branch_id": a.branch_ids[0], "staff_id": str(staff), "event_type": "callback.escalated"},
    )
    assert effective.status_code == 200, effective.text
    by_channel = {item["channel"]: item for item in effective.json()}
    assert set(by_channel) == {"email", "sms", "webhook"}
    email = by_channel["email"]
    assert (email["enabled"], email["fallback_channel"]) == (False, "sms")
    assert email["sources"]["is_enabled"] == f"staff:{staff}"
    # A stored row always sets the retry values (NOT NULL columns): left out, the engine's default.
    assert email["retry_count"] == api.deps.settings.notify_retry_count
    assert email["sources"]["retry_count"] == f"staff:{staff}"
    assert by_channel["webhook"]["enabled"] is True  # the catalogue's default channel
    assert by_channel["webhook"]["sources"]["is_enabled"] == "default"
    branch_only = await admin.get(
        "/v1/notification-settings/effective",
        params={"branch_id": a.branch_ids[0], "event_type": "callback.escalated"},
    )
    branch_email = {i["channel"]: i for i in branch_only.json()}["email"]
    assert (branch_email["enabled"], branch_email["retry_count"]) == (True, 4)
    assert branch_email["sources"]["retry_count"] == f"company:{a.company_id}"
    every_event = (await admin.get("/v1/notification-settings/effective")).json()
    assert {"appointment.cancelled", "appointment.rescheduled"} <= {i["event_type"] for i in every_event}

    # Tenancy: B's branch, setting and staff do not exist for A (and A's calls change nothing of B's).
    theirs = f"/v1/notification-settings/branch/{b.branch_ids[0]}/callback.escalated/webhook"
    assert (await b_admin.put(theirs, json={"is_enabled": False})).status_code == 200
    assert (await admin.get(theirs)).status_code == 404
    assert (await admin.put(theirs, json={"is_enabled": True})).status_code == 404
    assert (await admin.delete(theirs)).status_code == 404
    assert (await b_admin.get(theirs)).json()["is_enabled"] is False
    assert (
        await admin.get("/v1/notification-settings/effective", params={"branch_id": b.branch_ids[0]})
    ).status_code == 404
    assert (await b_admin.get(company)).status_code == 404
    assert len((await b_admin.get("/v1/notification-settings")).json()) == 1

    assert (await admin.delete(mine)).status_code == 204
    assert (await admin.delete(mine)).status_code == 404
    after = await admin.get(
        "/v1/notification-settings/effective",
        params={"staff_id": str(staff), "event_type": "callback.escalated"},
    )
    assert {i["channel"]: i["enabled"] for i in after.json()}["email"] is True

    catalogue = await admin.get("/v1/notification-events")
    assert catalogue.status_code == 200
    cancelled = next(e for e in catalogue.json() if e["event_type"] == "appointment.cancelled")
    assert cancelled["default_channels"] == ["email", "webhook"]
    assert "customer" in cancelled["audience"]


async def test_invalid_settings_are_refused_field_by_field_and_write_nothing(
    api: ApiEnv, sessions: Sessions
) -> None:
    tenant = await make_tenant(sessions)
    admin = api.http(await api.key("admin", tenant))
    root = f"/v1/notification-settings/company/{tenant.company_id}"
    cases = [
        (f"{root}/callback.nope/fax", {}, {"event_type", "channel"}),
        (f"{root}/callback.escalated/push", {}, {"channel"}),
        (f"{root}/callback.escalated/email", {"fallback_channel": "email"}, {"fallback_channel"}),
        (f"{root}/callback.escalated/email", {"fallback_channel": "pigeon"}, {"fallback_channel"}),
        (f"{root}/callback.escalated/email", {"retry_count": 99}, {"retry_count"}),
        (f"{root}/callback.escalated/email", {"retry_delay_minutes": -1}, {"retry_delay_minutes"}),
        (f"{root}/callback.escalated/email", {"template_override": "{{ oops"}, {"template_override"}),
        (f"{root}/callback.escalated/email", {"template_override": "bell\x07"}, {"template_override"}),
        (f"{root}/callback.escalated/email", {"is_enabled": True, "colour": "red"}, {"colour"}),
        ("/v1/notification-settings/planet/1/callback.escalated/email", {}, {"scope"}),
        ("/v1/notification-settings/staff/not-a-uuid/callback.escalated/email", {}, {"scope_id"}),
    ]
    for path, body, fields in cases:
        response = await admin.put(path, json=body)
        assert response.status_code == 422, (path, body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert fields <= {error["field"] for error in response.json()["errors"]}, response.json()
    unknown_branch = "/v1/notification-settings/branch/999999/callback.escalated/email"
    assert (await admin.put(unknown_branch, json={})).status_code == 404
    unknown_event = await admin.get("/v1/notification-settings/effective", params={"event_type": "x.y"})
    assert unknown_event.status_code == 422
    assert unknown_event.json()["errors"][0]["field"] == "event_type"
    assert (await admin.get("/v1/notifications", params={"limit": 10_000})).status_code == 422
    assert (await admin.get("/v1/notifications", params={"since": "2030-03-04T09:00:00"})).status_code == 422
    assert await _rows(sessions) == 0


async def test_only_admins_manage_notifications(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant)
    path = EMAIL.format(scope="company", scope_id=tenant.company_id)
    for key in (await api.key("staff", tenant, staff_id=staff), await api.key("service", tenant)):
        http = api.http(key)
        for method, url in (
            ("PUT", path),
            ("GET", path),
            ("DELETE", path),
            ("GET", "/v1/notification-settings"),
            ("GET", "/v1/notification-settings/effective"),
            ("GET", "/v1/notifications"),
        ):
            response = await http.request(method, url, json={} if method == "PUT" else None)
            assert response.status_code == 403, (method, url, response.text)
            assert "admin only" in response.json()["detail"]
    assert (await api.http().get("/v1/notifications")).status_code == 401
    super_admin = api.http(await api.key("super_admin"))
    assert (await super_admin.get("/v1/notifications")).json()["errors"][0]["field"] == "company_id"
    assert (
        await super_admin.get("/v1/notifications", params={"company_id": tenant.company_id})
    ).status_code == 200
    assert await _rows(sessions) == 0


async def test_an_applied_cancellation_notifies_and_shows_in_the_delivery_log(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    """The customer gets a mail (real SMTP sink), the company a signed webhook (real receiver), and both
    deliveries are in the log, filterable and paged."""
    tenant = await make_tenant(sessions)
    appointment = await add_appointment(sessions, tenant, days=3)
    async with (
        outside_world() as world,
        running_api(
            time_skipping_env.client,
            sessions,
            task_queue,
            smtp_url=world.smtp_url,
            notify_sms_gateway_url=world.sms_url,
            notify_message_id_domain="callbacks.test",
        ) as api,
    ):
        async with transaction(sessions) as session:
            await session.execute(
                update(Customer)
                .where(Customer.id == tenant.customer_ids[0])
                .values(email="erika@example.org")
            )
            await session.execute(
                update(Company)
                .where(Company.id == tenant.company_id)
                .values(webhook_url=world.hook_url, webhook_secret=SECRET)
            )
            # No quiet hours: the mail goes out whenever the suite runs.
            await session.execute(
                update(Branch)
                .where(Branch.id == tenant.branch_ids[0])
                .values(quiet_hours_start=time(0), quiet_hours_end=time(0))
            )
        admin = api.http(await api.key("admin", tenant))
        service = api.http(await api.key("service", tenant))
        cancelled = await service.post(
            f"/v1/appointments/{appointment}/cancel",
            json={"reason": "ill"},
            headers={"Idempotency-Key": "web-cancel-1"},
        )
        assert cancelled.status_code == 200, cancelled.text
        notify = time_skipping_env.client.get_workflow_handle(
            f"c{tenant.company_id}.notify-appointment-{tenant.company_id}-web-cancel-1"
        )
        await notify.result()

        [mail] = world.mail.to("erika@example.org")
        assert mail["Subject"] == "Termin storniert"
        assert "Erika Mustermann" in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        [hook] = world.hook.received
        assert hook.signature_ok
        assert hook.json["type"] == "appointment.cancelled"
        assert hook.json["data"]["appointment_id"] == appointment
        assert hook.json["data"]["reason"] == "ill"

        log = await admin.get("/v1/notifications", params={"subject_type": "appointment"})
        assert log.status_code == 200, log.text
        entries = {entry["channel"]: entry for entry in log.json()["items"]}
        assert set(entries) == {"email", "webhook"}
        email = entries["email"]
        assert (email["event_type"], email["status"], email["attempts"]) == (
            "appointment.cancelled",
            "sent",
            1,
        )
        assert email["recipient"] == f"customer:{tenant.customer_ids[0]}"
        assert email["address"] == "erika@example.org"
        assert email["subject_id"] == str(appointment)
        assert mail["Message-ID"] == f"<{email['message_id']}@callbacks.test>"
        assert entries["webhook"]["recipient"] == f"webhook:{tenant.company_id}"
        assert (await admin.get("/v1/notifications", params={"status": "failed"})).json()["items"] == []
        only_mail = (await admin.get("/v1/notifications", params={"channel": "email"})).json()["items"]
        assert [entry["id"] for entry in only_mail] == [email["id"]]

        first = (await admin.get("/v1/notifications", params={"limit": 1})).json()
        assert first["next_before_id"] == first["items"][0]["id"]
        second = (
            await admin.get("/v1/notifications", params={"limit": 1, "before_id": first["next_before_id"]})
        ).json()
        assert second["next_before_id"] is None
        assert {first["items"][0]["id"], second["items"][0]["id"]} == {email["id"], entries["webhook"]["id"]}

        other = await make_tenant(sessions, name="Other")
        other_admin = api.http(await api.key("admin", other))
        assert (await other_admin.get("/v1/notifications")).json()["items"] == []


async def test_a_template_override_that_could_stall_a_worker_is_refused_when_saved(
    api: ApiEnv, sessions: Sessions
) -> None:
    tenant = await make_tenant(sessions)
    admin = api.http(await api.key("admin", tenant))
    path = EMAIL.format(scope="company", scope_id=tenant.company_id)
    runaway = "{% for a in range(99999) %}{% for b in range(99999) %}x{% endfor %}{% endfor %}"
    refused = {
        runaway: "may not use loops",
        "{{ customer_name|center(999999) }}": "longer than 4000 characters",
        "{{ customer_name * 99999 }}": "forbids",
    }
    for template, message in refused.items():
        response = await admin.put(path, json={"template_override": template})
        assert response.status_code == 422, response.text
        [error] = response.json()["errors"]
        assert error["field"] == "template_override"
        assert message in error["message"]
    assert await _rows(sessions) == 0
    fine = await admin.put(
        path, json={"template_override": "Bitte {{ customer_name }} anrufen ({{ payload.reason }})."}
    )
    assert fine.status_code == 200, fine.text
