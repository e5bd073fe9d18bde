"""`callbacks callbacks …`: create, list and work callbacks through the API."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from enum import Enum
from typing import Annotated, Any

import typer
from pydantic.fields import FieldInfo

from api.action_bodies import body_for
from cli.output import JsonOption, call, cell, emit, fields, table
from models.callbacks import StaffAction
from rules.staff_actions import STAFF_ACTIONS, StaffActionSpec

callbacks_app = typer.Typer(help="Create, list and work callbacks (through the API).", no_args_is_help=True)

LIST_COLUMNS = [
    ("id", "ID"),
    ("status", "STATUS"),
    ("priority", "PRIORITY"),
    ("customer_name", "CUSTOMER"),
    ("phone_number", "PHONE"),
    ("branch_name", "BRANCH"),
    ("assigned_to_name", "ASSIGNED TO"),
    ("expires_at", "DUE"),
    ("overdue", "OVERDUE"),
]
DETAIL_KEYS = [
    "id",
    "status",
    "priority",
    "customer_name",
    "phone_number",
    "email",
    "branch_name",
    "service_name",
    "assigned_to",
    "assigned_to_name",
    "created_at",
    "expires_at",
    "overdue",
    "contacted_at",
    "completed_at",
    "cancelled_at",
    "contact_attempts",
    "escalation_count",
    "notes",
    "completion_notes",
    "cancel_reason",
]


def _show_callback(record: dict[str, Any]) -> str:
    text = fields(record, [key for key in DETAIL_KEYS if key in record])
    if record.get("events"):
        events = [
            {"seq": e["seq"], "at": e["at"], "type": e["type"], "actor": e["actor"]} for e in record["events"]
        ]
        text += "\n\n" + table(events, [("seq", "#"), ("at", "AT"), ("type", "EVENT"), ("actor", "BY")])
    return text


def _action(
    callback_id: str, action: str, body: dict[str, Any] | None, as_json: bool, idempotency_key: str | None
) -> None:
    changed = call(lambda client: client.act(callback_id, action, body, idempotency_key))
    emit(
        changed,
        as_json,
        lambda d: f"{d['id']}  {d['status']}  (assigned to {cell(d.get('assigned_to_name'))})",
    )


@callbacks_app.command("create")
def callbacks_create(
    branch_id: Annotated[int, typer.Option(help="the branch the customer called")],
    name: Annotated[str, typer.Option(help="the customer's name")],
    phone: Annotated[str, typer.Option(help="international, or national in the branch's country")],
    service_id: Annotated[int | None, typer.Option()] = None,
    priority: Annotated[str, typer.Option(help="normal, high or urgent")] = "normal",
    email: Annotated[str | None, typer.Option()] = None,
    notes: Annotated[str | None, typer.Option()] = None,
    preferred_staff_id: Annotated[str | None, typer.Option()] = None,
    company_id: Annotated[int | None, typer.Option(help="super_admin keys only")] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="the same key never creates twice")] = None,
    as_json: JsonOption = False,
) -> None:
    """Ask for a callback; prints it once stored and assigned."""
    body = {
        "branch_id": branch_id,
        "service_id": service_id,
        "customer_name": name,
        "phone_number": phone,
        "priority": priority,
        "email": email,
        "notes": notes,
        "preferred_staff_id": preferred_staff_id,
        "company_id": company_id,
    }
    body = {key: value for key, value in body.items() if value is not None}
    created = call(lambda client: client.create_callback(body, idempotency_key))
    emit(
        created,
        as_json,
        lambda d: (
            f"{'created' if d['created'] else 'already there'}: {d['id']}  {d['status']}  "
            f"assigned to {cell(d.get('assigned_to_name'))}, due {cell(d['expires_at'])}"
        ),
    )


@callbacks_app.command("list")
def callbacks_list(
    status: Annotated[list[str] | None, typer.Option("--status", help="repeatable")] = None,
    priority: Annotated[list[str] | None, typer.Option("--priority", help="repeatable")] = None,
    branch_id: Annotated[int | None, typer.Option()] = None,
    assigned_to: Annotated[str | None, typer.Option(help="a staff id")] = None,
    overdue: Annotated[bool | None, typer.Option("--overdue/--not-overdue")] = None,
    q: Annotated[str | None, typer.Option("-q", "--search", help="part of the name or phone")] = None,
    sort: Annotated[
        str,
        typer.Option(
            help="id, customer_name, status, priority, branch, service, "
            "expires_at, created_at; '-' first for descending"
        ),
    ] = "-created_at",
    page: Annotated[int, typer.Option()] = 1,
    page_size: Annotated[int, typer.Option()] = 50,
    include_deleted: Annotated[bool, typer.Option("--include-deleted")] = False,
    as_json: JsonOption = False,
) -> None:
    """List callbacks, newest first by default."""
    params = {
        "status": status or [],
        "priority": priority or [],
        "branch_id": branch_id,
        "assigned_to": assigned_to,
        "overdue": None if overdue is None else str(overdue).lower(),
        "q": q,
        "sort": sort,
        "page": page,
        "page_size": page_size,
        "include_deleted": "true" if include_deleted else None,
    }
    found = call(lambda client: client.list_callbacks(**params))
    emit(
        found,
        as_json,
        lambda d: (
            table(d["items"], LIST_COLUMNS)
            + f"\n\n{len(d['items'])} of {d['total']} (page {d['page']}, {d['page_size']} per page)"
        ),
    )


@callbacks_app.command("show")
def callbacks_show(callback_id: str, as_json: JsonOption = False) -> None:
    """One callback with its audit trail."""
    found = call(lambda client: client.get_callback(callback_id))
    emit(found, as_json, _show_callback)


# --- staff actions: one command per row of rules/staff_actions.py ----------------------------------------

ActionKey = Annotated[
    str | None,
    typer.Option(help="the same key applies the action once: a retry prints the first call's outcome"),
]
# Taken as an argument, not an option, as people already type it: `callbacks callbacks priority ID high`.
ARGUMENTS: dict[StaffAction, str] = {StaffAction.CHANGE_PRIORITY: "priority"}


def _field_help(field: FieldInfo) -> str | None:
    """The API's description of the field, or its choices ("no_answer, busy, voicemail or wrong_number")."""
    if field.description:
        return field.description
    choices = field.annotation
    if isinstance(choices, type) and issubclass(choices, Enum):
        values = [str(member.value) for member in choices]
        return ", ".join(values[:-1]) + " or " + values[-1] if len(values) > 1 else values[0]
    return None


def _action_command(spec: StaffActionSpec[Any]) -> Callable[..., None]:
    """A command taking exactly the fields of the action's HTTP body (api/action_bodies.py): required
    fields as required options, the rest optional; the API validates the values."""
    body_model = body_for(spec.action)
    fields = body_model.model_fields if body_model is not None else {}

    def command(
        callback_id: str, as_json: bool = False, idempotency_key: str | None = None, **given: Any
    ) -> None:
        body = (
            None
            if body_model is None
            else {key: value for key, value in given.items() if value is not None and value is not False}
        )
        _action(callback_id, spec.path, body, as_json, idempotency_key)

    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [inspect.Parameter("callback_id", keyword, annotation=str)]
    for name, field in fields.items():
        help_ = _field_help(field)
        if ARGUMENTS.get(spec.action) == name:
            parameters.append(
                inspect.Parameter(name, keyword, annotation=Annotated[str, typer.Argument(help=help_)])
            )
        elif field.annotation is bool:
            flag = Annotated[bool, typer.Option(f"--{name.replace('_', '-')}", help=help_)]
            parameters.append(inspect.Parameter(name, keyword, annotation=flag, default=False))
        elif field.is_required():
            parameters.append(
                inspect.Parameter(name, keyword, annotation=Annotated[str, typer.Option(help=help_)])
            )
        else:
            option = Annotated[str | None, typer.Option(help=help_)]
            parameters.append(inspect.Parameter(name, keyword, annotation=option, default=None))
    parameters.append(inspect.Parameter("idempotency_key", keyword, annotation=ActionKey, default=None))
    parameters.append(inspect.Parameter("as_json", keyword, annotation=JsonOption, default=False))
    command.__signature__ = inspect.Signature(parameters, return_annotation=None)  # type: ignore[attr-defined]
    command.__annotations__ = {}
    command.__name__ = f"callbacks_{spec.verb}"
    return command


for _spec in STAFF_ACTIONS.values():
    callbacks_app.command(_spec.verb, help=_spec.summary)(_action_command(_spec))


# --- policies and slots (over HTTP) --------------------------------------------------------------
