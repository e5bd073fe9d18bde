"""The `callbacks` CLI as a user runs it: a subprocess talking HTTP to the real API on loopback (and, for
`keys`, to the database), driving the life cycle of a callback."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import URL
from temporalio.testing import WorkflowEnvironment

from tests.api_fixtures import Sessions, running_api, serve_api
from tests.factories import add_staff, make_tenant


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
        "starter.cli",
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
