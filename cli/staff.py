"""`callbacks staff …`: the people who call back, their services, hours and absences; deactivating one
stops their keys and has their open callbacks reassigned by the callbacks' workflows."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from api.directory_bodies import StaffCreate, StaffUpdate
from cli.directory import register
from cli.output import JsonOption, call, emit, table

staff_app = typer.Typer(
    help="Staff: branch, services, capacity, hours, absences (through the API).", no_args_is_help=True
)
absences_app = typer.Typer(help="Vacation, sickness and other time off.", no_args_is_help=True)
staff_app.add_typer(absences_app, name="absences")

register(
    staff_app,
    path="/v1/staff",
    thing="staff",
    create=StaffCreate,
    update=StaffUpdate,
    columns=[
        ("id", "ID"),
        ("name", "NAME"),
        ("branch_id", "BRANCH"),
        ("is_active", "ACTIVE"),
        ("is_manager", "MANAGER"),
        ("max_open_callbacks", "CAPACITY"),
        ("locale", "LANG"),
        ("external_id", "EXTERNAL ID"),
    ],
    keys=[
        "id",
        "company_id",
        "name",
        "branch_id",
        "email",
        "phone_number",
        "is_active",
        "is_manager",
        "max_open_callbacks",
        "locale",
        "service_ids",
        "working_hours",
        "external_id",
    ],
    filters=("branch_id", "is_active"),
)


def _switched(record: dict[str, Any]) -> str:
    state = "active" if record["is_active"] else "deactivated"
    text = f"{record['id']}  {record['name']}  {state}"
    moved = record.get("reassignment")
    if moved is not None:
        text += f"\n{moved['signalled']} open callback(s) handed to their workflows for reassignment"
        if moved["failed"]:
            text += f"; not reached: {', '.join(moved['failed'])} (run deactivate again)"
    return text


@staff_app.command("deactivate")
def staff_deactivate(staff_id: str, as_json: JsonOption = False) -> None:
    """Switch a staff member off: their keys stop at once, their open callbacks are reassigned."""
    emit(call(lambda client: client.request("POST", f"/v1/staff/{staff_id}/deactivate")), as_json, _switched)


@staff_app.command("activate")
def staff_activate(staff_id: str, as_json: JsonOption = False) -> None:
    """Switch a staff member on again (their keys work again)."""
    emit(call(lambda client: client.request("POST", f"/v1/staff/{staff_id}/activate")), as_json, _switched)


ABSENCE_COLUMNS = [
    ("id", "ID"),
    ("starts_at", "FROM"),
    ("ends_at", "UNTIL"),
    ("kind", "KIND"),
    ("note", "NOTE"),
]


@absences_app.command("add")
def absences_add(
    staff_id: str,
    starts_at: Annotated[
        str, typer.Option("--from", help="ISO date-time with offset, e.g. 2030-07-01T00:00+02:00")
    ],
    ends_at: Annotated[str, typer.Option("--until", help="the end (exclusive)")],
    kind: Annotated[str, typer.Option(help="vacation, sick or other")] = "vacation",
    note: Annotated[str | None, typer.Option()] = None,
    as_json: JsonOption = False,
) -> None:
    """Record time off: the staff member is not on shift in [from, until)."""
    body = {"starts_at": starts_at, "ends_at": ends_at, "kind": kind, "note": note}
    body = {key: value for key, value in body.items() if value is not None}
    added = call(lambda client: client.request("POST", f"/v1/staff/{staff_id}/absences", json=body))
    emit(added, as_json, lambda d: table([d], ABSENCE_COLUMNS))


@absences_app.command("list")
def absences_list(staff_id: str, as_json: JsonOption = False) -> None:
    """The staff member's absences, by start."""
    found = call(lambda client: client.request("GET", f"/v1/staff/{staff_id}/absences"))
    emit(found, as_json, lambda rows: table(rows, ABSENCE_COLUMNS))
