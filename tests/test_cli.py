"""The `callbacks` CLI as a user runs it: a subprocess talking HTTP to the real API on loopback (and, for
`keys`, to the database), driving the life cycle of a callback."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from datetime import time
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import URL
from temporalio.testing import WorkflowEnvironment

from models.tables import Branch, Customer
from store.db import transaction
from tests.api_fixtures import Sessions, running_api, serve_api
from tests.factories import add_staff, make_tenant
from tests.notify_fixtures import outside_world
from tests.test_api_tenancy import add_appointment


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


async def cli(*args: str, env: dict[str, str]) -> Run:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli.main",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


async def test_cli_drives_the_life_cycle(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, database_url: URL, task_queue: str
) -> None:
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant, services=(0,))
    async with (
        running_api(time_skipping_env.client, sessions, task_queue) as api,
        serve_api(api.app) as url,
    ):
        base = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("CALLBACKS_") and key not in ("DATABASE_URL",)
        }
        local = {**base, "DATABASE_URL": database_url.render_as_string(hide_password=False)}
        admin_run = await cli(
            "keys", "create", "--role", "admin", "--company-id", str(tenant.company_id), "--json", env=local
        )
        assert admin_run.code == 0, admin_run.err
        admin_key = admin_run.json()["key"]
        staff_run = await cli(
            "keys",
            "create",
            "--role",
            "staff",
            "--company-id",
            str(tenant.company_id),
            "--staff-id",
            str(staff),
            "--name",
            "desk",
            env=local,
        )
        assert staff_run.code == 0, staff_run.err
        staff_key = staff_run.out.split()[0]
        refused = await cli(
            "keys", "create", "--role", "staff", "--company-id", str(tenant.company_id), env=local
        )
        assert refused.code == 1
        assert "bound to a staff member" in refused.err

        as_admin = {**base, "CALLBACKS_API_URL": url, "CALLBACKS_API_KEY": admin_key}
        as_staff = {**base, "CALLBACKS_API_URL": url, "CALLBACKS_API_KEY": staff_key}
        created = await cli(
            "callbacks",
            "create",
            "--branch-id",
            str(tenant.branch_ids[0]),
            "--service-id",
            str(tenant.service_ids[0]),
            "--name",
            "Erika Mustermann",
            "--phone",
            "030 1234567",
            "--json",
            env=as_admin,
        )
        assert created.code == 0, created.err
        callback = created.json()
        assert callback["status"] == "assigned"
        assert callback["phone_number"] == "+49301234567"
        callback_id = callback["id"]

        listed = await cli("callbacks", "list", env=as_admin)
        assert listed.code == 0, listed.err
        assert callback_id in listed.out
        assert "STATUS" in listed.out.splitlines()[0]
        assert "1 of 1" in listed.out

        for args in (
            ["contacted", callback_id],
            ["attempt", callback_id, "--outcome", "voicemail", "--notes", "left a message"],
            ["complete", callback_id, "--notes", "appointment booked"],
        ):
            step = await cli("callbacks", *args, env=as_staff)
            assert step.code == 0, (args, step.err)
        assert "completed" in step.out

        again = await cli("callbacks", "complete", callback_id, "--notes", "again", env=as_staff)
        assert again.code == 1
        assert "cannot complete: the callback is completed" in again.err

        shown = await cli("callbacks", "show", callback_id, env=as_admin)
        assert shown.code == 0, shown.err
        for event in (
            "callback.created",
            "callback.contacted",
            "callback.attempt_failed",
            "callback.completed",
        ):
            assert event in shown.out
        assert str(staff) in shown.out  # the staff key acted as its staff member
        detail = (await cli("callbacks", "show", callback_id, "--json", env=as_admin)).json()
        assert detail["completion_notes"] == "appointment booked"

        bad_phone = await cli(
            "callbacks",
            "create",
            "--branch-id",
            str(tenant.branch_ids[0]),
            "--name",
            "X",
            "--phone",
            "12",
            env=as_admin,
        )
        assert bad_phone.code == 1
        assert "phone_number" in bad_phone.err

        policy = await cli(
            "policies",
            "set",
            "company",
            str(tenant.company_id),
            "cancellation",
            '{"hours_before": 24, "fee": 10}',
            env=as_admin,
        )
        assert policy.code == 0, policy.err
        assert "hours_before" in policy.out
        effective = await cli(
            "policies",
            "effective",
            "cancellation",
            "--branch-id",
            str(tenant.branch_ids[0]),
            "--json",
            env=as_staff,
        )
        assert effective.json()["sources"]["fee"]["level"] == "company"
        shown_policy = await cli(
            "policies", "show", "company", str(tenant.company_id), "cancellation", env=as_admin
        )
        assert "fee" in shown_policy.out
        forbidden = await cli(
            "policies", "set", "company", str(tenant.company_id), "cancellation", "{}", env=as_staff
        )
        assert forbidden.code == 1
        assert "may not" in forbidden.err

        keys = await cli("keys", "list", "--company-id", str(tenant.company_id), "--json", env=local)
        prefixes = {record["prefix"]: record["role"] for record in keys.json()}
        assert sorted(prefixes.values()) == ["admin", "staff"]
        staff_prefix = staff_key.split("_")[1]
        revoked = await cli("keys", "revoke", staff_prefix, env=local)
        assert revoked.code == 0, revoked.err
        locked_out = await cli("callbacks", "list", env=as_staff)
        assert locked_out.code == 1
        assert "unknown or revoked" in locked_out.err
        no_key = await cli("callbacks", "list", env={**base, "CALLBACKS_API_URL": url})
        assert no_key.code == 1
        assert "CALLBACKS_API_KEY" in no_key.err


async def test_cli_notifications_and_appointments(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    """One command of each new group, table and JSON, as a user runs them against the real API."""
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant)
    appointment = await add_appointment(sessions, tenant, days=10)
    async with transaction(sessions) as session:
        await session.execute(
            update(Customer).where(Customer.id == tenant.customer_ids[0]).values(email="erika@example.org")
        )
        await session.execute(  # no quiet hours: the mail goes out whenever the suite runs
            update(Branch)
            .where(Branch.id == tenant.branch_ids[0])
            .values(quiet_hours_start=time(0), quiet_hours_end=time(0))
        )
    async with (
        outside_world() as world,
        running_api(time_skipping_env.client, sessions, task_queue, smtp_url=world.smtp_url) as api,
        serve_api(api.app) as url,
    ):
        base = {key: value for key, value in os.environ.items() if not key.startswith("CALLBACKS_")}
        as_admin = {**base, "CALLBACKS_API_URL": url, "CALLBACKS_API_KEY": await api.key("admin", tenant)}
        as_staff = {
            **base,
            "CALLBACKS_API_URL": url,
            "CALLBACKS_API_KEY": await api.key("staff", tenant, staff_id=staff),
        }

        set_ = await cli(
            "notifications",
            "settings",
            "set",
            "staff",
            str(staff),
            "callback.escalated",
            "email",
            "--disable",
            "--fallback",
            "sms",
            env=as_admin,
        )
        assert set_.code == 0, set_.err
        assert set_.out.splitlines()[0].split()[:3] == ["EVENT", "CHANNEL", "SCOPE"]
        assert "callback.escalated  email" in set_.out
        shown = await cli("notifications", "settings", "show", "--scope", "staff", "--json", env=as_admin)
        assert [(s["scope_id"], s["is_enabled"]) for s in shown.json()] == [(str(staff), False)]
        effective = await cli(
            "notifications",
            "settings",
            "effective",
            "--staff-id",
            str(staff),
            "--event-type",
            "callback.escalated",
            env=as_admin,
        )
        assert effective.code == 0, effective.err
        email_line = next(line for line in effective.out.splitlines() if " email " in line)
        assert f"staff:{staff}" in email_line
        bad = await cli(
            "notifications", "settings", "set", "company", "1", "callback.nope", "fax", env=as_admin
        )
        assert bad.code == 1
        assert "event_type: unknown event type 'callback.nope'" in bad.err
        forbidden = await cli("notifications", "log", env=as_staff)
        assert forbidden.code == 1
        assert "admin only" in forbidden.err

        cancelled = await cli(
            "appointments",
            "cancel",
            str(appointment),
            "--reason",
            "ill",
            "--idempotency-key",
            "cli-1",
            env=as_staff,
        )
        assert cancelled.code == 0, cancelled.err
        assert cancelled.out.startswith(f"appointment {appointment} cancelled, fee 0.00 EUR")
        again = await cli(
            "appointments", "cancel", str(appointment), "--idempotency-key", "cli-1", "--json", env=as_staff
        )
        assert again.json()["status"] == "applied"
        refused = await cli("appointments", "cancel", str(appointment), env=as_staff)
        assert refused.code == 1
        assert "Change denied by policy (409)" in refused.err
        assert "the appointment is cancelled" in refused.err
        moved = await cli(
            "appointments", "reschedule", str(appointment), "--to", "2001-01-01T09:00:00Z", env=as_staff
        )
        assert moved.code == 1
        assert "new_start: must be in the future" in moved.err

        await time_skipping_env.client.get_workflow_handle(
            f"c{tenant.company_id}.notify-appointment-{tenant.company_id}-cli-1"
        ).result()
        assert len(world.mail.to("erika@example.org")) == 1
        log = await cli("notifications", "log", "--subject-type", "appointment", env=as_admin)
        assert log.code == 0, log.err
        header, row = log.out.splitlines()
        assert header.split()[:3] == ["ID", "AT", "EVENT"]
        assert "appointment.cancelled" in row
        assert f"customer:{tenant.customer_ids[0]}" in row
        assert "erika@example.org" in row
        assert " sent " in row
