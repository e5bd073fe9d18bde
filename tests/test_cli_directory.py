"""The directory from a terminal: `callbacks companies|branches|services|staff|customers …` and
`callbacks import …`, as a user runs them (a subprocess talking HTTP to the real API on loopback)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from tests.api_fixtures import Sessions, running_api, serve_api
from tests.factories import make_tenant
from tests.test_cli import cli

HOURS = '{"mon": [["08:00", "12:00"], ["13:00", "17:00"]]}'


async def test_the_directory_from_a_terminal(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str, tmp_path: Path
) -> None:
    tenant = await make_tenant(sessions)
    async with (
        running_api(time_skipping_env.client, sessions, task_queue) as api,
        serve_api(api.app) as url,
    ):
        base = {key: value for key, value in os.environ.items() if not key.startswith("CALLBACKS_")}
        as_admin = {**base, "CALLBACKS_API_URL": url, "CALLBACKS_API_KEY": await api.key("admin", tenant)}
        as_root = {**base, "CALLBACKS_API_URL": url, "CALLBACKS_API_KEY": await api.key("super_admin")}

        company = await cli(
            "companies",
            "create",
            "--name",
            "Salon Süd",
            "--time-zone",
            "Europe/Vienna",
            "--json",
            env=as_root,
        )
        assert company.code == 0, company.err
        assert company.json()["time_zone"] == "Europe/Vienna"
        listed = await cli("companies", "list", env=as_root)
        assert "Salon Süd" in listed.out
        assert listed.out.splitlines()[0].split()[:2] == ["ID", "NAME"]

        branch = await cli(
            "branches",
            "create",
            "--name",
            "Mitte",
            "--country",
            "DE",
            "--subdivision",
            "BE",
            "--opening-hours",
            HOURS,
            "--phone-number",
            "030 901820",
            "--json",
            env=as_admin,
        )
        assert branch.code == 0, branch.err
        branch_id = branch.json()["id"]
        assert branch.json()["phone_number"] == "+4930901820"
        overlapping = await cli(
            "branches",
            "update",
            str(branch_id),
            "--opening-hours",
            '{"mon": [["08:00", "12:00"], ["11:00", "13:00"]]}',
            env=as_admin,
        )
        assert overlapping.code == 1
        assert "opening_hours.mon: mon: 08:00–12:00 and 11:00–13:00 overlap" in overlapping.err
        cleared = await cli(
            "branches", "update", str(branch_id), "--clear", "subdivision", "--json", env=as_admin
        )
        assert cleared.code == 0, cleared.err
        assert cleared.json()["subdivision"] is None
        shown = await cli("branches", "show", str(branch_id), env=as_admin)
        assert "opening_hours" in shown.out
        assert "Europe/Berlin" in shown.out  # the company's zone

        service = await cli(
            "services",
            "create",
            "--name",
            "Beratung",
            "--branch-id",
            str(branch_id),
            "--price",
            "45.50",
            "--external-id",
            "SVC-B",
            "--json",
            env=as_admin,
        )
        assert service.code == 0, service.err
        service_id = service.json()["id"]
        active = await cli(
            "services", "list", "--active", "--branch-id", str(branch_id), "--json", env=as_admin
        )
        assert [s["id"] for s in active.json()["items"]] == [service_id]

        member = await cli(
            "staff",
            "create",
            "--name",
            "Lena",
            "--branch-id",
            str(branch_id),
            "--service-ids",
            str(service_id),
            "--max-open-callbacks",
            "5",
            "--json",
            env=as_admin,
        )
        assert member.code == 0, member.err
        staff_id = member.json()["id"]
        assert member.json()["service_ids"] == [service_id]
        assert member.json()["max_open_callbacks"] == 5
        added = await cli(
            "staff",
            "absences",
            "add",
            staff_id,
            "--from",
            "2030-07-01T00:00:00+02:00",
            "--until",
            "2030-07-15T00:00:00+02:00",
            "--kind",
            "vacation",
            env=as_admin,
        )
        assert added.code == 0, added.err
        absences = await cli("staff", "absences", "list", staff_id, "--json", env=as_admin)
        assert [a["kind"] for a in absences.json()] == ["vacation"]
        off = await cli("staff", "deactivate", staff_id, env=as_admin)
        assert off.code == 0, off.err
        assert "deactivated" in off.out
        assert "0 open callback(s)" in off.out
        inactive = await cli("staff", "list", "--inactive", "--json", env=as_admin)
        assert [s["id"] for s in inactive.json()["items"]] == [staff_id]
        on = await cli("staff", "activate", staff_id, env=as_admin)
        assert "active" in on.out

        customer = await cli(
            "customers",
            "create",
            "--name",
            "Erika",
            "--phone-number",
            "+43 1 5879999",
            "--json",
            env=as_admin,
        )
        assert customer.code == 0, customer.err
        bad = await cli("customers", "create", "--name", "X", "--time-zone", "Vienna", env=as_admin)
        assert bad.code == 1
        assert "time_zone: unknown time zone 'Vienna'" in bad.err
        found = await cli("customers", "list", "-q", "Erika", env=as_admin)
        assert "+4315879999" in found.out

        csv_file = tmp_path / "staff.csv"
        csv_file.write_text(
            "external_id,name,branch_id,services\n"
            f"P-1,Paula,{branch_id},SVC-B\n"
            f"P-2,Piet,{branch_id},SVC-NOPE\n",
            encoding="utf-8",
        )
        dry = await cli("import", "staff", str(csv_file), "--dry-run", env=as_admin)
        assert dry.code == 1  # a row was refused
        assert "1 would be created" in dry.out
        assert "SVC-NOPE" in dry.out
        real = await cli("import", "staff", str(csv_file), "--json", env=as_admin)
        report = json.loads(real.out)
        assert (report["created"], len(report["refused"])) == (1, 1)
        assert report["refused"][0]["row"] == 3
        again = await cli("import", "staff", str(csv_file), env=as_admin)
        assert "0 were created, 0 updated, 1 unchanged" in again.out
        missing = await cli("import", "customers", str(tmp_path / "nope.csv"), env=as_admin)
        assert missing.code == 1
        assert "cannot read" in missing.err
